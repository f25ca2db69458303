import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AutomationControl, StartPause } from '../../src/queue/control.js';
import { RunEntryScript } from '../../src/queue/entry.js';
import { redisKeys } from '../../src/queue/keys.js';
import { TargetLocks } from '../../src/queue/locks.js';
import { cleanupPrefix, REDIS_URL, requireRedis, testPrefix } from '../helpers/redis.js';

/**
 * A run's entry in one round trip (queue/entry.ts) against real Redis: the same keys, owners and answers as the
 * lease (TargetLocks), the storm breaker's note and the pause (AutomationControl) it stands for.
 */
describe('RunEntryScript: lease, storm note and pause in one call (real Redis)', () => {
  const prefix = testPrefix('run-entry');
  const keys = redisKeys(prefix);
  let redis: Redis;
  let locks: TargetLocks;
  let control: AutomationControl;
  let entry: RunEntryScript;
  const storm = { windowMs: 60_000 };

  beforeAll(async () => {
    await requireRedis();
    redis = new Redis(REDIS_URL);
    locks = new TargetLocks(redis, keys, 10_000);
    control = new AutomationControl(redis, keys);
    entry = new RunEntryScript(redis, keys, 10_000, control);
  });
  afterAll(async () => {
    redis.disconnect();
    await cleanupPrefix(prefix);
  });

  it("takes the target's lease, notes the target and reads the pause", async () => {
    expect(await entry.enter('host-a:9100', 'run-1', storm)).toEqual({ firing: 1, pause: { paused: false } });
    expect(await locks.acquire('host-a:9100', 'run-2')).toBe('run-1'); // TargetLocks sees the lease
    expect(await redis.pttl(keys.lease('host-a:9100'))).toBeGreaterThan(9000);
    // The storm breaker's note: another spelling of the same target counts once, a new target once more.
    expect(await control.noteTarget('HOST-A', 60_000)).toBe(1);
    expect(await entry.enter('host-b:9100', 'run-3', storm)).toEqual({ firing: 2, pause: { paused: false } });
  });

  it('another run holding the target: its id, and nothing noted', async () => {
    const before = await redis.zcard(keys.stormTargets);
    expect(await entry.enter('host-a:9100', 'run-4', storm)).toEqual({ holder: 'run-1' });
    expect(await redis.zcard(keys.stormTargets)).toBe(before);
    expect(await redis.get(keys.lease('host-a:9100'))).toBe('run-1');
  });

  it('the holder renews its lease; a run started before asks for the lease only', async () => {
    await redis.pexpire(keys.lease('host-a:9100'), 1000);
    await redis.del(keys.stormTargets);
    expect(await entry.enter('host-a:9100', 'run-1', undefined)).toEqual({});
    expect(await redis.pttl(keys.lease('host-a:9100'))).toBeGreaterThan(9000);
    expect(await redis.exists(keys.stormTargets)).toBe(0);
  });

  it('reads the pause as AutomationControl.state does; a start pause this process holds wins', async () => {
    expect(await control.pause('by hand', 'alice')).toBe(true);
    const { pause } = await entry.enter('host-c:9100', 'run-5', storm);
    expect(pause).toEqual(await control.state());
    expect(pause).toMatchObject({ paused: true, reason: 'by hand', by: 'alice' });
    await control.resume();
    expect((await entry.enter('host-d:9100', 'run-6', storm)).pause).toEqual({ paused: false });

    const held = new AutomationControl(redis, keys, new StartPause(true));
    const heldEntry = new RunEntryScript(redis, keys, 10_000, held);
    const state = (await heldEntry.enter('host-e:9100', 'run-7', storm)).pause;
    expect(state).toEqual(await held.state());
    expect(state?.paused).toBe(true);
  });
});
