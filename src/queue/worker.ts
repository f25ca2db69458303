import type { Job } from 'bullmq';
import { DelayedError } from 'bullmq/dist/cjs/classes/errors/delayed-error.js';
import { Worker } from 'bullmq/dist/cjs/classes/worker.js';
import type { RedisClient } from './connection.js';
import type { Logger } from 'pino';
import { admitAndRun, LeaseLostError, type AdmissionDeps } from '../engine/admission.js';
import { GATES } from '../engine/gates.js';
import type { Procedure } from '../rules/schema.js';
import { queueName, type RedisKeys } from './keys.js';
import type { RunJob } from './queue.js';
import { StaleEpochError } from './records.js';

export interface WorkerOptions {
  /** A connection with maxRetriesPerRequest: null (BullMQ requires it for workers); closed by close(). */
  redis: RedisClient;
  keys: RedisKeys;
  concurrency: number;
  lockDurationMs: number;
  stalledIntervalMs: number;
  procedures: ReadonlyMap<string, Procedure>;
  /** The routes whose queues this worker takes jobs from (WORKER_ROUTES; `default` when not routed). */
  routes: readonly string[];
  /** The stores, escalation and engine settings the admission gates and the engine run on. */
  admission: AdmissionDeps;
  log: Logger;
}

/**
 * The only file that knows BullMQ's worker. It maps a job to the engine's admitAndRun, and the engine's
 * answers back to BullMQ: a deferred run is moved to delayed, a run whose lease was lost or whose step was
 * interrupted by shutdown is handed back from its checkpoint, a run another worker took over stops here.
 */
export function createWorker(opts: WorkerOptions): {
  /** One BullMQ worker per route, on the same connection. */
  workers: Worker<RunJob>[];
  redis: RedisClient;
  close(timeoutMs: number): Promise<void>;
} {
  const redis = opts.redis;
  let shuttingDown = false;

  async function processJob(route: string, job: Job<RunJob>, token: string | undefined, signal?: AbortSignal): Promise<string> {
    const { runId, procedure, target, alert, trigger, rerunOf } = job.data;
    // Only the hand-back paths below log: the child logger is made for them alone.
    const log = () => opts.log.child({ runId, procedure });
    // The producer writes the route into the job it puts in that route's queue: anything else was not put there by
    // a receiver (or by hand), and a host-local worker must not act on another host's target.
    if (job.data.route !== undefined && job.data.route !== route)
      throw new Error(`job of route ${job.data.route} found in the queue of route ${route}: not run`);
    const runSignal = signal ?? new AbortController().signal;
    const handBack = async (delayMs: number): Promise<never> => {
      await job.moveToDelayed(Date.now() + delayMs, token);
      throw new DelayedError();
    };
    try {
      const outcome = await admitAndRun(
        { run: { id: runId, procedure, target, alert, trigger, rerunOf }, epoch: job.attemptsStarted },
        opts.procedures,
        GATES,
        opts.admission,
        runSignal,
      );
      if (outcome.kind === 'defer') return await handBack(outcome.delayMs);
      return outcome.state;
    } catch (err) {
      if (err instanceof DelayedError) throw err;
      if (err instanceof StaleEpochError) {
        log().warn('another worker took this run over; stopping here');
        throw err;
      }
      if (err instanceof LeaseLostError && token) {
        // Another run holds the target now: wait for it (the lease gate), then resume from the checkpoint.
        log().warn({ err: err.message }, 'target lease lost; run handed back to the queue from its checkpoint');
        return await handBack(opts.admission.targetBusyRetryMs ?? 2000);
      }
      if (shuttingDown && runSignal.aborted && token) {
        // Shutdown interrupted a step: hand the run back to the queue now, from its checkpoint, without using
        // up one of its attempts (another worker resumes it at once instead of after the stall timeout).
        log().warn('shutdown interrupted the run; requeued from its checkpoint');
        return await handBack(0);
      }
      throw err;
    }
  }

  const workers = opts.routes.map((route) => {
    const worker = new Worker<RunJob>(queueName(route), (job, token, signal) => processJob(route, job, token, signal), {
      connection: redis,
      prefix: opts.keys.bullPrefix,
      // Per route: WORKER_CONCURRENCY runs of each route at once.
      concurrency: opts.concurrency,
      lockDuration: opts.lockDurationMs,
      stalledInterval: opts.stalledIntervalMs,
      // A rolling deploy can kill a run's worker more than once; the checkpoint makes resuming safe.
      maxStalledCount: 3,
    });
    worker.on('error', (err) => opts.log.error({ err: err.message, route }, 'worker error'));
    worker.on('failed', (job, err) => opts.log.error({ runId: job?.id, route, err: err.message }, 'run job failed'));
    // A worker that lost its lock must stop acting: the run belongs to whoever took it over.
    worker.on('lockRenewalFailed', (ids) => ids.forEach((id) => worker.cancelJob(id, 'lock lost')));
    return worker;
  });

  return {
    workers,
    redis,
    /**
     * Stops taking jobs and lets the steps in progress finish within `timeoutMs`; then aborts them (each hands its run
     * back from the checkpoint). Bounded even when Redis does not answer (a hand-back cannot be written then: the
     * run's lock expires and another worker resumes it from its last checkpoint): at most timeoutMs + 5 s.
     */
    async close(timeoutMs: number) {
      shuttingDown = true;
      const closing = Promise.all(workers.map((w) => w.close()));
      const timer = (ms: number) => new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), ms).unref());
      const closed = closing.then(
        () => 'closed' as const,
        () => 'closed' as const,
      );
      try {
        if ((await Promise.race([closed, timer(timeoutMs)])) === 'timeout') {
          // Abort the steps still running: each saves nothing more, requeues its run from the checkpoint.
          opts.log.warn({ timeoutMs }, 'steps still running at shutdown timeout; handing their runs back to the queue');
          for (const w of workers) w.cancelAllJobs('shutdown');
          if ((await Promise.race([closed, timer(3000)])) === 'timeout')
            await Promise.race([Promise.all(workers.map((w) => w.close(true).catch(() => {}))), timer(2000)]);
        }
      } finally {
        redis.disconnect(); // pending commands fail now instead of waiting for a Redis that may not come back
      }
    },
  };
}
