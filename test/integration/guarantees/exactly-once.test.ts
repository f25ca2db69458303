import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakePrometheus, vector, type FakePrometheus } from '../../helpers/fake-prometheus.js';
import { reportGuarantee } from '../../helpers/guarantee-report.js';
import { testPrefix, TOPOLOGIES, useRedis, type TestRedis } from '../../helpers/redis.js';
import type { RemediatorProcess } from '../../helpers/remediator.js';
import { startSink, type Sink } from '../../helpers/sink.js';
import { waitFor } from '../../helpers/wait.js';
import {
  Api,
  baseEnv,
  Cleanup,
  FINAL,
  healthyQuery,
  httpProcedure,
  startAll,
  workerReady,
  writeRules,
  type WebhookAnswer,
} from './common.js';
import { webhookPayload } from '../../helpers/payload.js';

/**
 * Guarantee 1: exactly one run per incident. Three receiver processes and three worker processes share one
 * Redis (a single server, and a three-primary Cluster); every alert arrives 20 times concurrently, spread over the
 * receivers (an Alertmanager HA pair and its retries), and again after the runs finished. Runs started (records)
 * and actions executed (sink hits) must both equal the number of incidents.
 */
describe.each(TOPOLOGIES)('guarantee 1: exactly one run per incident (3 receivers, 3 workers, %s Redis)', (topology) => {
  const N = 10;
  const COPIES = 20;
  const prefix = testPrefix('g1-once');
  const cleanup = new Cleanup();
  let prom: FakePrometheus;
  let sink: Sink;
  let receivers: RemediatorProcess[];
  let workers: RemediatorProcess[];
  let redis: TestRedis;

  beforeAll(async () => {
    redis = await useRedis(topology, cleanup);
    cleanup.add(() => redis.cleanupPrefix(prefix));
    prom = await startFakePrometheus();
    cleanup.add(() => prom.close());
    sink = await startSink({ delayMs: () => 200 });
    cleanup.add(() => sink.close());
    const rulesDir = writeRules(cleanup, {
      'once.yaml': httpProcedure({ id: 'ONCE-1', alertname: 'OnceDown', sinkUrl: sink.url }),
    });
    const env = baseEnv({ prefix, rulesDir, prometheusUrl: prom.url, redis: redis.env });
    const procs = await startAll(cleanup, [
      ...[1, 2, 3].map((i) => ({ env, command: 'receiver' as const, name: `g1-receiver-${i}` })),
      ...[1, 2, 3].map((i) => ({ env: { ...env, WORKER_CONCURRENCY: '5' }, command: 'worker' as const, name: `g1-worker-${i}` })),
    ]);
    receivers = procs.slice(0, 3);
    workers = procs.slice(3);
    await Promise.all(workers.map((w) => workerReady(w)));
  });

  afterAll(() => cleanup.run());

  it('N incidents × 20 concurrent deliveries over 3 receivers, and again after they finished → N runs, N actions', async () => {
    const instances = Array.from({ length: N }, (_, i) => `once-${i}`);
    for (const i of instances) prom.script(healthyQuery(i), vector([{ instance: i }, '1']));
    const bodies = instances.map((instance) => webhookPayload({ alertname: 'OnceDown', instance }));

    const deliver = () =>
      Promise.all(
        bodies.flatMap((body, b) =>
          Array.from({ length: COPIES }, (_, c) => {
            const api = new Api(receivers[(b + c) % receivers.length]!.url);
            return api.webhook(body);
          }),
        ),
      );
    const sum = (answers: WebhookAnswer[], k: 'enqueued' | 'duplicate') => answers.reduce((n, a) => n + a[k], 0);

    const first = await deliver();
    expect(first).toHaveLength(N * COPIES);
    expect(sum(first, 'enqueued')).toBe(N);
    expect(sum(first, 'duplicate')).toBe(N * COPIES - N);
    const runIds = new Set(first.flatMap((a) => a.alerts.map((x) => x.runId)));
    expect(runIds.size).toBe(N);

    const api = new Api(receivers[0]!.url);
    const done = await waitFor(
      'every run to finish',
      async () => {
        const runs = await api.runs({ procedure: 'ONCE-1' });
        return runs.length === N && runs.every((r) => FINAL.includes(r.state)) ? runs : undefined;
      },
      30_000,
    );
    expect(done.map((r) => r.state)).toEqual(Array(N).fill('succeeded'));

    // Re-sent after the runs finished (Alertmanager's repeat_interval, a second HA peer): nothing new starts.
    const again = await deliver();
    expect(sum(again, 'enqueued')).toBe(0);
    expect(sum(again, 'duplicate')).toBe(N * COPIES);
    // The queue holds exactly the N finished jobs: nothing new was added, nothing is waiting or delayed.
    expect(await redis.jobCounts(prefix)).toMatchObject({ waiting: 0, active: 0, delayed: 0, completed: N, failed: 0 });

    const runs = await api.runs({ procedure: 'ONCE-1' });
    const actions = sink.hitsTo('/act/');
    expect(runs).toHaveLength(N);
    expect(actions).toHaveLength(N);
    for (const i of instances) expect(sink.hitsTo(`/act/${i}/`)).toHaveLength(1);
    // Each run executed on one of the three workers; together they shared the work.
    const workerIds = new Set(runs.map((r) => r.worker));
    expect(runs.every((r) => r.takeovers === 0)).toBe(true);

    reportGuarantee('exactly-once', {
      topology,
      incidents: N,
      deliveries: 2 * N * COPIES,
      duplicatesDelivered: 2 * N * COPIES - N,
      runsStarted: runs.length,
      actionsExecuted: actions.length,
      receivers: receivers.length,
      workers: workers.length,
      workersUsed: workerIds.size,
    });
  });
});
