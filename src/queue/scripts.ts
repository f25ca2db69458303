import type { RedisClient } from './connection.js';

/** A Lua script run by its SHA (EVALSHA): the text goes to Redis once per connection, not with every call. */
export type Script = (numKeys: number, ...args: (string | number)[]) => Promise<unknown>;

type Scripted = Record<string, (...args: (string | number)[]) => Promise<unknown>>;

/**
 * Registers `lua` on the connection under `name` (ioredis defineCommand: EVALSHA, and EVAL once when the server
 * does not know it yet, e.g. after a restart or failover) and returns the call. Defined commands also work inside a
 * pipeline made from this connection, under the same name.
 */
export function script(redis: RedisClient, name: string, lua: string): Script {
  const client = redis as unknown as Scripted;
  if (typeof client[name] !== 'function') redis.defineCommand(name, { lua });
  return (numKeys, ...args) => client[name]!(numKeys, ...args);
}
