/**
 * A worker-only process answers its probes, /-/reload and /metrics on plain node:http (receiver/probes.ts), a receiver
 * on its Express app (receiver/app.ts). Both servers run here on loopback, with the same dependencies, and every
 * request to those routes gets the same answer from both: status, Content-Type, the headers a client acts on, and the
 * body. Anything else is the worker's own 404.
 */
import type { AddressInfo } from 'node:net';
import http, { type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/log.js';
import { createMetrics } from '../../../src/metrics.js';
import { createApp, type AppDeps } from '../../../src/receiver/app.js';
import { createProbeServer, type ProbeDeps } from '../../../src/receiver/probes.js';
import type { ReloadOutcome } from '../../../src/rules/rule-set.js';

const TOKEN = 'probe-token-0123456789abcdef0123';
const auth = { authorization: `Bearer ${TOKEN}` };

const AT = '2026-11-29T10:00:00.000Z';
const OK_RELOAD: ReloadOutcome = { ok: true, procedures: ['P1-001', 'P1-002'], problems: [], at: AT };

/** What the servers depend on, changed by the tests between requests (both servers see the same state). */
const state = {
  redis: true,
  rules: 2,
  shuttingDown: false,
  reload: OK_RELOAD,
  queueFails: false,
};

function deps(): ProbeDeps {
  return {
    auth: { token: TOKEN },
    metrics: createMetrics(),
    log: silentLogger,
    ready: {
      redis: async () => state.redis,
      prometheus: async () => false,
      rulesLoaded: () => state.rules,
      shuttingDown: () => state.shuttingDown,
    },
    queueCounts: async () => {
      if (state.queueFails) throw new Error('redis down');
      return { waiting: 3, active: 1, intake: 2 };
    },
    paused: async () => true,
    reload: () => state.reload,
  };
}

/** A receiver's own parts (webhook, runs), which none of these requests reaches: any use throws. */
function unreachable<T extends object>(name: string): T {
  return new Proxy({} as T, {
    get: (_target, key) => {
      throw new Error(`${name}.${String(key)} used by a probe route`);
    },
  });
}

/** The receiver's Express app with these probe dependencies. */
const receiverApp = (probes: ProbeDeps) =>
  createApp({
    ...probes,
    webhook: unreachable<AppDeps['webhook']>('webhook'),
    runs: unreachable<AppDeps['runs']>('runs'),
    maxBodyBytes: 1 << 20,
  });

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

interface Seen {
  status: number;
  type: string | null;
  allow: string | null;
  authenticate: string | null;
  body: string;
}

async function ask(base: string, path: string, init: RequestInit = {}): Promise<Seen> {
  const res = await fetch(base + path, init);
  return {
    status: res.status,
    type: res.headers.get('content-type'),
    allow: res.headers.get('allow'),
    authenticate: res.headers.get('www-authenticate'),
    body: await res.text(),
  };
}

describe('unit: a worker answers probes, /-/reload and /metrics on node:http as the Express app does (loopback)', () => {
  const express = receiverApp(deps());
  const servers: Server[] = [];
  let viaExpress = '';
  let viaProbes = '';

  beforeAll(async () => {
    const a = http.createServer(express);
    const b = createProbeServer(deps());
    servers.push(a, b);
    [viaExpress, viaProbes] = await Promise.all([listen(a), listen(b)]);
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  });

  /** The same request to both; both answers, after checking they agree. */
  async function both(path: string, init: RequestInit = {}): Promise<Seen> {
    const [a, b] = await Promise.all([ask(viaExpress, path, init), ask(viaProbes, path, init)]);
    expect({ path, method: init.method ?? 'GET', ...b }).toEqual({ path, method: init.method ?? 'GET', ...a });
    return b;
  }

  it('answers the probes alike, ready and not, in JSON and in Prometheus-style plain text', async () => {
    Object.assign(state, { redis: true, rules: 2, shuttingDown: false });
    expect(await both('/healthz')).toMatchObject({ status: 200, body: '{"status":"ok"}' });
    expect(JSON.parse((await both('/readyz')).body)).toEqual({ ready: true, redis: true, rulesLoaded: 2, prometheus: false });
    expect(await both('/-/healthy')).toMatchObject({ status: 200, body: 'remediator is Healthy.\n' });
    expect(await both('/-/ready')).toMatchObject({ status: 200, body: 'remediator is Ready.\n' });
    // Express's routing, kept: any case, one trailing slash, a query string.
    for (const path of ['/HEALTHZ', '/healthz/', '/readyz?verbose=1']) expect((await both(path)).status).toBe(200);
    expect((await both('/healthz', { method: 'HEAD' })).body).toBe('');

    state.redis = false;
    expect(await both('/readyz')).toMatchObject({ status: 503 });
    expect(await both('/-/ready')).toMatchObject({ status: 503, body: 'Service Unavailable\n' });
    Object.assign(state, { redis: true, shuttingDown: true });
    expect(JSON.parse((await both('/readyz')).body)).toMatchObject({ ready: false, shuttingDown: true });
    Object.assign(state, { shuttingDown: false, rules: 0 });
    expect(JSON.parse((await both('/readyz')).body)).toMatchObject({ ready: false, rulesLoaded: 0 });
    state.rules = 2;
  });

  it('/-/reload: the token first, then POST or PUT only, then the outcome; absent where nothing reloads', async () => {
    expect(await both('/-/reload', { method: 'POST' })).toMatchObject({ status: 401, authenticate: 'Bearer realm="remediator"' });
    expect(await both('/-/reload', { method: 'POST', headers: { authorization: 'Bearer wrong' } })).toMatchObject({
      status: 401,
    });
    expect(await both('/-/reload', { headers: auth })).toMatchObject({ status: 405, allow: 'POST, PUT' });
    expect(await both('/-/reload', { method: 'POST', headers: auth })).toMatchObject({
      status: 200,
      body: 'reloaded 2 procedures: P1-001, P1-002\n',
    });
    expect((await both('/-/reload', { method: 'PUT', headers: auth })).status).toBe(200);
    state.reload = { ok: false, procedures: ['P1-001'], problems: ['rules/bad.yaml: steps: required'], at: AT };
    expect(await both('/-/reload', { method: 'POST', headers: auth })).toMatchObject({
      status: 500,
      body: 'failed to reload rules, keeping the old ones (P1-001):\nrules/bad.yaml: steps: required\n',
    });
    state.reload = OK_RELOAD;
    // A process without rules to reload (no `reload`): the same 404 from both, after the token.
    const { reload: _none, ...without } = deps();
    const pair = [http.createServer(receiverApp(without)), createProbeServer(without)];
    servers.push(...pair);
    const [a, b] = await Promise.all(pair.map(listen));
    const answers = await Promise.all([a!, b!].map((base) => ask(base, '/-/reload', { method: 'POST', headers: auth })));
    expect(answers[1]).toEqual(answers[0]);
    expect(answers[0]).toMatchObject({ status: 404, body: 'reload is not available in this process\n' });
  });

  it('/metrics: the gauges read at scrape time are set, and a failing read leaves them rather than failing', async () => {
    state.queueFails = false;
    for (const base of [viaExpress, viaProbes]) {
      const seen = await ask(base, '/metrics');
      expect(seen.status).toBe(200);
      expect(seen.type).toMatch(/^text\/plain; version=0\.0\.4; charset=utf-8$/);
      expect(seen.body).toMatch(/^remediator_queue_jobs\{state="waiting"\} 3$/m);
      expect(seen.body).toMatch(/^remediator_intake_backlog 2$/m);
      expect(seen.body).toMatch(/^remediator_automation_paused 1$/m);
    }
    state.queueFails = true;
    for (const base of [viaExpress, viaProbes]) expect((await ask(base, '/metrics')).status).toBe(200);
    state.queueFails = false;
  });

  it("anything else is the worker's 404 naming what it serves, and a request body is never read", async () => {
    const worker = { error: 'not found (this process is a worker: only /healthz, /readyz, /-/*, /metrics)' };
    const webhook = await ask(viaProbes, '/webhook', {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify({ version: '4', alerts: [] }),
    });
    expect(webhook).toMatchObject({ status: 404, type: 'application/json; charset=utf-8' });
    expect(JSON.parse(webhook.body)).toEqual(worker);
    for (const [path, method] of [
      ['/api/remediations', 'GET'],
      ['/healthz', 'POST'],
      ['/metrics', 'DELETE'],
      ['/', 'GET'],
    ] as const) {
      const seen = await ask(viaProbes, path, { method });
      expect({ path, method, status: seen.status, body: JSON.parse(seen.body) as unknown }).toEqual({
        path,
        method,
        status: 404,
        body: worker,
      });
    }
  });
});
