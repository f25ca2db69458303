import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { redisKeys } from '../../../src/queue/keys.js';
import { startFakePrometheus, vector, type FakePrometheus } from '../../helpers/fake-prometheus.js';
import { reportGuarantee } from '../../helpers/guarantee-report.js';
import { testPrefix, TOPOLOGIES, useRedis, type TestRedis } from '../../helpers/redis.js';
import type { RemediatorProcess } from '../../helpers/remediator.js';
import { startSink, type Sink } from '../../helpers/sink.js';
import { Api, baseEnv, Cleanup, healthyQuery, httpProcedure, startAll, workerPid, workerReady, writeRules } from './common.js';
import { webhookPayload } from '../../helpers/payload.js';

/**
 * Guarantee 2: one remediation per target at a time, across worker processes. Two procedures that match the
 * same alert (same target) hit a sink that holds each request ~1 s and measures how many are in flight per
 * target: never more than one; the second run records why it waits, then runs. And a lease held by a worker
 * that is SIGKILLed does not block the target for good.
 */
describe.each(TOPOLOGIES)('guarantee 2: one remediation per target at a time (%s Redis)', (topology) => {
  let redis: TestRedis;
  const prefix = testPrefix('g2-target');
  const cleanup = new Cleanup();
  let prom: FakePrometheus;
  let sink: Sink;
  let receiver: RemediatorProcess;
  let workers: RemediatorProcess[];
  let api: Api;

  beforeAll(async () => {
    redis = await useRedis(topology, cleanup);
    cleanup.add(() => redis.cleanupPrefix(prefix));
    prom = await startFakePrometheus();
    cleanup.add(() => prom.close());
    // PT-C's first action hangs for 20 s (its worker is killed meanwhile); every other action takes ~2 s.
    sink = await startSink({ delayMs: (hit, nth) => (hit.path.includes('/PT-C/') && nth === 0 ? 20_000 : 2000) });
    cleanup.add(() => sink.close());
    const rulesDir = writeRules(cleanup, {
      'a.yaml': httpProcedure({ id: 'PT-A', alertname: 'SameTarget', sinkUrl: sink.url }),
      'b.yaml': httpProcedure({ id: 'PT-B', alertname: 'SameTarget', sinkUrl: sink.url }),
      'c.yaml': httpProcedure({ id: 'PT-C', alertname: 'LeaseHolder', sinkUrl: sink.url }),
      'd.yaml': httpProcedure({ id: 'PT-D', alertname: 'LeaseWaiter', sinkUrl: sink.url }),
    });
    const env = baseEnv({ prefix, rulesDir, prometheusUrl: prom.url, redis: redis.env });
    const procs = await startAll(cleanup, [
      { env, command: 'receiver', name: 'g2-receiver' },
      { env, command: 'worker', name: 'g2-worker-1' },
      { env, command: 'worker', name: 'g2-worker-2' },
    ]);
    receiver = procs[0]!;
    workers = procs.slice(1);
    await Promise.all(workers.map((w) => workerReady(w)));
    api = new Api(receiver.url);
  });

  afterAll(() => cleanup.run());

  it('two procedures on one target never act concurrently; the second records that it waits, then runs', async () => {
    prom.script(healthyQuery('shared-1'), vector([{ instance: 'shared-1' }, '1']));
    const answer = await api.webhook(webhookPayload({ alertname: 'SameTarget', instance: 'shared-1' }));
    expect(answer.enqueued).toBe(2);
    const ids = answer.alerts.map((a) => a.runId!);

    // One of them is told to wait, in its record, while the other holds the target.
    const waiting = await new Promise<{ id: string; reason: string }>((resolve, reject) => {
      const deadline = Date.now() + 15_000;
      const poll = async () => {
        for (const id of ids) {
          const r = await api.run(id);
          if (r?.reason?.startsWith('waiting: run ')) return resolve({ id, reason: r.reason });
        }
        if (Date.now() > deadline) return reject(new Error('no run recorded a waiting reason'));
        setTimeout(() => void poll().catch(reject), 50);
      };
      void poll().catch(reject);
    });
    const holder = ids.find((id) => id !== waiting.id)!;
    expect(waiting.reason).toContain(holder);

    const [a, b] = await Promise.all(ids.map((id) => api.waitFinal(id, 25_000)));
    expect([a!.state, b!.state]).toEqual(['succeeded', 'succeeded']);
    const hits = sink.hitsTo('/act/shared-1/');
    expect(hits).toHaveLength(2);
    expect(sink.maxInFlight('shared-1')).toBe(1);
    // The waiting run acted only after the holder's action had ended.
    const [first, second] = [...hits].sort((x, y) => x.at - y.at);
    expect(second!.at).toBeGreaterThanOrEqual(first!.endedAt!);
    expect(first!.path).toContain((await api.run(holder))!.procedure);

    reportGuarantee('one-per-target', {
      topology,
      procedures: 2,
      target: 'shared-1',
      maxInFlightPerTarget: sink.maxInFlight('shared-1'),
      waitedRecorded: true,
    });
  });

  it('a lease held by a SIGKILLed worker does not block the target: the run is taken over, finishes, and the waiting run acts', async () => {
    prom.script(healthyQuery('shared-2'), vector([{ instance: 'shared-2' }, '1']));
    const holderId = (await api.webhook(webhookPayload({ alertname: 'LeaseHolder', instance: 'shared-2' }))).alerts[0]!.runId!;
    await sink.waitForHit((h) => h.path.startsWith('/act/shared-2/PT-C/'));
    const holding = await api.waitRun(
      holderId,
      'in its action with a worker',
      (r) => r.state === 'running' && r.worker !== undefined,
    );
    const waiterId = (await api.webhook(webhookPayload({ alertname: 'LeaseWaiter', instance: 'shared-2' }))).alerts[0]!.runId!;
    await api.waitRun(
      waiterId,
      'waiting for the target',
      (r) => r.reason === `waiting: run ${holderId} is remediating the same target`,
    );

    const victim = workers.find((w) => w.process.pid === workerPid(holding));
    expect(victim, `worker ${holding.worker} is one of ours`).toBeDefined();
    const client = await redis.connect();
    try {
      const leaseKey = redisKeys(prefix).lease('shared-2');
      victim!.process.kill('SIGKILL');
      const killedAt = Date.now();
      await victim!.process.exited;
      // The dead worker's lease belongs to the run and carries a TTL: it ends by itself even if nobody resumed the run.
      expect(await client.get(leaseKey)).toBe(holderId);
      const ttl = await client.pttl(leaseKey);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(4000 + 2000 + 30_000);

      const holderDone = await api.waitFinal(holderId, 30_000);
      const waiterDone = await api.waitFinal(waiterId, 30_000);
      const unblockedMs = Date.now() - killedAt;
      expect(holderDone.state).toBe('succeeded');
      expect(holderDone.takeovers).toBe(1);
      expect(holderDone.worker).not.toBe(holding.worker);
      // Its action may have happened before the kill: the new worker verified first, found it healthy, did not repeat it.
      expect(holderDone.steps[0]!.reason).toBe('verified after takeover; the action was not repeated');
      expect(sink.hitsTo('/act/shared-2/PT-C/')).toHaveLength(1);
      expect(waiterDone.state).toBe('succeeded');
      expect(sink.maxInFlight('shared-2')).toBe(1);
      // The waiter acted once, after the holder's takeover had finished.
      expect(sink.hitsTo('/act/shared-2/PT-D/')).toHaveLength(1);
      expect(await client.exists(leaseKey)).toBe(0);
      reportGuarantee('one-per-target-dead-lease', {
        topology,
        faultsInjected: 1,
        fault: 'SIGKILL lease-holding worker',
        runsLost: 0,
        targetUnblockedMs: unblockedMs,
        leaseTtlMs: 36_000,
      });
    } finally {
      client.disconnect();
    }
  });
});
