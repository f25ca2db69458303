import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakePrometheus, vector, type FakePrometheus } from '../../helpers/fake-prometheus.js';
import { reportGuarantee } from '../../helpers/guarantee-report.js';
import { testPrefix, TOPOLOGIES, useRedis, type TestRedis } from '../../helpers/redis.js';
import type { RemediatorProcess } from '../../helpers/remediator.js';
import { startSink, type Sink } from '../../helpers/sink.js';
import { Api, baseEnv, Cleanup, healthyQuery, httpProcedure, startAll, workerPid, workerReady, writeRules } from './common.js';
import { webhookPayload } from '../../helpers/payload.js';

const LOCK_DURATION = '4s';
const STALLED_INTERVAL = '2s';

/**
 * Guarantee 5: crash-safe resume. Three workers (one is killed per test); a three-step procedure whose step 2 action hangs (the sink holds
 * it 20 s). The worker running it (found through the record's `worker` host:pid) is SIGKILLed in the middle of
 * step 2. The other worker takes the run over after about LOCK_DURATION + STALLED_INTERVAL, resumes at step 2
 * (step 1's action is not executed again), verifies step 2's expectation before acting again, and finishes.
 */
describe.each(TOPOLOGIES)('guarantee 5: crash-safe resume after SIGKILL mid-step (%s Redis)', (topology) => {
  let redis: TestRedis;
  const prefix = testPrefix('g5-crash');
  const cleanup = new Cleanup();
  let prom: FakePrometheus;
  let sink: Sink;
  let receiver: RemediatorProcess;
  let workers: RemediatorProcess[];
  /** Prometheus queries seen when step 2's action arrived again (after the takeover). */
  let queriesAtSecondStep2 = -1;

  beforeAll(async () => {
    redis = await useRedis(topology, cleanup);
    cleanup.add(() => redis.cleanupPrefix(prefix));
    prom = await startFakePrometheus();
    cleanup.add(() => prom.close());
    sink = await startSink({
      delayMs: (hit, nth) => {
        if (!hit.path.endsWith('/step2')) return 0;
        if (nth === 1 && hit.path.includes('/crash-1/')) queriesAtSecondStep2 = prom.queries(healthyQuery('crash-1')).length;
        return nth === 0 ? 20_000 : 0;
      },
    });
    cleanup.add(() => sink.close());
    const rulesDir = writeRules(cleanup, {
      'crash.yaml': httpProcedure({ id: 'CRASH-1', alertname: 'CrashMe', sinkUrl: sink.url, steps: ['step1', 'step2', 'step3'] }),
    });
    const env = baseEnv({ prefix, rulesDir, prometheusUrl: prom.url, redis: redis.env }, { LOCK_DURATION, STALLED_INTERVAL });
    const procs = await startAll(cleanup, [
      { env, command: 'receiver', name: 'g5-receiver' },
      { env, command: 'worker', name: 'g5-worker-1' },
      { env, command: 'worker', name: 'g5-worker-2' },
      { env, command: 'worker', name: 'g5-worker-3' },
    ]);
    receiver = procs[0]!;
    workers = procs.slice(1);
    await Promise.all(workers.map((w) => workerReady(w)));
  });

  afterAll(() => cleanup.run());

  /** Starts a run, waits until step 2's action hangs, SIGKILLs the worker running it; returns what it saw. */
  async function crashInStep2(api: Api, instance: string) {
    const runId = (await api.webhook(webhookPayload({ alertname: 'CrashMe', instance }))).alerts[0]!.runId!;
    await sink.waitForHit((h) => h.path === `/act/${instance}/CRASH-1/step2`);
    const before = await api.waitRun(
      runId,
      'checkpointed in step 2 action',
      (r) => r.checkpoint?.index === 1 && r.checkpoint.phase === 'action',
    );
    expect(before.steps[0]).toMatchObject({ name: 'step1', status: 'passed' });
    const victim = workers.find((w) => w.process.pid === workerPid(before) && w.process.exitInfo() === null);
    expect(victim, `record.worker ${before.worker} is one of our live workers`).toBeDefined();
    victim!.process.kill('SIGKILL');
    const killedAt = Date.now();
    await victim!.process.exited;
    const resumed = await api.waitRun(
      runId,
      'taken over by another worker',
      (r) => r.takeovers === 1 && r.worker !== before.worker,
      20_000,
    );
    const takeoverMs = Date.now() - killedAt;
    const done = await api.waitFinal(runId, 20_000);
    return { runId, before, resumed, done, takeoverMs, finishedMs: Date.now() - killedAt, victim: victim! };
  }

  it('the action may have happened and the check holds: the other worker resumes at step 2, does not repeat it, finishes; takeover time measured', async () => {
    prom.script(healthyQuery('crash-2'), vector([{ instance: 'crash-2' }, '1']));
    const api = new Api(receiver.url);
    const { before, resumed, done, takeoverMs, finishedMs, victim } = await crashInStep2(api, 'crash-2');
    const survivors = workers.filter((w) => w !== victim).map((w) => w.process.pid);
    expect(survivors).toContain(workerPid(resumed));
    // Resumed at step 2 (step 1's action ran once in all), looked first, and did not act again.
    expect(sink.hitsTo('/act/crash-2/CRASH-1/step1')).toHaveLength(1);
    expect(sink.hitsTo('/act/crash-2/CRASH-1/step2')).toHaveLength(1);
    expect(done.steps.map((s) => [s.name, s.status])).toEqual([
      ['step1', 'passed'],
      ['step2', 'passed'],
      ['step3', 'passed'],
    ]);
    expect(done.steps[1]!.reason).toBe('verified after takeover; the action was not repeated');
    expect(done.steps[1]!.observed).toEqual([{ labels: { instance: 'crash-2' }, value: 1, at: expect.any(String) }]);
    expect(sink.hitsTo('/act/crash-2/CRASH-1/step3')).toHaveLength(1);
    expect(done.state).toBe('succeeded');
    expect(done.takeovers).toBe(1);
    expect(done.epoch).toBeGreaterThan(before.epoch);
    // takeoverMs (about LOCK_DURATION + 2 × STALLED_INTERVAL: one stall pass marks, the next moves) is a figure.

    reportGuarantee('crash-resume', {
      topology,
      faultsInjected: 1,
      fault: 'SIGKILL worker mid-step',
      runsLost: 0,
      LOCK_DURATION,
      STALLED_INTERVAL,
      takeoverMs,
      killToFinishedMs: finishedMs,
      step1Executions: sink.hitsTo('/act/crash-2/CRASH-1/step1').length,
      step2Executions: sink.hitsTo('/act/crash-2/CRASH-1/step2').length,
    });
  });

  // Step 2's action hung when its worker died, so it may or may not have happened. The takeover looks first
  // (Prometheus: not healthy yet), then repeats the interrupted attempt rather than counting it as used.
  it('the action may have happened and the check does not hold: the other worker verifies, acts again, finishes', async () => {
    // step 1 verifies healthy; the takeover's look-before-acting sees unhealthy; after acting again, healthy.
    prom.script(
      healthyQuery('crash-1'),
      vector([{ instance: 'crash-1' }, '1']),
      vector([{ instance: 'crash-1' }, '0']),
      vector([{ instance: 'crash-1' }, '1']),
    );
    const api = new Api(receiver.url);
    const { done } = await crashInStep2(api, 'crash-1');
    // Resumed at step 2: step 1's action ran once in all.
    expect(sink.hitsTo('/act/crash-1/CRASH-1/step1')).toHaveLength(1);
    // Looked before acting again: the second step-2 action came after the takeover's Prometheus query.
    expect(queriesAtSecondStep2).toBe(2);
    expect(sink.hitsTo('/act/crash-1/CRASH-1/step2')).toHaveLength(2);
    expect(done.state).toBe('succeeded');
    expect(done.takeovers).toBe(1);
    expect(done.steps.map((s) => [s.name, s.status])).toEqual([
      ['step1', 'passed'],
      ['step2', 'passed'],
      ['step3', 'passed'],
    ]);
    reportGuarantee('crash-resume-act-again', {
      topology,
      faultsInjected: 1,
      fault: 'SIGKILL worker mid-step',
      runsLost: 0,
      takeoverVerifiedFirst: true,
      step2Executions: 2,
      runState: done.state,
    });
  });
});
