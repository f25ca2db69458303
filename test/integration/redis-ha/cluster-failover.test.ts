import { afterAll, beforeAll, describe, it } from 'vitest';
import { startRedisCluster, type RedisClusterSetup } from '../../helpers/redis-servers.js';
import { testRedisFor } from '../../helpers/redis.js';
import { Cleanup } from '../guarantees/common.js';
import { runFailoverScenario } from './failover.js';

/**
 * Redis Cluster (three primaries, one replica each, cluster-node-timeout 1 s) under two receivers and two workers
 * with REDIS_WAIT_REPLICAS=1. The primary owning the QUEUE_PREFIX hash tag's slot is SIGKILLed while runs are in
 * their actions and webhooks keep arriving; its replica takes the slot over, the old primary rejoins as a replica.
 */
describe('Redis Cluster: the primary of the hash tag slot dies in the middle of runs and webhooks; nothing is lost, nothing runs twice', () => {
  const cleanup = new Cleanup();
  let cluster: RedisClusterSetup;

  beforeAll(async () => {
    cluster = await startRedisCluster({ primaries: 3, replicas: 1 });
    cleanup.add(() => cluster.stop());
  });

  afterAll(() => cleanup.run());

  it('every accepted incident has exactly one run, none lost, every action once; leases, budgets and jobs right', async () => {
    await runFailoverScenario('cluster', cleanup, {
      redis: testRedisFor('cluster', cluster.env),
      killPrimary: (tag) => cluster.killOwnerOf(tag),
      promoted: (tag, old) => cluster.waitForFailover(tag, old),
      rejoin: (port) => cluster.restartAsReplica(port),
    });
  }, 180_000);
});
