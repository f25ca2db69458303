import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { queueName, redisKeys } from '../../src/queue/keys.js';
import { startFakePrometheus, vector, type FakePrometheus } from '../helpers/fake-prometheus.js';
import { cleanupPrefix, REDIS_URL, requireRedis, testPrefix } from '../helpers/redis.js';
import type { RemediatorProcess } from '../helpers/remediator.js';
import { Api, baseEnv, Cleanup, startAll, TOKEN, workerPid, workerReady, writeRules } from './guarantees/common.js';
import { webhookPayload } from '../helpers/payload.js';

/**
 * Where the actions run (docs/supervisor.md): a central receiver serves a fleet, and each "host" runs a worker
 * that takes only its own targets' jobs (WORKER_ROUTES), on real Redis. Each process here stands for a host: it
 * has its own directory (REMEDIATOR_VAR_HOST_DIR, as a host-local worker has its own ipc_path and restart command)
 * and the exec step writes the incident there, so a job run on the wrong "host" leaves its mark in the wrong place.
 */
const SCRIPT =
  "require('fs').appendFileSync(require('path').join(process.argv[1], 'ran'), process.argv[2] + ' ' + process.argv[3] + '\\n')";
const RULE = `id: RT-1
title: routed test procedure
match: ['alertname="Routed"']
target: "{{ labels.instance }}"
vars: { host_dir: /nonexistent }
steps:
  - name: act
    action: { exec: { command: [${JSON.stringify(process.execPath)}, "-e", ${JSON.stringify(SCRIPT)}, "{{ vars.host_dir }}", "{{ labels.instance }}", "{{ labels.n }}"], timeout: 10s } }
    expect: { promql: 'healthy{instance="{{ labels.instance }}"}', op: "==", value: 1, within: 3s }
`;

describe('routing by target: a central receiver, host-local workers that run only their own targets (real Redis)', () => {
  const prefix = testPrefix('routing');
  const cleanup = new Cleanup();
  let prom: FakePrometheus;
  let central: RemediatorProcess;
  let workerA: RemediatorProcess;
  let workerB: RemediatorProcess;
  let otherReceiver: RemediatorProcess;
  let api: Api;
  const dirs = { central: '', a: '', b: '' };
  /** What each "host" ran: `<instance> <n>` lines. */
  const ran = (dir: string) =>
    existsSync(join(dir, 'ran'))
      ? readFileSync(join(dir, 'ran'), 'utf8')
          .split('\n')
          .filter((l) => l !== '')
      : [];
  let n = 0;
  const alert = (instance: string, extra: Record<string, string> = {}) => {
    n += 1;
    return {
      alertname: 'Routed',
      instance,
      labels: { n: String(n), ...extra },
      startsAt: `2026-11-28T07:00:${String(n).padStart(2, '0')}.000Z`,
    };
  };

  beforeAll(async () => {
    await requireRedis();
    cleanup.add(() => cleanupPrefix(prefix));
    prom = await startFakePrometheus();
    cleanup.add(() => prom.close());
    for (const instance of ['host-a', 'HOST-A:9466', 'host-b', 'host-c'])
      prom.script(`healthy{instance="${instance}"}`, vector([{ instance }, '1']));
    const rulesDir = writeRules(cleanup, { 'rt-1.yaml': RULE });
    const config = cleanup.tempDir('routes');
    const routesFile = join(config, 'routes.yaml');
    writeFileSync(routesFile, 'routes:\n  host-a: [host-a]\n  host-b: [host-b]\n');
    // A receiver whose table disagrees (mid-rollout of a routing change): host-a → host-b.
    const changedFile = join(config, 'routes-changed.yaml');
    writeFileSync(changedFile, 'routes:\n  host-b: [host-a, host-b]\n  host-a: [elsewhere]\n');
    dirs.central = cleanup.tempDir('host-central');
    dirs.a = cleanup.tempDir('host-a');
    dirs.b = cleanup.tempDir('host-b');
    const env = baseEnv({ prefix, rulesDir, prometheusUrl: prom.url, redis: { REDIS_URL } });
    [central, workerA, workerB, otherReceiver] = (await startAll(cleanup, [
      // The central process: receiver, and the worker of the default route (unrouted targets).
      { env: { ...env, ROUTES_FILE: routesFile, REMEDIATOR_VAR_HOST_DIR: dirs.central }, command: 'serve', name: 'rt-central' },
      // Host-local workers: with the table (checked against it) and without it (not needed to serve a route).
      {
        env: { ...env, ROUTES_FILE: routesFile, WORKER_ROUTES: 'host-a', REMEDIATOR_VAR_HOST_DIR: dirs.a },
        command: 'worker',
        name: 'rt-worker-a',
      },
      { env: { ...env, WORKER_ROUTES: 'host-b', REMEDIATOR_VAR_HOST_DIR: dirs.b }, command: 'worker', name: 'rt-worker-b' },
      { env: { ...env, ROUTES_FILE: changedFile, WORKER_ROUTES: 'host-b' }, command: 'receiver', name: 'rt-receiver-2' },
    ])) as [RemediatorProcess, RemediatorProcess, RemediatorProcess, RemediatorProcess];
    await Promise.all([workerReady(workerA), workerReady(workerB)]);
    api = new Api(central.url, TOKEN);
  });

  afterAll(() => cleanup.run());

  it('each worker runs only the jobs of its own targets; unrouted targets go to the default route; labels choose no route', async () => {
    const alerts = [
      alert('host-a'),
      alert('host-b'),
      alert('host-a'),
      alert('host-b'),
      alert('HOST-A:9466'), // another spelling of host-a: the same route (and lease, and budget)
      alert('host-c'), // in no route: the default route, run by the central process
      alert('host-c', { route: 'host-a', queue: 'remediations-host-a' }), // labels name a route: nothing follows from it
    ];
    const answer = await api.webhook(webhookPayload(...alerts));
    expect(answer.enqueued).toBe(alerts.length);
    const runs = await Promise.all(answer.alerts.map((a) => api.waitFinal(a.runId!, 30_000)));
    expect(runs.map((r) => r.state)).toEqual(alerts.map(() => 'succeeded'));

    const pidOf = {
      'host-a': workerA.process.pid,
      'HOST-A:9466': workerA.process.pid,
      'host-b': workerB.process.pid,
      'host-c': central.process.pid,
    };
    expect(runs.map((r) => [r.target, workerPid(r)])).toEqual(
      alerts.map((a) => [a.instance, pidOf[a.instance as keyof typeof pidOf]]),
    );

    const line = (a: ReturnType<typeof alert>) => `${a.instance} ${a.labels.n}`;
    expect(ran(dirs.a).sort()).toEqual(
      alerts
        .filter((a) => /host-a/i.test(a.instance))
        .map(line)
        .sort(),
    );
    expect(ran(dirs.b).sort()).toEqual(
      alerts
        .filter((a) => a.instance === 'host-b')
        .map(line)
        .sort(),
    );
    expect(ran(dirs.central).sort()).toEqual(
      alerts
        .filter((a) => a.instance === 'host-c')
        .map(line)
        .sort(),
    );

    // Each job sits in its route's queue and in no other.
    const redis = new Redis(REDIS_URL);
    try {
      const keys = redisKeys(prefix);
      for (const [i, a] of answer.alerts.entries()) {
        const route = /host-a/i.test(alerts[i]!.instance) ? 'host-a' : alerts[i]!.instance === 'host-b' ? 'host-b' : 'default';
        expect(await redis.get(keys.route(a.runId!))).toBe(route);
        for (const q of ['default', 'host-a', 'host-b'])
          expect(await redis.exists(`${keys.bullPrefix}:${queueName(q)}:${a.runId!}`), `${a.runId} in ${q}`).toBe(
            q === route ? 1 : 0,
          );
      }
    } finally {
      redis.disconnect();
    }
  });

  it('exactly once across routes: a re-send through a receiver whose table routes the target elsewhere adds nothing', async () => {
    const first = alert('host-a');
    const runId = (await api.webhook(webhookPayload(first))).alerts[0]!.runId!;
    expect((await api.waitFinal(runId, 30_000)).state).toBe('succeeded');
    // The other receiver routes host-a to host-b; the incident's claimed route (host-a) wins, its job is known there.
    const again = await new Api(otherReceiver.url, TOKEN).webhook(webhookPayload(first));
    expect(again.alerts[0]).toMatchObject({ runId, result: 'duplicate' });
    // No second job anywhere: had it gone into host-b's queue, a host-b worker could take the incident while host-a's
    // still runs it (the record alone does not stop that).
    const redis = new Redis(REDIS_URL);
    try {
      const keys = redisKeys(prefix);
      expect(await redis.exists(`${keys.bullPrefix}:${queueName('host-b')}:${runId}`)).toBe(0);
      expect(await redis.exists(`${keys.bullPrefix}:${queueName('host-a')}:${runId}`)).toBe(1);
    } finally {
      redis.disconnect();
    }
    // A new incident through it follows its own table: host-b's worker runs it.
    const second = alert('host-a');
    const secondId = (await new Api(otherReceiver.url, TOKEN).webhook(webhookPayload(second))).alerts[0]!.runId!;
    const secondRun = await api.waitFinal(secondId, 30_000);
    expect(workerPid(secondRun)).toBe(workerB.process.pid);
    expect(ran(dirs.a).filter((l) => l === `host-a ${first.labels.n}`)).toHaveLength(1);
    expect(ran(dirs.b).filter((l) => l === `host-a ${first.labels.n}`)).toHaveLength(0);
    expect(ran(dirs.b)).toContain(`host-a ${second.labels.n}`);
  });

  it('the kill switch holds on every route: paused, a host-local worker records the plan and runs nothing', async () => {
    const res = await fetch(`${central.url}/api/pause`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'routing test' }),
    });
    expect(res.status).toBe(200);
    try {
      const paused = alert('host-b');
      const runId = (await api.webhook(webhookPayload(paused))).alerts[0]!.runId!;
      const run = await api.waitFinal(runId, 30_000);
      expect(run.state).toBe('skipped');
      expect(workerPid(run)).toBe(workerB.process.pid);
      expect(ran(dirs.b)).not.toContain(`host-b ${paused.labels.n}`);
    } finally {
      await fetch(`${central.url}/api/resume`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: '{}',
      });
    }
  });
});
