/**
 * Auth (issue 4 item 10) on the real service: with WEBHOOK_TOKEN set, /webhook and every /api/* route need
 * `Authorization: Bearer <token>`; /healthz, /readyz and /metrics stay open (probes and Prometheus scrapes carry no
 * token, and they expose no alert data: metric labels are procedure ids, step names and closed sets).
 * The token never appears in any response, nor in any log line (pino at trace level, without its redaction, written
 * to memory), whatever was sent.
 *
 * Decisions pinned here: the scheme is case-insensitive (RFC 9110 §11.1: `bearer`, `BEARER` accepted); spaces or
 * a tab between scheme and token are accepted; nothing but the exact token passes (no prefix, no suffix, no
 * other scheme, no query-string token). Auth runs before the body is read: a 10 MB body without the token is a 401.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import type { RunRecord } from '../../src/engine/record.js';
import { loadRulesOrThrow } from '../../src/rules/load.js';
import { startService, type Running } from '../../src/serve.js';
import { startFakePrometheus, type FakePrometheus } from '../helpers/fake-prometheus.js';
import { webhookPayload } from '../helpers/payload.js';
import { cleanupPrefix, REDIS_URL, requireRedis, testPrefix } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';

const TOKEN = 'auth-test-token-9f3c1e7a5b2d4068';

describe('integration: WEBHOOK_TOKEN guards /webhook and /api/*, and never leaks (real Redis, real service)', () => {
  const prefix = testPrefix('auth');
  const dir = mkdtempSync(join(tmpdir(), 'remediator-auth-'));
  const logLines: string[] = [];
  const responses: string[] = [];
  let prom: FakePrometheus;
  let running: Running;
  let base: string;
  const savedToken = process.env.WEBHOOK_TOKEN;

  beforeAll(async () => {
    await requireRedis();
    // As in production, where the CLI reads its configuration from the environment.
    process.env.WEBHOOK_TOKEN = TOKEN;
    prom = await startFakePrometheus();
    writeFileSync(
      join(dir, 'auth-001.yaml'),
      `id: AUTH-001
title: Auth probe
match: ['alertname="AuthProbe"']
target: "{{ labels.instance }}"
steps:
  - name: diagnose
    description: a diagnostic script that prints its environment (as many do on failure)
    action: { exec: { command: ["env"], timeout: 5s } }
    onFailure: continue
`,
    );
    const config = loadConfig({
      PORT: '0',
      HOST: '127.0.0.1',
      REDIS_URL,
      QUEUE_PREFIX: prefix,
      PROMETHEUS_URL: prom.url,
      RULES_DIR: dir,
      WEBHOOK_TOKEN: TOKEN,
      // The fixtures carry fixed dates: no incident is too old for this test (MAX_INCIDENT_AGE).
      RUN_RETENTION: '3650d',
      MAX_INCIDENT_AGE: '3649d',
      POLL_INTERVAL: '100ms',
    });
    // Every level, no redaction: the token must never even reach the logger.
    const log = pino({ level: 'trace', base: { service: 'remediator' } }, { write: (line: string) => void logLines.push(line) });
    running = await startService(config, loadRulesOrThrow(dir, {}), log, { receiver: true, worker: true });
    base = `http://127.0.0.1:${running.port}`;
  });

  afterAll(async () => {
    await running?.stop();
    await prom?.close();
    await cleanupPrefix(prefix);
    rmSync(dir, { recursive: true, force: true });
    if (savedToken === undefined) delete process.env.WEBHOOK_TOKEN;
    else process.env.WEBHOOK_TOKEN = savedToken;
  });

  /** Sends, and keeps the status line, every header and the body for the no-leak check. */
  async function send(
    method: string,
    path: string,
    authorization?: string,
    body?: string | Buffer,
  ): Promise<{ status: number; text: string }> {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: {
        ...(authorization !== undefined ? { authorization } : {}),
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body } : {}),
    });
    const text = await res.text();
    responses.push(`${res.status} ${[...res.headers].map(([k, v]) => `${k}: ${v}`).join('\n')}\n\n${text}`);
    return { status: res.status, text };
  }

  const payload = (instance: string) => JSON.stringify(webhookPayload({ alertname: 'NotAProcedure', instance }));

  const GUARDED: [method: string, path: string, body?: string][] = [
    ['POST', '/webhook', payload('a')],
    ['GET', '/api/remediations'],
    ['GET', '/api/remediations?limit=5'],
    ['GET', '/api/remediations/some-run-id'],
    ['GET', '/api/pause'],
    ['POST', '/api/pause', '{"reason":"auth test"}'],
    ['POST', '/api/resume'],
    ['GET', '/api/no-such-route'],
  ];
  const WRONG: [what: string, header: string | undefined][] = [
    ['no Authorization header', undefined],
    ['empty header', ''],
    ['scheme only', 'Bearer'],
    ['wrong token', 'Bearer wrong-token-wrong-token-0000'],
    ['a prefix of the token', `Bearer ${TOKEN.slice(0, -1)}`],
    ['half the token', `Bearer ${TOKEN.slice(0, TOKEN.length / 2)}`],
    ['token + suffix', `Bearer ${TOKEN}0`],
    ['token twice', `Bearer ${TOKEN}${TOKEN}`],
    ['the token without a scheme', TOKEN],
    ['the token as Basic credentials', `Basic ${Buffer.from(`remediator:${TOKEN}`).toString('base64')}`],
    ['the token under another scheme', `Token ${TOKEN}`],
    ['upper-cased token', `Bearer ${TOKEN.toUpperCase()}`],
  ];

  it.each(GUARDED)('%s %s: 401 with every wrong credential, through with the token', async (method, path, body) => {
    for (const [what, header] of WRONG) {
      const r = await send(method, path, header, body);
      expect(r.status, `${method} ${path} with ${what}`).toBe(401);
      expect(JSON.parse(r.text)).toEqual({ error: 'missing or wrong bearer token' });
    }
    // A token in the query string is not a credential.
    expect((await send(method, `${path}${path.includes('?') ? '&' : '?'}access_token=${TOKEN}`, undefined, body)).status).toBe(
      401,
    );
    for (const header of [`Bearer ${TOKEN}`, `bearer ${TOKEN}`, `BEARER ${TOKEN}`, `Bearer   ${TOKEN}`, `Bearer\t${TOKEN}`]) {
      const r = await send(method, path, header, body);
      expect(r.status, `${method} ${path} with ${JSON.stringify(header.replace(TOKEN, '<token>'))}`).not.toBe(401);
      expect(r.status).toBeLessThan(500);
    }
  });

  it('authorised requests do what they say (202 webhook, 200 API, 404 unknown run and route)', async () => {
    expect((await send('POST', '/webhook', `Bearer ${TOKEN}`, payload('b'))).status).toBe(202);
    expect((await send('GET', '/api/remediations', `Bearer ${TOKEN}`)).status).toBe(200);
    expect((await send('GET', '/api/remediations/nope', `Bearer ${TOKEN}`)).status).toBe(404);
    expect((await send('GET', '/api/no-such-route', `Bearer ${TOKEN}`)).status).toBe(404);
    expect((await send('POST', '/api/resume', `Bearer ${TOKEN}`)).status).toBe(200);
  });

  it('/healthz, /readyz and /metrics stay open, with or without a token', async () => {
    for (const header of [undefined, 'Bearer wrong-token-wrong-token-0000', `Bearer ${TOKEN}`]) {
      expect((await send('GET', '/healthz', header)).status).toBe(200);
      expect((await send('GET', '/readyz', header)).status).toBe(200);
      const metrics = await send('GET', '/metrics', header);
      expect(metrics.status).toBe(200);
      expect(metrics.text).toMatch(/remediator_webhook_requests_total\{code="401"\} [1-9]/);
    }
  });

  it('checks the token before reading the body: 10 MB without the token is a 401, not a 413', async () => {
    const r = await send('POST', '/webhook', 'Bearer wrong-token-wrong-token-0000', Buffer.alloc(10 * 1024 * 1024, 'x'));
    expect(r.status).toBe(401);
    // The order that matters: the 401 comes while most of the announced body was never sent.
    const early = await new Promise<number>((resolve, reject) => {
      const req = request(`${base}/webhook`, {
        method: 'POST',
        headers: { authorization: 'Bearer wrong-token', 'content-type': 'application/json', 'content-length': 10 * 1024 * 1024 },
      });
      req.on('response', (res) => {
        resolve(res.statusCode ?? 0);
        req.destroy();
      });
      req.on('error', reject);
      req.write(Buffer.alloc(64 * 1024, 'x')); // and nothing more
    });
    expect(early).toBe(401);
    expect((await send('POST', '/webhook', `Bearer ${TOKEN}`, Buffer.alloc(10 * 1024 * 1024, 'x'))).status).toBe(413);
  });

  it('the token appears in no response and in no log line', () => {
    expect(responses.length).toBeGreaterThan(100);
    expect(logLines.length).toBeGreaterThan(0);
    expect(responses.filter((r) => r.includes(TOKEN))).toEqual([]);
    expect(logLines.filter((l) => l.includes(TOKEN))).toEqual([]);
    // Nor a recognisable part of it.
    expect(logLines.filter((l) => l.includes(TOKEN.slice(0, 12)))).toEqual([]);
  });

  // exec children get an allow-listed environment (src/actions/exec.ts INHERITED_ENV), so no
  // rule's command can put the token into a run record that GET /api/remediations/:id serves.
  it('an exec action cannot hand the token to a run record served by the API', async () => {
    const body = JSON.stringify(webhookPayload({ alertname: 'AuthProbe', instance: 'host-1' }));
    const accepted = JSON.parse((await send('POST', '/webhook', `Bearer ${TOKEN}`, body)).text) as {
      alerts: { runId: string }[];
    };
    const runId = accepted.alerts[0]!.runId;
    const text = await waitFor('the run to finish', async () => {
      const r = await send('GET', `/api/remediations/${encodeURIComponent(runId)}`, `Bearer ${TOKEN}`);
      const run = JSON.parse(r.text) as RunRecord;
      return ['succeeded', 'failed', 'escalated'].includes(run.state) ? r.text : undefined;
    });
    expect(text).toContain('"diagnose"');
    expect(text).not.toContain(TOKEN);
    expect(logLines.filter((l) => l.includes(TOKEN))).toEqual([]);
  });
});
