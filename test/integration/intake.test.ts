import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { Queue } from 'bullmq';
import pino from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { newRunRecord } from '../../src/engine/record.js';
import { connectRedis, type RedisClient } from '../../src/queue/connection.js';
import { INTAKE_GROUP, IntakeDispatcher } from '../../src/queue/intake.js';
import { incidentJobId, queueName, redisKeys, type RedisKeys } from '../../src/queue/keys.js';
import { Producer, type IngestItem } from '../../src/queue/queue.js';
import { CREATE_RUNS_COMMAND, RecordStore } from '../../src/queue/records.js';
import type { RedisSettings } from '../../src/redis-settings.js';
import { parseRouteTable } from '../../src/routes.js';
import { Cleanup, OwnRedis } from './guarantees/common.js';
import { REDIS_URL, requireRedis, testPrefix, useRedis, type TestRedis } from '../helpers/redis.js';
import { waitFor } from '../helpers/wait.js';

/**
 * The intake (queue/intake.ts, records.ts createRuns): a webhook's records and their jobs' intake entries are written
 * by one script, and every worker's dispatcher turns entries into BullMQ jobs, idempotently. Real Redis, own prefix.
 */
const log = pino({ level: 'silent' });
const RETENTION = 3_600_000;

interface IntakeStore {
  redis: TestRedis;
  producer: Producer;
  store: RecordStore;
  /** A connection of the worker's kind, to read what the producer wrote. */
  worker: RedisClient;
}

/** A producer, its record store and a worker connection on real Redis under `keys`, for one describe block. */
function useIntakeStore(prefix: string, keys: RedisKeys, routes?: string): IntakeStore {
  const t = {} as IntakeStore;
  const cleanup = new Cleanup();
  beforeAll(async () => {
    t.redis = await useRedis('single', cleanup);
    t.producer = new Producer({
      redis: t.redis.settings,
      keys,
      retentionMs: RETENTION,
      ...(routes !== undefined ? { routes: parseRouteTable(routes) } : {}),
    });
    t.store = new RecordStore(t.producer.redis, keys, RETENTION);
    await t.producer.queue.waitUntilReady();
    t.worker = await t.redis.connect('worker');
  });
  afterAll(async () => {
    await t.producer.close();
    t.worker.disconnect();
    await t.redis.cleanupPrefix(prefix);
    await cleanup.run();
  });
  return t;
}

function item(n: number, receivedAt = new Date().toISOString()): IngestItem {
  const fingerprint = `fp-${n}`;
  const startsAt = '2026-11-29T04:00:00.000Z';
  const runId = incidentJobId('P-1', fingerprint, startsAt);
  const alert = {
    labels: { alertname: 'A', instance: `host-${n}` },
    annotations: { summary: 's' },
    fingerprint,
    startsAt,
    status: 'firing' as const,
  };
  const trigger = { source: 'alertmanager' as const, receiver: 'r', groupKey: '{}:{}', receivedAt };
  return {
    record: newRunRecord({ id: runId, procedure: 'P-1', title: 'P', target: `host-${n}`, alert, trigger, dryRun: false }),
    job: { runId, procedure: 'P-1', target: `host-${n}`, alert, trigger },
  };
}

/** A dispatcher whose batches can be awaited (no sleeping for it). */
function dispatcherOn(
  redis: RedisClient,
  keys: RedisKeys,
  opts: { reclaimIdleMs?: number; consumer?: string; forgetConsumerMs?: number } = {},
) {
  let dispatched = 0;
  const waiters: { n: number; resolve: () => void }[] = [];
  const dispatcher = new IntakeDispatcher({
    redis,
    keys,
    retentionMs: RETENTION,
    log,
    consumer: `test-${Math.random().toString(36).slice(2, 8)}`,
    ...opts,
    onDispatched: (n) => {
      dispatched += n;
      for (const w of waiters.filter((w) => dispatched >= w.n)) w.resolve();
    },
  });
  return {
    dispatcher,
    /** Resolves once `n` entries in all were dispatched. */
    dispatched: (n: number) =>
      dispatched >= n ? Promise.resolve() : new Promise<void>((resolve) => waiters.push({ n, resolve })),
  };
}

async function jobCounts(redis: RedisClient, keys: RedisKeys, route = 'default') {
  const queue = new Queue(queueName(route), { connection: redis, prefix: keys.bullPrefix });
  try {
    return await queue.getJobCounts('waiting', 'active', 'delayed', 'completed', 'failed');
  } finally {
    await queue.close();
  }
}

async function entries(redis: RedisClient, keys: RedisKeys): Promise<Record<string, string>[]> {
  const list = (await redis.xrange(keys.intake, '-', '+')) as [string, string[]][];
  return list.map(([, f]) => Object.fromEntries(f.flatMap((v, i) => (i % 2 === 0 ? [[v, f[i + 1]!]] : []))));
}

describe('intake: one script per payload writes the records and their intake entries (real Redis)', () => {
  const prefix = testPrefix('intake');
  const keys = redisKeys(prefix);
  const t = useIntakeStore(prefix, keys, 'routes: { host-1: [host-1] }\n');

  it('records and entries together: each new run its entry (job id, claimed route, the stored data), marked queued', async () => {
    const items = [item(1), item(2)];
    expect(await t.producer.ingest(t.store, items)).toEqual(['created', 'created']);
    const written = await entries(t.worker, keys);
    expect(written.map((e) => [e.job, e.route])).toEqual([
      [items[0]!.job.runId, 'host-1'],
      [items[1]!.job.runId, 'default'],
    ]);
    const data = JSON.parse(written[0]!.data!) as Record<string, unknown>;
    // As Producer.enqueue stores a job: no annotations, receiver or group key (the record's), no route (the entry's).
    expect(data).toEqual({
      runId: items[0]!.job.runId,
      procedure: 'P-1',
      target: 'host-1',
      alert: { ...items[0]!.job.alert, annotations: {} },
      trigger: { source: 'alertmanager', receivedAt: items[0]!.job.trigger.receivedAt },
    });
    for (const i of items)
      expect(await t.worker.hmget(keys.run(i.record.id), 'json', 'queued')).toEqual([expect.any(String), '1']);
  });

  it('a duplicate appends nothing; a known run without the queued mark (an older version) gets its entry once', async () => {
    const before = await t.worker.xlen(keys.intake);
    expect(await t.producer.ingest(t.store, [item(1), item(2)])).toEqual(['duplicate', 'duplicate']);
    expect(await t.worker.xlen(keys.intake)).toBe(before);
    // A record created apart (RecordStore.create: the fallback path, or a version before the intake).
    const old = item(3);
    expect(await t.store.create(old.record)).toBe(true);
    expect(await t.producer.ingest(t.store, [old])).toEqual(['duplicate']);
    expect(await t.producer.ingest(t.store, [old])).toEqual(['duplicate']);
    expect(await t.worker.xlen(keys.intake)).toBe(before + 1);
  });

  it('the dispatcher adds each entry as a job with the producer’s options, then acknowledges and deletes it', async () => {
    const { dispatcher, dispatched } = dispatcherOn(t.worker, keys);
    dispatcher.start();
    try {
      await dispatched(3);
      expect(await t.worker.xlen(keys.intake)).toBe(0);
      const [, pending] = (await t.worker.xpending(keys.intake, INTAKE_GROUP)) as [number, unknown];
      expect(pending).toBe(null);
      const job = await t.producer.jobOf(item(1).job.runId);
      expect(job?.data.route).toBe('host-1');
      expect(job?.opts).toMatchObject({ attempts: 3, deduplication: { id: item(1).job.runId, ttl: RETENTION } });
      expect(await jobCounts(t.worker, keys)).toMatchObject({ waiting: 2 });
      expect(await jobCounts(t.worker, keys, 'host-1')).toMatchObject({ waiting: 1 });
      // A new payload while the dispatcher waits (blocking read): dispatched without any timer.
      expect(await t.producer.ingest(t.store, [item(4)])).toEqual(['created']);
      await dispatched(4);
      expect(await jobCounts(t.worker, keys)).toMatchObject({ waiting: 3 });
    } finally {
      await dispatcher.close();
    }
  });

  it('a dispatcher that died between adding and acknowledging: its entries are reclaimed, added again to no effect', async () => {
    const crashed = [item(5), item(6)];
    await t.producer.ingest(t.store, crashed);
    // The dead dispatcher read both and added the first one's job, then died before XACK.
    const read = (await t.worker.xreadgroup('GROUP', INTAKE_GROUP, 'dead', 'COUNT', 10, 'STREAMS', keys.intake, '>')) as [
      string,
      [string, string[]][],
    ][];
    expect(read[0]![1]).toHaveLength(2);
    await t.producer.enqueue(crashed[0]!.job);
    const waitingBefore = (await jobCounts(t.worker, keys)).waiting!;
    const { dispatcher, dispatched } = dispatcherOn(t.worker, keys, { reclaimIdleMs: 0 });
    dispatcher.start();
    try {
      await dispatched(2);
    } finally {
      await dispatcher.close();
    }
    // One job each: the first was a no-op (job id and deduplication id), the second added.
    expect((await jobCounts(t.worker, keys)).waiting).toBe(waitingBefore + 1);
    for (const i of crashed) expect((await t.producer.jobOf(i.job.runId))?.id).toBe(i.job.runId);
    expect(await t.worker.xlen(keys.intake)).toBe(0);
    const [count] = (await t.worker.xpending(keys.intake, INTAKE_GROUP)) as [number];
    expect(count).toBe(0);
  });
  it('entries this consumer read and did not acknowledge (a batch cut off by a failover) go first, without waiting to be idle', async () => {
    const cut = item(7);
    await t.producer.ingest(t.store, [cut]);
    await t.worker.xreadgroup('GROUP', INTAKE_GROUP, 'host:42', 'COUNT', 10, 'STREAMS', keys.intake, '>');
    const { dispatcher, dispatched } = dispatcherOn(t.worker, keys, { consumer: 'host:42' }); // reclaimIdleMs 30 s
    dispatcher.start();
    try {
      await dispatched(1);
    } finally {
      await dispatcher.close();
    }
    expect((await t.producer.jobOf(cut.job.runId))?.id).toBe(cut.job.runId);
    expect(await t.worker.xlen(keys.intake)).toBe(0);
  });

  it('an entry this version cannot read stays pending for a newer worker, never dropped; the others are dispatched', async () => {
    const unreadable = (await t.worker.xadd(keys.intake, '*', 'job', 'from-a-newer-version', 'shape', 'v9'))!;
    const readable = item(8);
    await t.producer.ingest(t.store, [readable]);
    const { dispatcher, dispatched } = dispatcherOn(t.worker, keys);
    dispatcher.start();
    try {
      await dispatched(1);
    } finally {
      await dispatcher.close();
    }
    expect((await t.producer.jobOf(readable.job.runId))?.id).toBe(readable.job.runId);
    expect(await t.worker.xlen(keys.intake)).toBe(1);
    const [count] = (await t.worker.xpending(keys.intake, INTAKE_GROUP)) as [number];
    expect(count).toBe(1);
    await t.worker.xack(keys.intake, INTAKE_GROUP, unreadable);
    await t.worker.xdel(keys.intake, unreadable);
  });

  it('consumers of processes gone, with nothing pending, leave the group; one with pending entries stays', async () => {
    const readAs = async (consumer: string) => {
      const reply = (await t.worker.xreadgroup('GROUP', INTAKE_GROUP, consumer, 'COUNT', 1, 'STREAMS', keys.intake, '>')) as [
        string,
        [string, string[]][],
      ][];
      return reply[0]![1][0]![0];
    };
    const [a, b] = [item(30), item(31)];
    await t.producer.ingest(t.store, [a]);
    const done = await readAs('gone:1'); // dispatched in full by a process that is gone now
    await t.producer.enqueue(a.job);
    await t.worker.xack(keys.intake, INTAKE_GROUP, done);
    await t.worker.xdel(keys.intake, done);
    await t.producer.ingest(t.store, [b]);
    const pending = await readAs('gone:2'); // read, never acknowledged
    const consumers = async () =>
      ((await t.worker.xinfo('CONSUMERS', keys.intake, INTAKE_GROUP)) as unknown[][]).map((c) => String(c[1]));
    expect(await consumers()).toEqual(expect.arrayContaining(['gone:1', 'gone:2']));
    const { dispatcher } = dispatcherOn(t.worker, keys, { forgetConsumerMs: 0 }); // reclaimIdleMs 30 s: b stays pending
    dispatcher.start();
    try {
      await waitFor('gone:1 to leave the group', async () => !(await consumers()).includes('gone:1'));
    } finally {
      await dispatcher.close();
    }
    expect(await consumers()).toContain('gone:2');
    await t.worker.xack(keys.intake, INTAKE_GROUP, pending);
    await t.worker.xdel(keys.intake, pending);
  });
});

describe('intake: what createRuns stores for a new run (real Redis)', () => {
  const prefix = testPrefix('intake-fields');
  const keys = redisKeys(prefix);
  const t = useIntakeStore(prefix, keys, 'routes: { host-1: [host-1] }\n');

  it('a new run: the record holds exactly its fields, a resolution that came first among them; a route claimed before stays', async () => {
    const n = item(40);
    // A claim made earlier (an older delivery's table routed host-40 to host-1) and a resolution that overtook the firing.
    await t.worker.set(keys.route(n.record.id), 'host-1', 'PX', RETENTION);
    expect(await t.store.markResolved(n.record.id, '2026-11-29T05:00:00.000Z')).toBe(false);
    const fresh = item(41);
    const before = (await entries(t.worker, keys)).length;
    expect(await t.producer.ingest(t.store, [n, fresh])).toEqual(['created', 'created']);
    const written = (await entries(t.worker, keys)).slice(before);
    expect(written.map((e) => [e.job, e.route])).toEqual([
      [n.record.id, 'host-1'],
      [fresh.record.id, 'default'],
    ]);
    expect(await t.worker.get(keys.route(fresh.record.id))).toBe('default');
    expect(await t.worker.pttl(keys.route(fresh.record.id))).toBeGreaterThan(0);
    const fields = await t.worker.hgetall(keys.run(n.record.id));
    expect(Object.keys(fields).sort()).toEqual(['epoch', 'json', 'meta', 'provisional', 'queued', 'resolvedAt']);
    expect(fields).toMatchObject({ epoch: '0', meta: 'P-1\nhost-40\nqueued', provisional: '', queued: '1' });
    expect(fields.resolvedAt).toBe('2026-11-29T05:00:00.000Z');
    expect(await t.worker.exists(keys.resolvedTombstone(n.record.id))).toBe(0);
    expect(await t.worker.pttl(keys.run(n.record.id))).toBeGreaterThan(0);
    expect(Object.keys(await t.worker.hgetall(keys.run(fresh.record.id))).sort()).toEqual([
      'epoch',
      'json',
      'meta',
      'provisional',
      'queued',
    ]);
    expect((await t.store.get(n.record.id))?.resolvedAt).toBe('2026-11-29T05:00:00.000Z');
  });
});

describe('intake: payloads that arrive together share one createRuns call (real Redis)', () => {
  const prefix = testPrefix('intake-batch');
  const keys = redisKeys(prefix);
  const t = useIntakeStore(prefix, keys);

  /** Counts the script calls the producer makes (the calls themselves go to Redis unchanged). */
  function countCalls(): { calls: number[]; restore(): void } {
    const client = t.producer.redis as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>;
    const original = client[CREATE_RUNS_COMMAND]!;
    const calls: number[] = [];
    client[CREATE_RUNS_COMMAND] = (...args: unknown[]) => {
      calls.push(args.length);
      return original.apply(t.producer.redis, args);
    };
    return { calls, restore: () => void (client[CREATE_RUNS_COMMAND] = original) };
  }

  it('three payloads at once: one call, each its own outcomes, entries and shared trigger data', async () => {
    const spy = countCalls();
    try {
      const other = { source: 'alertmanager' as const, receiver: 'r2', groupKey: '{}:{b}', receivedAt: new Date().toISOString() };
      const a = [item(60), item(61)];
      const b = [item(62)].map(({ record, job }) => ({ record: { ...record, trigger: other }, job: { ...job, trigger: other } }));
      const c = [item(63)];
      const before = await t.worker.xlen(keys.intake);
      const answers = await Promise.all([
        t.producer.ingest(t.store, a),
        t.producer.ingest(t.store, b),
        t.producer.ingest(t.store, c),
      ]);
      expect(answers).toEqual([['created', 'created'], ['created'], ['created']]);
      expect(spy.calls).toHaveLength(1);
      expect(await t.worker.xlen(keys.intake)).toBe(before + 4);
      const records = await Promise.all([...a, ...b, ...c].map((i) => t.store.get(i.record.id)));
      expect(records.map((r) => r?.trigger.receiver)).toEqual(['r', 'r', 'r2', 'r']);
      expect(records.map((r) => r?.trigger.groupKey)).toEqual(['{}:{}', '{}:{}', '{}:{b}', '{}:{}']);
      // Again together: every one a duplicate, nothing appended.
      const again = await Promise.all([t.producer.ingest(t.store, a), t.producer.ingest(t.store, c)]);
      expect(again).toEqual([['duplicate', 'duplicate'], ['duplicate']]);
      expect(await t.worker.xlen(keys.intake)).toBe(before + 4);
    } finally {
      spy.restore();
    }
  });

  it('a payload that cannot be stored fails alone: the others sent with it are stored and answered', async () => {
    const bad = item(70);
    await t.worker.set(keys.run(bad.record.id), 'not a hash'); // HGET on it fails the script (WRONGTYPE)
    const good = [item(71), item(72)];
    const results = await Promise.allSettled([
      t.producer.ingest(t.store, [good[0]!]),
      t.producer.ingest(t.store, [bad]),
      t.producer.ingest(t.store, [good[1]!]),
    ]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(results[0]).toMatchObject({ value: ['created'] });
    expect(results[2]).toMatchObject({ value: ['created'] });
    expect(String((results[1] as PromiseRejectedResult).reason)).toMatch(/WRONGTYPE/);
    for (const g of good) expect(await t.worker.hget(keys.run(g.record.id), 'queued')).toBe('1');
  });
});

describe('intake on a Redis Cluster: the stream shares the {prefix} slot', () => {
  const prefix = testPrefix('intake-cluster');
  const keys = redisKeys(prefix);
  const cleanup = new Cleanup();
  let redis: TestRedis;

  beforeAll(async () => {
    redis = await useRedis('cluster', cleanup);
  });
  afterAll(() => cleanup.run());

  it('ingest writes records and entries in one script; a worker dispatches them', async () => {
    const producer = new Producer({ redis: redis.settings, keys, retentionMs: RETENTION });
    const store = new RecordStore(producer.redis, keys, RETENTION);
    const worker = await redis.connect('worker');
    const { dispatcher, dispatched } = dispatcherOn(worker, keys);
    try {
      await producer.queue.waitUntilReady();
      dispatcher.start();
      expect(await producer.ingest(store, [item(1), item(2), item(3)])).toEqual(['created', 'created', 'created']);
      await dispatched(3);
      expect(await jobCounts(worker, keys)).toMatchObject({ waiting: 3 });
      expect(await producer.ingest(store, [item(1)])).toEqual(['duplicate']);
      expect(await worker.xlen(keys.intake)).toBe(0);
    } finally {
      await dispatcher.close();
      await producer.close();
      worker.disconnect();
    }
  });
});

describe('intake across a Redis restart', () => {
  const prefix = testPrefix('intake-restart');
  const keys = redisKeys(prefix);
  const cleanup = new Cleanup();
  let own: OwnRedis;
  let settings: RedisSettings;

  beforeAll(async () => {
    await requireRedis(REDIS_URL);
    own = await OwnRedis.start(cleanup);
    settings = loadConfig({ REDIS_URL: own.url }).redis;
  });
  afterAll(() => cleanup.run());

  it.each([
    ['kept its data (SHUTDOWN SAVE)', true],
    ['lost its data (the group made again)', false],
  ])('the dispatcher rides out a restart that %s and dispatches what comes after', async (_what, save) => {
    const producer = new Producer({ redis: settings, keys, retentionMs: RETENTION });
    const store = new RecordStore(producer.redis, keys, RETENTION);
    const worker = connectRedis(settings, 'worker', 'remediator-test');
    worker.on('error', () => {});
    const { dispatcher, dispatched } = dispatcherOn(worker, keys);
    try {
      await producer.queue.waitUntilReady();
      dispatcher.start();
      const first = save ? item(10) : item(20);
      expect(await producer.ingest(store, [first])).toEqual(['created']);
      await dispatched(1);
      await own.stop(save);
      // Lost: not even the snapshot an earlier case saved (stream and group gone).
      if (!save) rmSync(join(own.dir, 'dump.rdb'), { force: true });
      await own.start();
      const after = save ? item(11) : item(21);
      // The receiver's connection fails fast while Redis is away; retried as Alertmanager would.
      await waitFor('the receiver to store again', () => producer.ingest(store, [after]).catch(() => undefined), 15_000);
      await dispatched(2);
      expect((await producer.jobOf(after.job.runId))?.id).toBe(after.job.runId);
      expect(await worker.xlen(keys.intake)).toBe(0);
      // Lost: the earlier run is gone, so the group was made again for the later one.
      expect(await worker.exists(keys.run(first.record.id))).toBe(save ? 1 : 0);
    } finally {
      await dispatcher.close();
      await producer.close();
      worker.disconnect();
    }
  });
});
