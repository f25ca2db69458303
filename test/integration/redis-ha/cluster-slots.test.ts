import calculateSlot from 'cluster-key-slot';
import { DelayedError, Worker } from 'bullmq';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunRecord } from '../../../src/engine/record.js';
import type { RedisClient } from '../../../src/queue/connection.js';
import { AutomationControl } from '../../../src/queue/control.js';
import { incidentJobId, QUEUE_NAME, redisKeys } from '../../../src/queue/keys.js';
import { RunEntryScript } from '../../../src/queue/entry.js';
import { TargetLocks } from '../../../src/queue/locks.js';
import { Producer, type RunJob } from '../../../src/queue/queue.js';
import { RecordStore } from '../../../src/queue/records.js';
import { startRedisCluster, type RedisClusterSetup } from '../../helpers/redis-servers.js';
import { testPrefix, testRedisFor, type TestRedis } from '../../helpers/redis.js';

/** Every key redisKeys() can build for `prefix`, with sample arguments for the ones that take some. */
function everyKey(prefix: string): string[] {
  const keys = redisKeys(prefix);
  return Object.entries(keys).map(([name, k]) => {
    if (typeof k === 'string') return name === 'bullPrefix' ? `${k}:${QUEUE_NAME}:wait` : k;
    return k('procedure-or-run', 'target with spaces: and {braces}');
  });
}

describe('Redis Cluster: every key, Lua script and multi-key operation stays in the QUEUE_PREFIX hash slot', () => {
  it.each(['remediator', 'remediator-prod', 'a.b_c-1'])('every key of prefix %s hashes to the slot of {%s}', (prefix) => {
    const slot = calculateSlot(`{${prefix}}`);
    const keys = everyKey(prefix);
    expect(keys.length).toBeGreaterThanOrEqual(8);
    for (const key of keys) expect(calculateSlot(key), key).toBe(slot);
  });

  describe('on a real three-primary Cluster', () => {
    const prefix = testPrefix('slots');
    const keys = redisKeys(prefix);
    let cluster: RedisClusterSetup;
    let redis: TestRedis;
    let client: RedisClient;

    beforeAll(async () => {
      cluster = await startRedisCluster({ primaries: 3 });
      redis = testRedisFor('cluster', cluster.env);
      client = await redis.connect('worker');
    });

    afterAll(async () => {
      client?.disconnect();
      await cluster?.stop();
    });

    it('the Cluster refuses keys of two slots in one script (the test has teeth)', async () => {
      const other = `{${prefix}-elsewhere}:x`;
      expect(calculateSlot(other)).not.toBe(calculateSlot(keys.runIndex));
      await expect(client.eval("return redis.call('EXISTS', KEYS[1], KEYS[2])", 2, keys.runIndex, other)).rejects.toThrow(
        /CROSSSLOT/,
      );
    });

    it('run records, leases, budgets, the kill switch and the storm breaker: every script and multi-key call works', async () => {
      const store = new RecordStore(client, keys, 60_000);
      const record: RunRecord = {
        id: 'inc-slots-1',
        procedure: 'P',
        title: 'P',
        target: 't1',
        state: 'queued',
        alert: {
          labels: { alertname: 'A' },
          annotations: {},
          fingerprint: 'f',
          startsAt: new Date().toISOString(),
          status: 'firing',
        },
        trigger: { source: 'alertmanager', receivedAt: new Date().toISOString() },
        dryRun: false,
        steps: [],
        escalations: [],
        epoch: 0,
        takeovers: 0,
        sla: {},
      };
      expect(await store.create(record)).toBe(true); // WRITE_RUN_2: run hash + index
      expect(await store.create(record)).toBe(false);
      await store.save({ ...record, state: 'running', epoch: 2 });
      await expect(store.save({ ...record, epoch: 1 })).rejects.toThrow(/newer worker/);
      expect(await store.markResolved(record.id, '2026-01-01T00:00:00Z')).toBe(true);
      expect(await store.resolvedAt(record.id)).toBe('2026-01-01T00:00:00Z');
      expect((await store.get(record.id))?.state).toBe('running');
      expect((await store.list()).map((r) => r.id)).toEqual([record.id]); // ZREVRANGE + pipelined HGETs

      const locks = new TargetLocks(client, keys, 10_000);
      expect(await locks.acquire('t1', 'run-a')).toBeUndefined();
      expect(await locks.acquire('t1', 'run-b')).toBe('run-a');
      await locks.release('t1', 'run-a');
      expect(await locks.takeBudget('P', 't1', 'run-a', 1, 60_000)).toBe(true);
      expect(await locks.takeBudget('P', 't1', 'run-b', 1, 60_000)).toBe(false);
      expect(await locks.claimBudgetNotice('P', 't1', 60_000)).toBe(true);
      expect(await locks.budgetHistory('P', 't1')).toEqual(['run-a']);

      const control = new AutomationControl(client, keys);
      expect(await control.noteTarget('t1', 60_000)).toBe(1);
      expect(await control.pause('test', 'test')).toBe(true);
      expect(await control.claimPauseNotice()).toBe(true);
      expect((await control.state()).paused).toBe(true);
      expect(await control.resume()).toBe(true); // DEL of three keys
      expect((await control.state()).paused).toBe(false);
      // ENTER_RUN_3: lease, storm zset, pause
      const entry = new RunEntryScript(client, keys, 10_000, control);
      expect(await entry.enter('t2', 'run-c', { windowMs: 60_000 })).toEqual({ firing: 1, pause: { paused: false } });
    });

    it('BullMQ: add with job id and deduplication, a worker taking, delaying and finishing the job', async () => {
      const producer = new Producer({ redis: redis.settings, keys, retentionMs: 60_000 });
      await producer.queue.waitUntilReady();
      const runId = incidentJobId('P', 'f', '2026-01-01T00:00:00Z');
      const job: RunJob = {
        runId,
        procedure: 'P',
        target: 't2',
        alert: {
          labels: { alertname: 'A' },
          annotations: {},
          fingerprint: 'f',
          startsAt: '2026-01-01T00:00:00Z',
          status: 'firing',
        },
        trigger: { source: 'alertmanager', receivedAt: new Date().toISOString() },
      };
      await producer.enqueue(job);
      await producer.enqueue(job); // a duplicate: dedup key and job id
      let delayed = false;
      const worker = new Worker<RunJob>(
        QUEUE_NAME,
        async (j, token) => {
          if (!delayed) {
            delayed = true;
            await j.moveToDelayed(Date.now() + 10, token);
            throw new DelayedError();
          }
          return 'done';
        },
        { connection: client, prefix: keys.bullPrefix },
      );
      const done = new Promise<void>((resolve) => worker.on('completed', () => resolve()));
      await done;
      await worker.close();
      expect(await producer.queue.getJobCounts('waiting', 'active', 'delayed', 'completed', 'failed')).toEqual({
        waiting: 0,
        active: 0,
        delayed: 0,
        completed: 1,
        failed: 0,
      });
      await producer.close();
    });
  });
});
