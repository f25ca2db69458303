import { hostname } from 'node:os';
import { Queue } from 'bullmq/dist/cjs/classes/queue.js';
import type { Logger } from 'pino';
import type { RedisClient } from './connection.js';
import { jobDefaults, jobIdentity } from './jobs.js';
import { queueName, type RedisKeys } from './keys.js';
import type { RunJob } from './queue.js';
import { script, type Script } from './scripts.js';

/** The consumer group every worker process's dispatcher reads the intake stream in. */
export const INTAKE_GROUP = 'dispatchers';

export interface DispatcherOptions {
  /** The worker's connection (waits for Redis through outages); not closed here. */
  redis: RedisClient;
  keys: RedisKeys;
  retentionMs: number;
  log: Logger;
  /** Told after each batch: how many entries became jobs. */
  onDispatched?(count: number): void;
  /** This process's name in the group (default host:pid). */
  consumer?: string;
  /** An entry delivered to a dispatcher that has not acknowledged it for this long is taken over (default 30 s). */
  reclaimIdleMs?: number;
  /** A consumer with nothing pending and idle this long is removed from the group (default 1 h). */
  forgetConsumerMs?: number;
  /** How often pending entries are looked for (default 10 s). */
  reclaimIntervalMs?: number;
}

/** Entries per read, and how long one blocking read waits before it is sent again. */
const BATCH = 200;
const BLOCK_MS = 5000;
const RETRY_MS = 1000;
const CLOSE_WAIT_MS = 2000;
const RECLAIM_INTERVAL_MS = 10_000;
/** A consumer with nothing pending that has not read for this long is removed from the group (a process gone). */
const FORGET_CONSUMER_MS = 3_600_000;

// forgetConsumers: KEYS[1] the intake stream; ARGV[1] group, ARGV[2] idle ms. Removes the group's consumers that have
// nothing pending and have been idle that long: each process joins under its own name (host:pid), so restarts would
// otherwise leave their names behind for good. In one script, so no entry can be delivered to a consumer between the
// look and the removal (XGROUP DELCONSUMER drops what is pending); a live one is made again by its next read.
const FORGET_CONSUMERS = `
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local gone = 0
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local f = {}
  for i = 1, #c, 2 do f[c[i]] = c[i + 1] end
  if f.pending == 0 and f.idle > tonumber(ARGV[2]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], f.name)
    gone = gone + 1
  end
end
return gone
`;

// ackEntries: KEYS[1] the intake stream; ARGV[1] group, ARGV[2..] entry ids. XACK then XDEL, atomically (as a
// MULTI/EXEC of the two would be, in one command: no pipeline object per batch, which on the worker's connection copies
// every BullMQ script into itself). Output: entries deleted.
const ACK_ENTRIES = `
redis.call('XACK', KEYS[1], ARGV[1], unpack(ARGV, 2))
return redis.call('XDEL', KEYS[1], unpack(ARGV, 2))
`;

type StreamEntry = [id: string, fields: string[]];

/**
 * Turns the intake stream (the jobs the receivers stored with their records, queue/records.ts createRuns) into
 * BullMQ jobs: a blocking XREADGROUP on a connection of its own (nothing is sent while idle), then the jobs added to
 * their route's queue with today's options, then XACK + XDEL. Every worker process runs one, whatever routes it
 * serves: it only adds jobs. Adding is idempotent (job id and deduplication id), so a dispatcher that dies between
 * adding and acknowledging leaves entries that another one takes over (XAUTOCLAIM after reclaimIdleMs) and adds
 * again, to no effect.
 */
export class IntakeDispatcher {
  private readonly blocking: RedisClient;
  private readonly queues = new Map<string, Queue<RunJob>>();
  private readonly consumer: string;
  private readonly reclaimIdleMs: number;
  private closed = false;
  private loop: Promise<void> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private reclaiming: Promise<void> | undefined;
  private failing = false;
  private readonly forgetConsumers: Script;
  private readonly ackEntries: Script;
  /** Read this consumer's own pending entries before new ones (at start, after a reconnect or a failure). */
  private ownFirst = true;

  constructor(private readonly opts: DispatcherOptions) {
    // BLOCK holds its connection: the worker's own must stay free for its jobs, leases and checkpoints.
    this.blocking = opts.redis.duplicate();
    this.blocking.on('error', () => {}); // the read loop logs what matters; ioredis reconnects by itself
    this.blocking.on('ready', () => (this.ownFirst = true));
    this.consumer = opts.consumer ?? `${hostname()}:${process.pid}`;
    this.reclaimIdleMs = opts.reclaimIdleMs ?? 30_000;
    this.forgetConsumers = script(opts.redis, 'remediatorForgetConsumers', FORGET_CONSUMERS);
    this.ackEntries = script(opts.redis, 'remediatorAckIntake', ACK_ENTRIES);
  }

  start(): void {
    this.loop = this.readLoop();
    // Inherent, like BullMQ's stalled check: only a dispatcher that died leaves entries pending.
    this.timer = setInterval(() => void this.reclaim(), this.opts.reclaimIntervalMs ?? RECLAIM_INTERVAL_MS);
    this.timer.unref();
  }

  /**
   * Stops reading. A batch being dispatched gets CLOSE_WAIT_MS to finish (Redis may be away: the worker's shutdown
   * must not wait on it); one that does not stays pending, for another dispatcher.
   */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.timer);
    this.blocking.disconnect(); // ends the blocking read now
    const timeout = new Promise((resolve) => setTimeout(resolve, CLOSE_WAIT_MS).unref());
    await Promise.race([Promise.all([this.loop, this.reclaiming]), timeout]);
    await Promise.race([Promise.all([...this.queues.values()].map((q) => q.close().catch(() => {}))), timeout]);
  }

  private async readLoop(): Promise<void> {
    await this.ensureGroup().catch(() => {}); // retried below on NOGROUP
    await this.reclaim(); // what a dispatcher that died left
    while (!this.closed) {
      try {
        // After a reconnect or a failure, this process's own entries first (delivered, not acknowledged: a batch cut
        // off by a failover), at once rather than after reclaimIdleMs; then only new ones, blocking.
        const own = this.ownFirst;
        this.ownFirst = false;
        const { blocking } = this;
        const key = this.opts.keys.intake;
        const reply = (
          own
            ? await blocking.xreadgroup('GROUP', INTAKE_GROUP, this.consumer, 'COUNT', BATCH, 'STREAMS', key, '0')
            : await blocking.xreadgroup(
                'GROUP',
                INTAKE_GROUP,
                this.consumer,
                'COUNT',
                BATCH,
                'BLOCK',
                BLOCK_MS,
                'STREAMS',
                key,
                '>',
              )
        ) as [string, StreamEntry[]][] | null;
        const entries = reply?.[0]?.[1] ?? [];
        const dispatched = await this.dispatch(entries);
        if (own && entries.length === BATCH && dispatched > 0) this.ownFirst = true; // more of its own left
        this.recovered();
      } catch (err) {
        if (this.closed) break;
        this.ownFirst = true;
        await this.failed(err as Error);
      }
    }
  }

  /** Entries delivered to a dispatcher that has not acknowledged them within reclaimIdleMs, this one's included. */
  private reclaim(): Promise<void> {
    this.reclaiming ??= (async () => {
      try {
        let cursor = '0-0';
        do {
          if (this.closed) return;
          const [next, entries] = (await this.opts.redis.xautoclaim(
            this.opts.keys.intake,
            INTAKE_GROUP,
            this.consumer,
            this.reclaimIdleMs,
            cursor,
            'COUNT',
            BATCH,
          )) as [string, (StreamEntry | null)[]];
          // Redis 6.2 lists entries deleted meanwhile as nil.
          await this.dispatch(entries.filter((e): e is StreamEntry => e !== null));
          cursor = next;
        } while (cursor !== '0-0');
        await this.forgetConsumers(1, this.opts.keys.intake, INTAKE_GROUP, this.opts.forgetConsumerMs ?? FORGET_CONSUMER_MS);
      } catch (err) {
        if (!this.closed) await this.failed(err as Error, false);
      } finally {
        this.reclaiming = undefined;
      }
    })();
    return this.reclaiming;
  }

  /** Adds the jobs of `entries` and acknowledges them; how many it dispatched. */
  private async dispatch(entries: StreamEntry[]): Promise<number> {
    if (entries.length === 0) return 0;
    const byRoute = new Map<string, { name: string; data: RunJob; opts: ReturnType<typeof jobIdentity> }[]>();
    const ids: string[] = [];
    for (const [id, fields] of entries) {
      const job = jobOf(fields);
      if (job === undefined) {
        // Only createRuns writes entries: one this version cannot read was written by a newer one (a rolling
        // upgrade). Left pending, never dropped: a newer dispatcher takes it over (XAUTOCLAIM).
        this.opts.log.error(
          { entry: id },
          'intake entry this version cannot read (no job id, route or data): left for a newer worker',
        );
        continue;
      }
      ids.push(id);
      const list = byRoute.get(job.data.route!) ?? [];
      list.push({ name: 'remediate', data: job.data, opts: jobIdentity(job.id, this.opts.retentionMs) });
      byRoute.set(job.data.route!, list);
    }
    if (ids.length === 0) return 0;
    await Promise.all([...byRoute].map(([route, jobs]) => this.queueOf(route).addBulk(jobs)));
    // Acknowledged only once BullMQ holds the jobs: a crash before leaves them pending, for XAUTOCLAIM.
    await this.ackEntries(1, this.opts.keys.intake, INTAKE_GROUP, ...ids);
    this.opts.onDispatched?.(ids.length);
    return ids.length;
  }

  private queueOf(route: string): Queue<RunJob> {
    let queue = this.queues.get(route);
    if (queue === undefined) {
      queue = new Queue<RunJob>(queueName(route), {
        connection: this.opts.redis,
        prefix: this.opts.keys.bullPrefix,
        defaultJobOptions: jobDefaults(this.opts.retentionMs),
      });
      queue.on('error', () => {});
      this.queues.set(route, queue);
    }
    return queue;
  }

  /** The group, made with the stream if neither exists (first start, or a Redis that lost its data). */
  private async ensureGroup(): Promise<void> {
    try {
      // From the stream's start: entries appended before any worker ran are dispatched too.
      await this.opts.redis.xgroup('CREATE', this.opts.keys.intake, INTAKE_GROUP, '0', 'MKSTREAM');
    } catch (err) {
      if (!(err as Error).message.startsWith('BUSYGROUP')) throw err;
    }
  }

  /** Logged once per outage; the group made again when Redis came back without it. */
  private async failed(err: Error, wait = true): Promise<void> {
    if (!this.failing) this.opts.log.warn({ err: err.message }, 'intake dispatch failed; retrying');
    this.failing = true;
    if (err.message.startsWith('NOGROUP')) await this.ensureGroup().catch(() => {});
    if (wait) await new Promise((resolve) => setTimeout(resolve, RETRY_MS).unref());
  }

  private recovered(): void {
    if (this.failing) this.opts.log.info('intake dispatch going again');
    this.failing = false;
  }
}

/** An entry's job: id, and data with the route createRuns claimed. Undefined when the entry is not one. */
function jobOf(fields: string[]): { id: string; data: RunJob } | undefined {
  const f: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!;
  if (!f.job || !f.route || f.data === undefined) return undefined;
  try {
    return { id: f.job, data: { ...(JSON.parse(f.data) as RunJob), route: f.route } };
  } catch {
    return undefined;
  }
}
