import { randomUUID } from 'node:crypto';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { loadConfig } from '../../src/config.js';
import { connectRedis, isCluster, type ConnectionRole, type RedisClient } from '../../src/queue/connection.js';
import { QUEUE_NAME, redisKeys } from '../../src/queue/keys.js';
import type { RedisSettings } from '../../src/redis-settings.js';
import { startRedisCluster, type RedisClusterSetup } from './redis-servers.js';

export const REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** A queue prefix of its own for each test file, so runs never collide. */
export function testPrefix(name: string): string {
  return `test-${name}-${randomUUID().slice(0, 8)}`;
}

/** Fails with a message saying how to get Redis, instead of a timeout, when none answers. */
export async function requireRedis(url = REDIS_URL): Promise<void> {
  const redis = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    connectTimeout: 2000,
    retryStrategy: () => null,
  });
  redis.on('error', () => {});
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    throw new Error(
      `Redis is not reachable at ${url} (${(err as Error).message}). Start one with: ` +
        `redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save '' --appendonly no (apt-get install -y redis-server)`,
    );
  } finally {
    redis.disconnect();
  }
}

/** Deletes every key of a test prefix (BullMQ's and ours share the `{prefix}` tag, so one node holds them all). */
export async function cleanupPrefix(prefix: string, url = REDIS_URL): Promise<void> {
  const redis = new Redis(url);
  try {
    await deleteTagged(redis, prefix);
  } finally {
    redis.disconnect();
  }
}

async function deleteTagged(client: RedisClient, prefix: string): Promise<void> {
  const nodes = isCluster(client) ? client.nodes('master') : [client];
  for (const node of nodes) {
    let cursor = '0';
    do {
      const [next, keys] = await node.scan(cursor, 'MATCH', `{${prefix}}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await node.del(...keys);
    } while (cursor !== '0');
  }
}

/** The Redis topologies the guarantee tests run on: the shared single Redis, and a three-primary Cluster of their own. */
export const TOPOLOGIES = ['single', 'cluster'] as const;
export type Topology = (typeof TOPOLOGIES)[number];

/** Redis for one test file, whatever the topology: what remediator processes get, and clients for the test itself. */
export interface TestRedis {
  readonly topology: Topology | 'sentinel';
  /** REDIS_* variables for remediator (REDIS_URL, or REDIS_CLUSTER_NODES, …). */
  readonly env: Record<string, string>;
  readonly settings: RedisSettings;
  /** A client through src/queue/connection.ts (the caller disconnects it), ready to use. */
  connect(role?: ConnectionRole): Promise<RedisClient>;
  /** Job counts of remediator's queue under `prefix`. */
  jobCounts(prefix: string): Promise<Record<string, number>>;
  /** Keys under `{prefix}` matching `pattern` (after the tag), e.g. `:lease:*`. */
  keys(prefix: string, pattern: string): Promise<string[]>;
  cleanupPrefix(prefix: string): Promise<void>;
}

/** A TestRedis for REDIS_* variables (REDIS_URL, REDIS_SENTINELS…, REDIS_CLUSTER_NODES). */
export function testRedisFor(topology: TestRedis['topology'], env: Record<string, string>): TestRedis {
  const settings = loadConfig(env).redis;
  const connect = async (role: ConnectionRole = 'tool') => {
    const client = connectRedis(settings, role, 'remediator-test');
    client.on('error', () => {});
    if (client.status !== 'ready') await new Promise((resolve) => client.once('ready', resolve));
    return client;
  };
  const using = async <T>(fn: (c: RedisClient) => Promise<T>): Promise<T> => {
    const client = await connect();
    try {
      return await fn(client);
    } finally {
      client.disconnect();
    }
  };
  return {
    topology,
    env,
    settings,
    connect,
    jobCounts: (prefix) =>
      using(async (connection) => {
        const queue = new Queue(QUEUE_NAME, { connection, prefix: redisKeys(prefix).bullPrefix });
        try {
          return await queue.getJobCounts('waiting', 'active', 'delayed', 'completed', 'failed');
        } finally {
          await queue.close();
        }
      }),
    keys: (prefix, pattern) =>
      using(async (client) => {
        const nodes = isCluster(client) ? client.nodes('master') : [client];
        const found: string[] = [];
        for (const node of nodes) {
          let cursor = '0';
          do {
            const [next, keys] = await node.scan(cursor, 'MATCH', `{${prefix}}${pattern}`, 'COUNT', 1000);
            cursor = next;
            found.push(...keys);
          } while (cursor !== '0');
        }
        return found;
      }),
    cleanupPrefix: (prefix) => using((client) => deleteTagged(client, prefix)),
  };
}

/**
 * Redis of `topology` for one test file: `single` is the shared Redis (REDIS_URL, must be running); `cluster` starts
 * a three-primary Cluster of the file's own, stopped through `cleanup`.
 */
export async function useRedis(topology: Topology, cleanup: { add(fn: () => unknown): void }): Promise<TestRedis> {
  if (topology === 'single') {
    await requireRedis();
    return testRedisFor('single', { REDIS_URL });
  }
  const cluster: RedisClusterSetup = await startRedisCluster({ primaries: 3 });
  cleanup.add(() => cluster.stop());
  return testRedisFor('cluster', cluster.env);
}
