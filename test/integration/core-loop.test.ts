import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import type { RunRecord } from '../../src/engine/record.js';
import { silentLogger } from '../../src/log.js';
import { loadRulesOrThrow } from '../../src/rules/load.js';
import { startService, type Running } from '../../src/serve.js';
import { startFakePrometheus, vector, type FakePrometheus } from '../helpers/fake-prometheus.js';
import { webhookPayload } from '../helpers/payload.js';
import { testPrefix, TOPOLOGIES, useRedis, type TestRedis } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';

const TOKEN = 'integration-token-0123456789';

/** A firing TargetDown alert for `instance`. */
const payload = (instance: string, startsAt?: string) =>
  webhookPayload({
    alertname: 'TargetDown',
    instance,
    labels: { severity: 'page' },
    ...(startsAt !== undefined ? { startsAt } : {}),
  });

describe.each(TOPOLOGIES)('integration: webhook → queue → worker → Prometheus-confirmed record (%s Redis)', (topology) => {
  const prefix = testPrefix('core');
  const stops: (() => unknown)[] = [];
  let redis: TestRedis;
  let prom: FakePrometheus;
  let target: Server;
  const heals: string[] = [];
  let running: Running;
  let base: string;

  beforeAll(async () => {
    redis = await useRedis(topology, { add: (fn) => stops.push(fn) });
    prom = await startFakePrometheus();
    target = createServer((req, res) => {
      heals.push(req.url ?? '');
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"healed":true}');
    });
    await new Promise<void>((r) => target.listen(0, '127.0.0.1', r));
    const targetUrl = `http://127.0.0.1:${(target.address() as AddressInfo).port}`;
    const rules = mkdtempSync(join(tmpdir(), 'remediator-rules-'));
    writeFileSync(
      join(rules, 't-001.yaml'),
      `id: T-001
title: Target down
match: ['alertname="TargetDown"', 'severity=~"page|critical"']
target: "{{ labels.instance }}"
vars: { heal_url: "${targetUrl}" }
steps:
  - name: heal
    description: POST /heal to the target
    action: { http: { method: POST, url: "{{ vars.heal_url }}/heal/{{ labels.instance }}", timeout: 2s } }
    expect: { promql: 'target_healthy{instance="{{ labels.instance }}"}', op: "==", value: 1, within: 5s }
    estimate: 1m
escalation:
  - when: failed
    to: [webhook]
    message: heal did not work
`,
    );
    const config = loadConfig({
      PORT: '0',
      HOST: '127.0.0.1',
      ...redis.env,
      QUEUE_PREFIX: prefix,
      PROMETHEUS_URL: prom.url,
      RULES_DIR: rules,
      WEBHOOK_TOKEN: TOKEN,
      // The fixtures carry fixed dates: no incident is too old for this test (MAX_INCIDENT_AGE).
      RUN_RETENTION: '3650d',
      MAX_INCIDENT_AGE: '3649d',
      WEBHOOK_MAX_BYTES: String(64 * 1024),
      POLL_INTERVAL: '100ms',
    });
    running = await startService(config, loadRulesOrThrow(rules), silentLogger, { receiver: true, worker: true });
    base = `http://127.0.0.1:${running.port}`;
  });

  afterAll(async () => {
    await running?.stop();
    await prom?.close();
    target?.close();
    await redis?.cleanupPrefix(prefix);
    for (const stop of stops.reverse()) await stop();
  });

  const post = (body: unknown, token = TOKEN, raw?: string) =>
    fetch(`${base}/webhook`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: raw ?? JSON.stringify(body),
    });

  it('runs one procedure per incident however often and concurrently the payload arrives, and records the confirmed value', async () => {
    prom.script(
      'target_healthy{instance="db-1:9100"}',
      vector([{ instance: 'db-1:9100' }, '0']),
      vector([{ instance: 'db-1:9100' }, '1']),
    );
    const body = payload('db-1:9100');
    const responses = await Promise.all(Array.from({ length: 10 }, () => post(body)));
    const results = await Promise.all(
      responses.map((r) => r.json() as Promise<{ enqueued: number; duplicate: number; alerts: { runId: string }[] }>),
    );
    expect(responses.map((r) => r.status)).toEqual(Array(10).fill(202));
    expect(results.reduce((n, r) => n + r.enqueued, 0)).toBe(1);
    expect(results.reduce((n, r) => n + r.duplicate, 0)).toBe(9);
    const runId = results[0]!.alerts[0]!.runId;
    expect(new Set(results.map((r) => r.alerts[0]!.runId))).toEqual(new Set([runId]));

    const run = await waitFor('the run to finish', async () => {
      const res = await fetch(`${base}/api/remediations/${runId}`, { headers: { authorization: `Bearer ${TOKEN}` } });
      const r = (await res.json()) as RunRecord;
      return ['succeeded', 'failed', 'escalated'].includes(r.state) ? r : undefined;
    });
    expect(run.state).toBe('succeeded');
    expect(run.procedure).toBe('T-001');
    expect(run.target).toBe('db-1:9100');
    expect(run.alert.fingerprint).toBe(body.alerts[0]!.fingerprint);
    const step = run.steps[0]!;
    expect(step.status).toBe('passed');
    expect(step.action?.kind).toBe('http');
    // The label was percent-encoded into the URL path: ':' stays a character of one segment.
    expect(heals).toEqual(['/heal/db-1%3A9100']);
    expect(step.result?.httpStatus).toBe(200);
    expect(step.observed).toEqual([{ labels: { instance: 'db-1:9100' }, value: 1, at: expect.any(String) }]);
    expect(step.expect?.attempts).toBeGreaterThanOrEqual(2);
    expect(step.estimate).toBe(60_000);

    // Re-sent after the run finished: still the same incident, nothing new runs.
    const again = await Promise.all(
      Array.from({ length: 10 }, () => post(body).then((r) => r.json() as Promise<{ enqueued: number }>)),
    );
    expect(again.reduce((n, r) => n + r.enqueued, 0)).toBe(0);
    const counts = await redis.jobCounts(prefix);
    expect(counts).toMatchObject({ waiting: 0, active: 0, delayed: 0, completed: 1, failed: 0 });
    expect(heals).toHaveLength(1);

    const list = (await (
      await fetch(`${base}/api/remediations?procedure=T-001`, { headers: { authorization: `Bearer ${TOKEN}` } })
    ).json()) as { runs: RunRecord[] };
    expect(list.runs.map((r) => r.id)).toContain(runId);
  });

  it('a new startsAt of the same alert series is a new incident', async () => {
    prom.script('target_healthy{instance="db-2:9100"}', vector([{ instance: 'db-2:9100' }, '1']));
    const first = (await (await post(payload('db-2:9100', '2026-11-28T08:00:00Z'))).json()) as { enqueued: number };
    const second = (await (await post(payload('db-2:9100', '2026-11-28T08:05:00.5Z'))).json()) as { enqueued: number };
    expect(first.enqueued).toBe(1);
    expect(second.enqueued).toBe(1);
  });

  it('answers per alert: ignored when no procedure matches', async () => {
    const body = payload('x:1');
    body.alerts[0]!.labels = { alertname: 'SomethingElse', procedure: 'T-001', instance: 'x:1' };
    const res = await post(body);
    expect(res.status).toBe(202);
    expect(await res.json()).toMatchObject({
      enqueued: 0,
      ignored: 1,
      alerts: [{ result: 'ignored', reason: 'no procedure matched' }],
    });
  });

  it('rejects a bad payload with 400 naming the field, a wrong token with 401, a large body with 413', async () => {
    const bad = payload('y:1');
    bad.alerts[0]!.startsAt = 'yesterday';
    const res = await post(bad);
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ issues: [{ path: 'alerts[0].startsAt' }] });

    const notJson = await post(undefined, TOKEN, '{"version": "4",');
    expect(notJson.status).toBe(400);
    expect(((await notJson.json()) as { error: string }).error).toMatch(/not valid JSON/);

    expect((await post(payload('y:1'), 'wrong-token-wrong-token')).status).toBe(401);
    expect((await fetch(`${base}/api/remediations`)).status).toBe(401);
    expect((await post(undefined, TOKEN, JSON.stringify({ pad: 'x'.repeat(70 * 1024) }))).status).toBe(413);
  });

  it('exports its metrics', async () => {
    const text = await (await fetch(`${base}/metrics`)).text();
    expect(text).toMatch(/remediator_webhook_requests_total\{code="202"\} [1-9]/);
    expect(text).toMatch(/remediator_runs_total\{procedure="T-001",outcome="succeeded"\} [1-9]/);
    expect(text).toMatch(/remediator_alerts_total\{result="duplicate"\} [1-9]/);
    expect(text).toMatch(/remediator_queue_jobs\{state="completed"\} [1-9]/);
    expect(text).toMatch(/remediator_step_duration_seconds_bucket/);
  });
});
