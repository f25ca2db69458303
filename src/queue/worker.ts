import { hostname } from 'node:os';
import { DelayedError, Worker, type Job } from 'bullmq';
import type { Logger } from 'pino';
import { isFinal, type RunRecord } from '../engine/record.js';
import { cancelReason, runProcedure, type EngineDeps } from '../engine/run.js';
import type { Escalator, Notifier } from '../engine/escalate.js';
import type { AlertmanagerClient } from '../alertmanager/client.js';
import type { RedisClient } from './connection.js';
import type { AutomationControl } from './control.js';
import type { Procedure } from '../rules/schema.js';
import { QUEUE_NAME, type RedisKeys } from './keys.js';
import type { TargetLocks } from './locks.js';
import type { RunJob } from './queue.js';
import { StaleEpochError, type RecordStore } from './records.js';

export interface WorkerOptions {
  /** A connection with maxRetriesPerRequest: null (BullMQ requires it for workers); closed by close(). */
  redis: RedisClient;
  keys: RedisKeys;
  concurrency: number;
  lockDurationMs: number;
  stalledIntervalMs: number;
  procedures: ReadonlyMap<string, Procedure>;
  store: RecordStore;
  locks: TargetLocks;
  escalate: Escalator;
  /** Procedure-independent notices (the storm breaker's pause). */
  notify: Notifier;
  control: AutomationControl;
  storm: { targets: number; windowMs: number };
  /** For rule `silence`; absent without ALERTMANAGER_URL. */
  alertmanager?: AlertmanagerClient;
  engine: Omit<EngineDeps, 'save' | 'escalate' | 'resolvedAt' | 'log'>;
  log: Logger;
  /** How long a run waits before looking again when another run holds its target. */
  targetBusyRetryMs?: number;
}

/** A record for a job whose record is missing (the receiver died between add and record write). */
export function recordFromJob(job: RunJob, procedure: Procedure | undefined, dryRun: boolean): RunRecord {
  return {
    id: job.runId,
    procedure: job.procedure,
    title: procedure?.title ?? job.procedure,
    target: job.target,
    state: 'queued',
    alert: { ...job.alert, annotations: job.alert.annotations ?? {} },
    trigger: job.trigger,
    dryRun,
    steps: [],
    escalations: [],
    epoch: 0,
    takeovers: 0,
    sla: {},
  };
}

const WORKER_ID = `${hostname()}:${process.pid}`;

/** The only file that knows BullMQ's worker: wraps the engine with leases, budgets, fencing and cancellation. */
export function createWorker(opts: WorkerOptions): {
  worker: Worker<RunJob>;
  redis: RedisClient;
  close(timeoutMs: number): Promise<void>;
} {
  const redis = opts.redis;
  const busyRetry = opts.targetBusyRetryMs ?? 2000;
  let shuttingDown = false;

  async function process(job: Job<RunJob>, token: string | undefined, signal?: AbortSignal): Promise<string> {
    const data = job.data;
    const log = opts.log.child({ runId: data.runId, procedure: data.procedure });
    const procedure = opts.procedures.get(data.procedure);
    let record = (await opts.store.get(data.runId)) ?? recordFromJob(data, procedure, opts.engine.settings.dryRun);
    if (isFinal(record.state)) return record.state; // finished before (a re-delivery after the outcome was saved)
    record.epoch = job.attemptsStarted;
    const save = (r: RunRecord) => opts.store.save(r);

    if (procedure === undefined) {
      Object.assign(record, {
        state: 'failed',
        reason: `procedure ${data.procedure} is no longer loaded`,
        endedAt: new Date().toISOString(),
      });
      await save(record);
      return record.state;
    }
    const started = record.steps.length > 0 || record.checkpoint !== undefined;
    if (!started && record.cancelRequested !== undefined) {
      Object.assign(record, {
        state: 'cancelled',
        reason: cancelReason(record.cancelRequested, 'before the run started'),
        endedAt: new Date().toISOString(),
      });
      await save(record);
      opts.engine.metrics.runs.inc({ procedure: data.procedure, outcome: 'cancelled' });
      return record.state;
    }
    if (!started && record.resolvedAt !== undefined) {
      Object.assign(record, {
        state: 'cancelled',
        reason: `alert resolved at ${record.resolvedAt}, before the run started`,
        endedAt: new Date().toISOString(),
      });
      await save(record);
      return record.state;
    }

    const holder = await opts.locks.acquire(record.target, record.id);
    if (holder !== undefined) {
      record.reason = `waiting: run ${holder} is remediating the same target`;
      await save(record);
      log.info({ holder }, 'target busy, run deferred');
      await job.moveToDelayed(Date.now() + busyRetry + Math.floor(Math.random() * busyRetry), token);
      throw new DelayedError();
    }
    const renew = setInterval(
      () => void opts.locks.acquire(record.target, record.id).catch(() => {}),
      Math.max(1000, opts.locks.leaseTtlMs / 3),
    );
    const engineDeps = {
      ...opts.engine,
      save,
      escalate: opts.escalate,
      resolvedAt: (id: string) => opts.store.resolvedAt(id),
      cancelRequested: (id: string) => opts.store.cancelRequest(id),
      log: opts.log,
    };
    const runSignal = signal ?? new AbortController().signal;
    record.worker = WORKER_ID;
    try {
      if (!started) {
        // Storm breaker: many distinct targets at once is a wider incident; automation stands back.
        const firing = await opts.control.noteTarget(record.target, opts.storm.windowMs);
        if (firing > opts.storm.targets) {
          await opts.control.pause(
            `storm: ${firing} distinct targets firing within ${opts.storm.windowMs / 1000}s (threshold ${opts.storm.targets})`,
            'storm-breaker',
          );
        }
        const pause = await opts.control.state();
        if (pause.paused) {
          // Recorded, not dropped: the plan of what would have run, nothing executed.
          const planReason = `automation paused (${pause.reason ?? 'by hand'}): recorded the plan, executed nothing`;
          const escalate: Escalator = async (r, p) => {
            if (await opts.control.claimPauseNotice())
              await opts.notify(
                'paused',
                `Automatic remediation paused: ${pause.reason ?? 'by hand'}. Resume with POST /api/resume.`,
                r,
              );
            await opts.escalate(r, p, 'paused');
          };
          // The engine records the plan; its one final save carries the pause as the reason.
          record = await runProcedure(
            procedure,
            record,
            { ...engineDeps, escalate, settings: { ...opts.engine.settings, dryRun: true, planReason } },
            runSignal,
          );
          return record.state;
        }
        if (procedure.budget !== undefined) {
          const ok = await opts.locks.takeBudget(
            procedure.id,
            record.target,
            record.id,
            procedure.budget.runs,
            procedure.budget.per,
          );
          if (!ok) return await budgetExhausted(record, procedure, save);
        }
      }
      const silence = started ? undefined : await silenceAlert(record, procedure, log);
      if (silence) record.silence = silence;
      try {
        record = await runProcedure(procedure, record, engineDeps, runSignal);
      } finally {
        if (record.silence && !record.silence.expired && isFinal(record.state) && opts.alertmanager) {
          await opts.alertmanager.expireSilence(record.silence.id).then(
            async () => {
              record.silence!.expired = true;
              await save(record).catch(() => {});
            },
            (err: Error) => log.warn({ err: err.message }, 'could not expire the silence; it ends by itself'),
          );
        }
      }
      return record.state;
    } catch (err) {
      if (err instanceof StaleEpochError) {
        log.warn('another worker took this run over; stopping here');
        throw err;
      }
      if (shuttingDown && runSignal.aborted && token) {
        // Shutdown interrupted a step: hand the run back to the queue now, from its checkpoint, without using
        // up one of its attempts (another worker resumes it at once instead of after the stall timeout).
        log.warn({ checkpoint: record.checkpoint }, 'shutdown interrupted the run; requeued from its checkpoint');
        await job.moveToDelayed(Date.now(), token);
        throw new DelayedError();
      }
      throw err;
    } finally {
      clearInterval(renew);
      if (isFinal(record.state)) await opts.locks.release(record.target, record.id).catch(() => {});
    }
  }

  async function budgetExhausted(
    record: RunRecord,
    procedure: Procedure,
    save: (r: RunRecord) => Promise<void>,
  ): Promise<string> {
    const budget = procedure.budget!;
    const history = await opts.locks.budgetHistory(procedure.id, record.target);
    Object.assign(record, {
      state: 'skipped',
      reason: `budget exhausted: ${budget.runs} runs per ${budget.per / 1000}s on this target (runs ${history.join(', ')}); no action taken`,
      startedAt: new Date().toISOString(),
      endedAt: new Date().toISOString(),
    });
    // Escalate once per window with the history; later runs in the window are recorded only.
    if (await opts.locks.claimBudgetNotice(procedure.id, record.target, budget.per)) {
      await opts.escalate(record, procedure, 'budget-exhausted');
      if (record.escalations.some((e) => e.status === 'sent')) record.state = 'escalated';
    } else {
      record.reason += '; escalated already in this window';
    }
    await save(record);
    opts.engine.metrics.runs.inc({ procedure: procedure.id, outcome: record.state as 'skipped' });
    return record.state;
  }

  /** Silences exactly this alert (all its labels) while the run acts, when the procedure asks for it. */
  async function silenceAlert(record: RunRecord, procedure: Procedure, log: Logger): Promise<RunRecord['silence']> {
    if (!procedure.silence || !opts.alertmanager) return undefined;
    const until = new Date(Date.now() + procedure.silence.for);
    const matchers = Object.entries(record.alert.labels).map(([name, value]) => ({ name, value, isRegex: false, isEqual: true }));
    try {
      const id = await opts.alertmanager.createSilence(
        matchers,
        until,
        `remediator: ${procedure.id} run ${record.id} in progress`,
      );
      return { id, until: until.toISOString() };
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'could not silence the alert; going on without');
      return undefined;
    }
  }

  const worker = new Worker<RunJob>(QUEUE_NAME, process, {
    connection: redis,
    prefix: opts.keys.bullPrefix,
    concurrency: opts.concurrency,
    lockDuration: opts.lockDurationMs,
    stalledInterval: opts.stalledIntervalMs,
    // A rolling deploy can kill a run's worker more than once; the checkpoint makes resuming safe.
    maxStalledCount: 3,
  });
  worker.on('error', (err) => opts.log.error({ err: err.message }, 'worker error'));
  worker.on('failed', (job, err) => opts.log.error({ runId: job?.id, err: err.message }, 'run job failed'));
  // A worker that lost its lock must stop acting: the run belongs to whoever took it over.
  worker.on('lockRenewalFailed', (ids) => ids.forEach((id) => worker.cancelJob(id, 'lock lost')));

  return {
    worker,
    redis,
    async close(timeoutMs: number) {
      shuttingDown = true;
      const closing = worker.close();
      const timer = (ms: number) => new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), ms).unref());
      if ((await Promise.race([closing.then(() => 'closed' as const), timer(timeoutMs)])) === 'timeout') {
        // Abort the steps still running: each saves nothing more, requeues its run from the checkpoint.
        opts.log.warn({ timeoutMs }, 'steps still running at shutdown timeout; handing their runs back to the queue');
        worker.cancelAllJobs('shutdown');
        if ((await Promise.race([closing.then(() => 'closed' as const), timer(5000)])) === 'timeout') await worker.close(true);
      }
      redis.disconnect();
    },
  };
}
