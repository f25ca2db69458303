import { DelayedError, Worker, type Job } from 'bullmq';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { isFinal, type RunRecord } from '../engine/record.js';
import { runProcedure, type EngineDeps } from '../engine/run.js';
import type { Escalator } from '../engine/escalate.js';
import type { Procedure } from '../rules/schema.js';
import { QUEUE_NAME, type RedisKeys } from './keys.js';
import type { TargetLocks } from './locks.js';
import type { RunJob } from './queue.js';
import { StaleEpochError, type RecordStore } from './records.js';

export interface WorkerOptions {
  /** A connection with maxRetriesPerRequest: null (BullMQ requires it for workers); closed by close(). */
  redis: Redis;
  keys: RedisKeys;
  concurrency: number;
  lockDurationMs: number;
  stalledIntervalMs: number;
  procedures: ReadonlyMap<string, Procedure>;
  store: RecordStore;
  locks: TargetLocks;
  escalate: Escalator;
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

/** The only file that knows BullMQ's worker: wraps the engine with leases, budgets, fencing and cancellation. */
export function createWorker(opts: WorkerOptions): { worker: Worker<RunJob>; redis: Redis; close(timeoutMs: number): Promise<void> } {
  const redis = opts.redis;
  const busyRetry = opts.targetBusyRetryMs ?? 2000;

  async function process(job: Job<RunJob>, token: string | undefined, signal?: AbortSignal): Promise<string> {
    const data = job.data;
    const log = opts.log.child({ runId: data.runId, procedure: data.procedure });
    const procedure = opts.procedures.get(data.procedure);
    let record = (await opts.store.get(data.runId)) ?? recordFromJob(data, procedure, opts.engine.settings.dryRun);
    if (isFinal(record.state)) return record.state; // finished before (a re-delivery after the outcome was saved)
    record.epoch = job.attemptsStarted;
    const save = (r: RunRecord) => opts.store.save(r);

    if (procedure === undefined) {
      Object.assign(record, { state: 'failed', reason: `procedure ${data.procedure} is no longer loaded`, endedAt: new Date().toISOString() });
      await save(record);
      return record.state;
    }
    const started = record.steps.length > 0 || record.checkpoint !== undefined;
    if (!started && record.resolvedAt !== undefined) {
      Object.assign(record, { state: 'cancelled', reason: `alert resolved at ${record.resolvedAt}, before the run started`, endedAt: new Date().toISOString() });
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
    const renew = setInterval(() => void opts.locks.acquire(record.target, record.id).catch(() => {}), Math.max(1000, opts.locks.leaseTtlMs / 3));
    try {
      if (!started && procedure.budget !== undefined) {
        const ok = await opts.locks.takeBudget(procedure.id, record.target, record.id, procedure.budget.runs, procedure.budget.per);
        if (!ok) {
          const history = await opts.locks.budgetHistory(procedure.id, record.target);
          Object.assign(record, {
            state: 'skipped',
            reason: `budget exhausted: ${procedure.budget.runs} runs per ${procedure.budget.per / 1000}s on this target (runs ${history.join(', ')}); no action taken`,
            startedAt: new Date().toISOString(),
            endedAt: new Date().toISOString(),
          });
          await save(record);
          await opts.escalate(record, procedure, 'budget-exhausted');
          if (record.escalations.some((e) => e.status === 'sent')) record.state = 'escalated';
          await save(record);
          opts.engine.metrics.runs.inc({ procedure: procedure.id, outcome: record.state as 'skipped' });
          return record.state;
        }
      }
      record = await runProcedure(
        procedure,
        record,
        { ...opts.engine, save, escalate: opts.escalate, resolvedAt: (id) => opts.store.resolvedAt(id), log: opts.log },
        signal ?? new AbortController().signal,
      );
      return record.state;
    } catch (err) {
      if (err instanceof StaleEpochError) log.warn('another worker took this run over; stopping here');
      throw err;
    } finally {
      clearInterval(renew);
      if (isFinal(record.state)) await opts.locks.release(record.target, record.id).catch(() => {});
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
      const closing = worker.close();
      const timer = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), timeoutMs).unref());
      if ((await Promise.race([closing.then(() => 'closed' as const), timer])) === 'timeout') {
        opts.log.warn({ timeoutMs }, 'steps still running at shutdown timeout; leaving them to another worker');
        await worker.close(true);
      }
      redis.disconnect();
    },
  };
}
