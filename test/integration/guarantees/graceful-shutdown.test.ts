import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakePrometheus, vector, type FakePrometheus } from '../../helpers/fake-prometheus.js';
import { reportGuarantee } from '../../helpers/guarantee-report.js';
import { testPrefix, TOPOLOGIES, useRedis, type TestRedis } from '../../helpers/redis.js';
import type { RemediatorProcess } from '../../helpers/remediator.js';
import { startSink, type Sink } from '../../helpers/sink.js';
import { waitFor } from '../../helpers/wait.js';
import { Api, baseEnv, Cleanup, healthyQuery, httpProcedure, startAll, workerPid, workerReady, writeRules } from './common.js';
import { webhookPayload } from '../../helpers/payload.js';

/**
 * Guarantee 8: graceful shutdown. SIGTERM to a serve process in the middle of a step stops intake at once
 * (/readyz 503 or connection refused), lets the step finish, or past SHUTDOWN_TIMEOUT hands the run back from
 * its checkpoint, closes its connections and exits 0; another worker finishes a handed-back run.
 */
describe.each(TOPOLOGIES)('guarantee 8: graceful shutdown on SIGTERM (%s Redis)', (topology) => {
  let redis: TestRedis;
  const prefix = testPrefix('g8-shutdown');
  const cleanup = new Cleanup();
  let prom: FakePrometheus;
  let sink: Sink;
  let env: Record<string, string>;
  let receiver: Api;

  beforeAll(async () => {
    redis = await useRedis(topology, cleanup);
    cleanup.add(() => redis.cleanupPrefix(prefix));
    prom = await startFakePrometheus();
    cleanup.add(() => prom.close());
    // shut-long's action takes 20 s (longer than SHUTDOWN_TIMEOUT); shut-short's 4 s (shorter).
    sink = await startSink({
      delayMs: (hit, nth) =>
        nth > 0 ? 0 : hit.path.startsWith('/act/shut-long/') ? 20_000 : hit.path.startsWith('/act/shut-short/') ? 4000 : 0,
    });
    cleanup.add(() => sink.close());
    const rulesDir = writeRules(cleanup, {
      'shut.yaml': httpProcedure({ id: 'SHUT-1', alertname: 'ShutDown', sinkUrl: sink.url }),
    });
    env = baseEnv({ prefix, rulesDir, prometheusUrl: prom.url, redis: redis.env }, { SHUTDOWN_TIMEOUT: '2s' });
    // A receiver that stays up, to read the records while the serve processes come and go.
    const [r] = await startAll(cleanup, [{ env, command: 'receiver', name: 'g8-receiver' }]);
    receiver = new Api(r!.url);
  });

  afterAll(() => cleanup.run());

  /** Starts a serve process alone, gets a run into its step, then SIGTERMs it; returns timings. */
  async function sigtermMidStep(instance: string, extraEnv: Record<string, string>, startOther: boolean) {
    prom.script(healthyQuery(instance), vector([{ instance }, '1']));
    const [serve] = await startAll(cleanup, [{ env: { ...env, ...extraEnv }, command: 'serve', name: `g8-serve-${instance}` }]);
    const api = new Api(serve!.url);
    const runId = (await api.webhook(webhookPayload({ alertname: 'ShutDown', instance }))).alerts[0]!.runId!;
    await sink.waitForHit((h) => h.path.startsWith(`/act/${instance}/`));
    const before = await receiver.waitRun(
      runId,
      'running on the serve process',
      (r) => r.state === 'running' && workerPid(r) === serve!.process.pid,
    );
    let other: RemediatorProcess | undefined;
    if (startOther) {
      [other] = await startAll(cleanup, [{ env, command: 'worker', name: `g8-worker-${instance}` }]);
      await workerReady(other!);
    }

    serve!.process.kill('SIGTERM');
    const t0 = Date.now();
    // Intake stops: the probe fails (or nobody listens any more), and so does the webhook. How soon is a figure.
    const probe = await waitFor(
      'intake to stop',
      async () => {
        const res = await fetch(`${serve!.url}/readyz`).catch(() => 'refused' as const);
        return res === 'refused' ? 'refused' : res.status === 503 ? '503' : undefined;
      },
      { intervalMs: 20 },
    );
    const intakeStoppedMs = Date.now() - t0;
    const webhook = await api.post(webhookPayload({ alertname: 'ShutDown', instance: `${instance}-late` })).then(
      (r) => String(r.status),
      () => 'refused',
    );
    expect(['503', 'refused']).toContain(webhook);
    const exit = await serve!.process.exited;
    const exitAt = Date.now();
    const exitMs = exitAt - t0;
    return { runId, before, other, exit, exitAt, exitMs, probe, intakeStoppedMs, serve: serve! };
  }

  it('a step longer than SHUTDOWN_TIMEOUT is handed back from its checkpoint and another worker finishes the run; exit 0', async () => {
    const { runId, before, other, exit, exitMs, probe, intakeStoppedMs } = await sigtermMidStep('shut-long', {}, true);
    try {
      expect(exit).toEqual({ code: 0, signal: null });
      // SHUTDOWN_TIMEOUT 2 s was honoured (a lower bound: load only makes it later), then the interrupted run is
      // requeued: the process exited before the step's own end, the action's connection closed, not answered.
      expect(exitMs).toBeGreaterThanOrEqual(1900);
      expect(sink.hitsTo('/act/shut-long/')[0]!.aborted).toBe(true);

      const done = await receiver.waitFinal(runId, 20_000);
      expect(done.state).toBe('succeeded');
      expect(workerPid(done)).toBe(other!.process.pid);
      expect(done.worker).not.toBe(before.worker);
      expect(done.takeovers).toBe(1);
      // Handed back at once, not after a stall timeout; the other worker looked before acting again.
      expect(done.steps[0]!.reason).toBe('verified after takeover; the action was not repeated');
      expect(sink.hitsTo('/act/shut-long/')).toHaveLength(1);
    } finally {
      // An idle worker stops at once, and cleanly (and must not take the next test's run).
      expect(await other!.process.stop()).toEqual({ code: 0, signal: null });
    }
    reportGuarantee('graceful-shutdown-handback', {
      topology,
      faultsInjected: 1,
      fault: 'SIGTERM mid-step (step > SHUTDOWN_TIMEOUT)',
      SHUTDOWN_TIMEOUT: '2s',
      intake: probe,
      intakeStoppedMs,
      exitCode: exit.code ?? -1,
      exitMs,
      runsLost: 0,
    });
  });

  it('a step shorter than SHUTDOWN_TIMEOUT finishes on the stopping process, which then exits 0', async () => {
    const { runId, before, exit, exitAt, exitMs, probe } = await sigtermMidStep('shut-short', { SHUTDOWN_TIMEOUT: '10s' }, false);
    expect(exit).toEqual({ code: 0, signal: null });
    const done = await receiver.waitFinal(runId);
    expect(done.state).toBe('succeeded');
    expect(done.worker).toBe(before.worker);
    expect(done.takeovers).toBe(0);
    expect(sink.hitsTo('/act/shut-short/')).toHaveLength(1);
    // The step's answer came, then the process exited (not SHUTDOWN_TIMEOUT's end).
    expect(sink.hitsTo('/act/shut-short/')[0]!.aborted).toBeUndefined();
    expect(sink.hitsTo('/act/shut-short/')[0]!.endedAt).toBeLessThanOrEqual(exitAt);
    reportGuarantee('graceful-shutdown-finish', {
      topology,
      fault: 'SIGTERM mid-step (step < SHUTDOWN_TIMEOUT)',
      intake: probe,
      exitCode: exit.code ?? -1,
      exitMs,
      runsLost: 0,
    });
  });
});
