import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunRecord } from '../../../src/engine/record.js';
import { startFakePrometheus, vector, type FakePrometheus } from '../../helpers/fake-prometheus.js';
import { reportGuarantee } from '../../helpers/guarantee-report.js';
import { testPrefix, TOPOLOGIES, useRedis, type TestRedis } from '../../helpers/redis.js';
import type { RemediatorProcess } from '../../helpers/remediator.js';
import { startSink, type Sink } from '../../helpers/sink.js';
import { waitFor } from '../../helpers/wait.js';
import { Api, baseEnv, Cleanup, FINAL, healthyQuery, httpProcedure, startAll, TOKEN, writeRules } from './common.js';
import { webhookPayload } from '../../helpers/payload.js';

/**
 * Guarantee 4: the storm breaker and the kill switch. With STORM_TARGETS=3, six distinct targets firing at once
 * pause all automation; exactly one pause notice reaches the escalation webhook; paused alerts are recorded as
 * `skipped` with the plan of what would have run, and nothing executes while paused. POST /api/pause and
 * /api/resume (401 without the token) and PAUSED=true at start do the same by hand.
 */
describe.each(TOPOLOGIES)('guarantee 4: storm breaker and kill switch (%s Redis)', (topology) => {
  let redis: TestRedis;
  const prefix = testPrefix('g4-storm');
  const cleanup = new Cleanup();
  let prom: FakePrometheus;
  let sink: Sink;
  let procs: RemediatorProcess[];
  let env: Record<string, string>;
  let api: Api;

  const plainFetch = (path: string, method = 'GET', token?: string) =>
    fetch(`${procs[0]!.url}${path}`, { method, headers: token ? { authorization: `Bearer ${token}` } : {} });
  const pauseNotices = () => sink.hitsTo('/escalate').filter((h) => (h.body as { kind?: string }).kind === 'remediation-paused');
  const fire = async (a: Api, instances: string[]): Promise<RunRecord[]> => {
    for (const i of instances) prom.script(healthyQuery(i), vector([{ instance: i }, '1']));
    const answer = await a.webhook(webhookPayload(...instances.map((instance) => ({ alertname: 'StormDown', instance }))));
    expect(answer.enqueued).toBe(instances.length);
    // Final, with the reason written (a dry-run reason would mean the pause was not recorded as the cause).
    return Promise.all(
      answer.alerts.map((x) =>
        a.waitRun(
          x.runId!,
          'final, with its reason',
          (r) => FINAL.includes(r.state) && !r.reason?.startsWith('dry run:'),
          20_000,
        ),
      ),
    );
  };
  /** A paused run: skipped, the reason says why, every step carries "dry run: would run …", nothing hit the sink. */
  const expectPlanOnly = (r: RunRecord, why: RegExp) => {
    expect(r.state).toBe('skipped');
    expect(r.reason).toMatch(why);
    expect(r.steps.length).toBeGreaterThan(0);
    for (const s of r.steps) {
      expect(s.status).toBe('skipped');
      expect(s.result?.output).toMatch(/^dry run: would run POST http:\/\/127\.0\.0\.1:\d+\/act\//);
    }
    expect(sink.hitsTo(`/act/${r.target}/`)).toHaveLength(0);
  };

  beforeAll(async () => {
    redis = await useRedis(topology, cleanup);
    cleanup.add(() => redis.cleanupPrefix(prefix));
    prom = await startFakePrometheus();
    cleanup.add(() => prom.close());
    sink = await startSink();
    cleanup.add(() => sink.close());
    const rulesDir = writeRules(cleanup, {
      'storm.yaml': httpProcedure({ id: 'STORM-1', alertname: 'StormDown', sinkUrl: sink.url, steps: ['first', 'second'] }),
    });
    env = baseEnv(
      { prefix, rulesDir, prometheusUrl: prom.url, redis: redis.env, escalationUrl: `${sink.url}/escalate` },
      { STORM_TARGETS: '3' },
    );
    procs = await startAll(cleanup, [
      { env, command: 'serve', name: 'g4-serve-1' },
      { env, command: 'serve', name: 'g4-serve-2' },
    ]);
    api = new Api(procs[0]!.url);
  });

  afterAll(() => cleanup.run());

  it('more than STORM_TARGETS distinct targets at once pause automation: one notice, the rest recorded with their plan, nothing executed after', async () => {
    const storm = Array.from({ length: 6 }, (_, i) => `storm-${i}`);
    const runs = await fire(api, storm);
    const acted = runs.filter((r) => sink.hitsTo(`/act/${r.target}/`).length > 0);
    const skipped = runs.filter((r) => r.state === 'skipped');
    // At most STORM_TARGETS runs got through before the breaker tripped; every other one is a plan only.
    expect(acted.length).toBeLessThanOrEqual(3);
    expect(acted.every((r) => r.state === 'succeeded')).toBe(true);
    expect(acted.length + skipped.length).toBe(6);
    for (const r of skipped)
      expectPlanOnly(r, /^automation paused \(storm: \d+ distinct targets firing within 300s \(threshold 3\)\)/);

    const state = (await (await plainFetch('/api/pause', 'GET', TOKEN)).json()) as { paused: boolean; by: string };
    expect(state).toMatchObject({ paused: true, by: 'storm-breaker' });
    const notices = await waitFor('the pause notice', () => (pauseNotices().length > 0 ? pauseNotices() : undefined));
    expect((notices[0]!.body as { message: string }).message).toMatch(/^Automatic remediation paused: storm: /);

    // Later alerts, through the other process too: recorded with the plan, nothing executes.
    const hitsBefore = sink.hitsTo('/act/').length;
    const later = await fire(new Api(procs[1]!.url), ['storm-6', 'storm-7', 'storm-8']);
    for (const r of later) expectPlanOnly(r, /^automation paused \(storm/);
    expect(sink.hitsTo('/act/')).toHaveLength(hitsBefore);
    expect(pauseNotices()).toHaveLength(1);

    reportGuarantee('storm-breaker', {
      topology,
      stormTargets: 3,
      targetsFiring: 9,
      runsActed: acted.length,
      runsRecordedAsPlan: skipped.length + later.length,
      executedAfterPause: sink.hitsTo('/act/').length - hitsBefore,
      pauseNotices: pauseNotices().length,
    });
  });

  it('POST /api/pause and /api/resume need the token, and pause and resume automation by hand', async () => {
    for (const [path, method] of [
      ['/api/pause', 'GET'],
      ['/api/pause', 'POST'],
      ['/api/resume', 'POST'],
    ] as const) {
      expect((await plainFetch(path, method)).status, `${method} ${path} without a token`).toBe(401);
      expect((await plainFetch(path, method, 'wrong-token-wrong-token')).status, `${method} ${path} with a wrong token`).toBe(
        401,
      );
    }
    // Still paused by the storm: the unauthenticated calls changed nothing.
    expect(((await (await plainFetch('/api/pause', 'GET', TOKEN)).json()) as { paused: boolean }).paused).toBe(true);

    const resumed = await plainFetch('/api/resume', 'POST', TOKEN);
    expect(resumed.status).toBe(200);
    expect(await resumed.json()).toMatchObject({ paused: false, resumed: true });
    const [ok] = await fire(api, ['manual-1']);
    expect(ok!.state).toBe('succeeded');
    expect(sink.hitsTo('/act/manual-1/')).toHaveLength(2);

    const paused = await fetch(`${api.base}/api/pause`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'maintenance window' }),
    });
    expect(paused.status).toBe(200);
    expect(await paused.json()).toMatchObject({ paused: true, by: 'api', reason: 'maintenance window' });
    expect((await plainFetch('/api/pause', 'POST', TOKEN)).status).toBe(409);
    const [held] = await fire(new Api(procs[1]!.url), ['manual-2']);
    expectPlanOnly(held!, /^automation paused \(maintenance window\)/);
    // One notice per pause: the storm's, and this one.
    await waitFor('the second pause notice', () => (pauseNotices().length === 2 ? true : undefined));
    expect((await plainFetch('/api/resume', 'POST', TOKEN)).status).toBe(200);
  });

  it('PAUSED=true at start pauses automation until POST /api/resume', async () => {
    const [cfg] = await startAll(cleanup, [{ env: { ...env, PAUSED: 'true' }, command: 'serve', name: 'g4-serve-paused' }]);
    const cfgApi = new Api(cfg!.url);
    const state = (await (await fetch(`${cfg!.url}/api/pause`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as {
      paused: boolean;
      by: string;
      reason: string;
    };
    expect(state).toMatchObject({ paused: true, by: 'config', reason: 'PAUSED=true at start' });
    const [held] = await fire(cfgApi, ['cfg-1']);
    expectPlanOnly(held!, /^automation paused \(PAUSED=true at start\)/);
    expect(
      (await fetch(`${cfg!.url}/api/resume`, { method: 'POST', headers: { authorization: `Bearer ${TOKEN}` } })).status,
    ).toBe(200);
    const [ok] = await fire(cfgApi, ['cfg-2']);
    expect(ok!.state).toBe('succeeded');
    const all = await cfgApi.runs({ procedure: 'STORM-1' });
    expect(all.every((r) => FINAL.includes(r.state))).toBe(true);
  });
});
