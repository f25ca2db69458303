import type { JobsOptions } from 'bullmq';
import { Queue } from 'bullmq/dist/cjs/classes/queue.js';
import type { Alert } from '../alertmanager/payload.js';
import type { RunRecord } from '../engine/record.js';
import type { RedisSettings } from '../redis-settings.js';
import { connectRedis, waitForReplicas, type RedisClient } from './connection.js';
import { DEFAULT_ROUTE, NO_ROUTES, routeOf, routeOfCanonical, type RouteTable } from '../routes.js';
import { canonicalTarget } from '../target.js';
import { queueName, type RedisKeys } from './keys.js';
import { jobDefaults, jobIdentity } from './jobs.js';
import { CREATE_RUNS_COMMAND, type CreateRunsPayload, type IntakeJob, type RecordStore } from './records.js';

/** What a job carries: enough to rebuild the run record if it is missing. No secrets (stored in clear). */
export interface RunJob {
  runId: string;
  procedure: string;
  target: string;
  alert: Pick<Alert, 'labels' | 'annotations' | 'fingerprint' | 'startsAt' | 'status' | 'generatorURL'>;
  trigger: RunRecord['trigger'];
  /** A re-run started by an operator: the run it repeats. */
  rerunOf?: string;
  /** The BullMQ job id when it is not the run id: a reopened incident's next generation (`<runId>-g2`). */
  jobId?: string;
  /** The route whose queue holds the job (set by the producer; absent on jobs queued before routing existed). */
  route?: string;
}

/** A webhook's new run: its record and its job, stored together (Producer.ingest). */
export interface IngestItem {
  record: RunRecord;
  job: RunJob;
}
/**
 * At most this many runs per createRuns call (a payload larger than it still goes whole, alone). A script blocks
 * Redis while it runs: a flood of large payloads must not become one long script that holds up the workers' lease
 * renewals and everyone else's commands; ~1,000 runs is some tens of milliseconds of Redis.
 */
export const MAX_RUNS_PER_CALL = 1000;

/**
 * Takes from the front of `waiting` (in place) the payloads of the next call: in arrival order, while their runs
 * stay within `maxRuns`, and always at least one.
 */
export function takeBatch<T extends { payload: { records: readonly unknown[] } }>(waiting: T[], maxRuns: number): T[] {
  let runs = 0;
  let n = 0;
  while (n < waiting.length) {
    const size = waiting[n]!.payload.records.length;
    if (n > 0 && runs + size > maxRuns) break;
    runs += size;
    n++;
  }
  return waiting.splice(0, n);
}

/** A payload waiting for Producer.ingest's next createRuns call. */
interface WaitingPayload {
  store: RecordStore;
  payload: CreateRunsPayload;
  resolve(outcomes: IngestOutcome[]): void;
  reject(err: Error): void;
}

/** `provisional`: known already, and that run only recorded its plan (dry-run, paused): the caller may reopen it. */
export type IngestOutcome = 'created' | 'duplicate' | 'provisional';

export interface ProducerOptions {
  redis: RedisSettings;
  keys: RedisKeys;
  retentionMs: number;
  /** ROUTES_FILE: which route (queue) each target's jobs go to. Default: every target on `default`. */
  routes?: RouteTable;
}

/**
 * A job's data as stored, without its route (the producer adds the route it claimed; the intake dispatcher the one
 * createRuns claimed): receiver, group key and annotations are the record's, not each job's.
 */
export function storedData(job: RunJob): RunJob {
  const { receiver: _receiver, groupKey: _groupKey, ...trigger } = job.trigger;
  const { route: _route, ...rest } = job;
  return { ...rest, alert: { ...job.alert, annotations: {} }, trigger };
}

export class ReplicationError extends Error {
  override readonly name = 'ReplicationError';
}

/**
 * The receiver's side of the queue. Fails fast when Redis is away (no offline queue, one retry), so the
 * webhook answers 503 and Alertmanager retries, instead of hanging past Alertmanager's deadline.
 *
 * One BullMQ queue per route (routes.ts): `remediations` for `default`, `remediations-<route>` for the others. The
 * queues share one connection and every key of the prefix, so leases, budgets, the kill switch and the storm
 * breaker hold across routes exactly as within one.
 */
export class Producer {
  readonly redis: RedisClient;
  /** The `default` route's queue (every job when no ROUTES_FILE is given). */
  readonly queue: Queue<RunJob>;
  readonly routes: RouteTable;
  private readonly byRoute = new Map<string, Queue<RunJob>>();
  private readonly jobDefaults: JobsOptions;

  constructor(private readonly opts: ProducerOptions) {
    this.redis = connectRedis(opts.redis, 'producer');
    this.redis.on('error', () => {}); // surfaced through readiness and 503s; ioredis reconnects by itself
    this.routes = opts.routes ?? NO_ROUTES;
    this.jobDefaults = jobDefaults(opts.retentionMs);
    this.queue = this.queueOf(DEFAULT_ROUTE);
  }

  /** The queue of a route, made on first use (a claimed route this table no longer declares included). */
  queueOf(route: string): Queue<RunJob> {
    let queue = this.byRoute.get(route);
    if (queue === undefined) {
      queue = new Queue<RunJob>(queueName(route), {
        connection: this.redis,
        prefix: this.opts.keys.bullPrefix,
        defaultJobOptions: this.jobDefaults,
      });
      queue.on('error', () => {});
      this.byRoute.set(route, queue);
    }
    return queue;
  }

  /** The queues of every route the table declares (for counts and listings), `default` first. */
  queues(): { route: string; queue: Queue<RunJob> }[] {
    return this.routes.routes.map((route) => ({ route, queue: this.queueOf(route) }));
  }

  /**
   * The route of an incident: the first delivery claims its table route in Redis (SET NX, kept as long as the
   * incident is remembered), every later one, re-runs of its job generations included, goes where the first went.
   * A routing table changed in between (or two receivers with different tables) can then never put one incident
   * into two queues, where two workers would run it at once.
   */
  async routeOfRun(runId: string, target: string): Promise<string> {
    const wanted = routeOf(this.routes, target);
    const key = this.opts.keys.route(runId);
    // SET NX then GET in one transaction (SET … NX GET needs Redis 7): the value is the claim, ours or an earlier one.
    const replies = await this.redis.multi().set(key, wanted, 'PX', this.opts.retentionMs, 'NX').get(key).exec();
    const claimed = replies?.[1]?.[1];
    if (replies === null || replies.some(([err]) => err !== null) || typeof claimed !== 'string')
      throw new Error(`could not claim the route of run ${runId}`);
    return claimed;
  }

  /** Jobs stored with their records that no worker's dispatcher has added to a queue yet (queue/intake.ts). */
  intakeBacklog(): Promise<number> {
    return this.redis.xlen(this.opts.keys.intake);
  }

  /** The job of a run in whichever route's queue it was put (the `default` one when it has no claimed route). */
  async jobOf(runId: string) {
    const route = (await this.redis.get(this.opts.keys.route(runId))) ?? DEFAULT_ROUTE;
    return this.queueOf(route).getJob(runId);
  }

  /**
   * The stored job: the receiver and group key are the record's (stored once per payload, queue/records.ts), not
   * each job's (a payload of a thousand alerts would otherwise store its group key a thousand times more);
   * annotations likewise (a job rebuilds a missing record from labels alone). Its id is the incident's.
   */
  private stored(job: RunJob, route: string): { data: RunJob; opts: JobsOptions & { jobId: string } } {
    const id = job.jobId ?? job.runId;
    return { data: { ...storedData(job), route }, opts: jobIdentity(id, this.opts.retentionMs) };
  }

  /** Idempotent: the job id is the incident id, so a re-sent alert adds nothing while the job is kept. */
  async enqueue(job: RunJob): Promise<void> {
    const route = await this.routeOfRun(job.runId, job.target);
    const { data, opts } = this.stored(job, route);
    await this.queueOf(route).add('remediate', data, opts);
  }

  /**
   * A webhook's runs in one round trip: one script call (queue/records.ts createRuns) that creates every record not
   * known yet, claims each incident's route and appends each new run's job to the intake stream, all atomically. The
   * intake entry is the durable job: a worker's dispatcher (queue/intake.ts) adds it to BullMQ. Resolves once Redis
   * has answered; rejects when the script failed (the caller answers 503).
   *
   * The payloads that arrive while a call is out go together in the next one, one script for all (as ioredis's
   * auto-pipelining sent them in one write before, one script each; issue 13: a script call's own cost, and an
   * auto-pipeline's, were a large share of a 1-alert webhook's). Each payload's writes stay atomic (the whole call
   * is), each gets its own answer, and the script runs each payload under pcall, so one that cannot be stored fails
   * alone, stopped where a script of its own would have stopped. A call carries at most MAX_RUNS_PER_CALL runs; what
   * is left waits for the next.
   */
  ingest(store: RecordStore, items: readonly IngestItem[]): Promise<IngestOutcome[]> {
    if (items.length === 0) return Promise.resolve([]);
    // Each target in canonical form once, for the record's meta (createRunsArgs) and the job's route (the same target).
    const targets = items.map((i) => canonicalTarget(i.record.target));
    const routes = items.map(({ record, job }, n) =>
      job.target === record.target ? routeOfCanonical(this.routes, targets[n]!) : routeOf(this.routes, job.target),
    );
    const jobs: IntakeJob[] = items.map(({ job }) => ({ id: job.jobId ?? job.runId, data: JSON.stringify(storedData(job)) }));
    const payload: CreateRunsPayload = { records: items.map((i) => i.record), routes, jobs, targets };
    return new Promise((resolve, reject) => {
      this.waiting.push({ store, payload, resolve, reject });
      if (!this.sending && !this.scheduled) {
        this.scheduled = true;
        setImmediate(() => {
          this.scheduled = false;
          this.sendWaiting();
        });
      }
    });
  }

  /** Payloads waiting for the next createRuns call, and whether one is out or about to be sent. */
  private waiting: WaitingPayload[] = [];
  private sending = false;
  private scheduled = false;

  /** Sends what waits (one call per record store: there is one), then again what came meanwhile. */
  private sendWaiting(): void {
    if (this.sending || this.waiting.length === 0) return;
    const batch = takeBatch(this.waiting, MAX_RUNS_PER_CALL);
    this.sending = true;
    const stores = [...new Set(batch.map((w) => w.store))];
    void Promise.all(
      stores.map((store) =>
        this.createRuns(
          store,
          batch.filter((w) => w.store === store),
        ),
      ),
    ).then(() => {
      this.sending = false;
      this.sendWaiting();
    });
  }

  /** One createRuns call for `batch`: each payload its outcomes or its own error. Settles every payload; never rejects. */
  private async createRuns(store: RecordStore, batch: readonly WaitingPayload[]): Promise<void> {
    let replies: unknown;
    try {
      replies = await this.createRunsScript(...store.createRunsArgs(batch.map((w) => w.payload)));
    } catch (err) {
      for (const w of batch) w.reject(err as Error);
      return;
    }
    batch.forEach((w, p) => {
      const reply = Array.isArray(replies) ? (replies[p] as [number, unknown] | undefined) : undefined;
      const runs = reply?.[1];
      if (reply?.[0] === 0) w.reject(new Error(`redis: createRuns: ${String(runs)}`));
      else if (reply?.[0] !== 1 || !Array.isArray(runs) || runs.length !== w.payload.records.length)
        w.reject(new Error('redis: createRuns answered wrongly'));
      else
        w.resolve(
          (runs as [number, string][]).map(([code]) => (code === 1 ? 'created' : code === 2 ? 'provisional' : 'duplicate')),
        );
    });
  }

  private createRunsScript(...args: (string | number)[]): Promise<unknown> {
    const call = this.redis as unknown as Record<string, (...args: (string | number)[]) => Promise<unknown>>;
    return call[CREATE_RUNS_COMMAND]!(...args);
  }

  /**
   * With REDIS_WAIT_REPLICAS: waits until that many replicas hold every write this connection made so far (the
   * records and jobs of the webhook being answered), or throws, so the webhook answers 503 and Alertmanager retries.
   * A 202 then survives the loss of the primary. Without it: nothing to wait for.
   */
  async replicated(): Promise<void> {
    const { waitReplicas, waitTimeoutMs } = this.opts.redis;
    if (waitReplicas === 0) return;
    const acked = await waitForReplicas(this.redis, this.opts.keys.bullPrefix, waitReplicas, waitTimeoutMs);
    if (acked < waitReplicas)
      throw new ReplicationError(`${acked} of ${waitReplicas} replica(s) confirmed the writes within ${waitTimeoutMs} ms`);
  }

  /** The primary that holds remediator's keys answers (a keyed read: on a Cluster it goes to the tag's primary). */
  async ping(): Promise<boolean> {
    try {
      await this.redis.exists(this.opts.keys.paused);
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    await Promise.all([...this.byRoute.values()].map((q) => q.close().catch(() => {})));
    this.redis.disconnect();
  }
}
