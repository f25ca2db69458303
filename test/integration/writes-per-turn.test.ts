import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writesPerTurn } from '../../src/queue/connection.js';
import { REDIS_URL, requireRedis, testPrefix } from '../helpers/redis.js';

/**
 * queue/connection.ts writesPerTurn (the worker's connection): the commands of one event-loop turn leave in one socket
 * write, in the order they were sent, each with its own reply; a turn later, the next write. Real Redis.
 */
describe('queue/connection writesPerTurn', () => {
  const prefix = testPrefix('writes-per-turn');
  const key = `{${prefix}}:n`;
  let redis: Redis;
  const writes: number[] = [];

  beforeAll(async () => {
    await requireRedis();
    redis = new Redis(REDIS_URL, { maxRetriesPerRequest: null });
    writesPerTurn(redis);
    await redis.ping();
    // Count what reaches the socket: one entry per write, with the number of chunks it carried.
    const socket = redis.stream as unknown as {
      _write: (...a: unknown[]) => void;
      _writev: (chunks: unknown[], cb: unknown) => void;
    };
    const write = socket._write.bind(socket);
    const writev = socket._writev.bind(socket);
    socket._write = (...a: unknown[]) => (writes.push(1), write(...a));
    socket._writev = (chunks: unknown[], cb: unknown) => (writes.push(chunks.length), writev(chunks, cb));
  });

  afterAll(async () => {
    await redis.del(key);
    redis.disconnect();
  });

  it('sends one turn’s commands in one write, in order, each with its own reply', async () => {
    writes.length = 0;
    const replies = await Promise.all([redis.incr(key), redis.incr(key), redis.get(key), redis.incrby(key, 10), redis.get(key)]);
    expect(replies).toEqual([1, 2, '2', 12, '12']);
    expect(writes).toEqual([5]);
  });

  it('commands sent after an await go out in the next write', async () => {
    writes.length = 0;
    await redis.set(key, 'a');
    const [first, second] = await Promise.all([redis.append(key, 'b'), redis.get(key)]);
    expect([first, second]).toEqual([2, 'ab']);
    expect(writes).toEqual([1, 2]);
  });

  it('commands sent from promise callbacks of one turn leave together', async () => {
    writes.length = 0;
    await redis.set(key, '0');
    const chained = await Promise.all(
      [1, 2, 3].map((n) =>
        Promise.resolve()
          .then(() => Promise.resolve())
          .then(() => redis.incrby(key, n)),
      ),
    );
    expect(chained).toEqual([1, 3, 6]);
    expect(writes).toEqual([1, 3]);
  });
});
