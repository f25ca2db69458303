import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { reportGuarantee } from '../../helpers/guarantee-report.js';
import { startSentinelGroup, type SentinelGroup } from '../../helpers/redis-servers.js';
import { testPrefix, testRedisFor } from '../../helpers/redis.js';
import { Api, baseEnv, Cleanup, httpProcedure, startAll, writeRules } from '../guarantees/common.js';
import { webhookPayload } from '../../helpers/payload.js';
import { runFailoverScenario } from './failover.js';

/**
 * Redis Sentinel (Debian's redis-server: one primary, one replica, three sentinels with quorum 2; passwords on
 * both the data nodes and the sentinels) under two
 * receivers and two workers with REDIS_WAIT_REPLICAS=1. The primary is SIGKILLed while runs are in their actions
 * and webhooks keep arriving; the sentinels promote the replica, the old primary comes back as its replica.
 */
describe('Redis Sentinel: the primary dies in the middle of runs and webhooks; nothing is lost, nothing runs twice', () => {
  const cleanup = new Cleanup();
  let group: SentinelGroup;

  beforeAll(async () => {
    // Passwords on the data nodes and on the sentinels, as Bitnami's chart sets them up.
    group = await startSentinelGroup({ password: 'data-password-0123', sentinelPassword: 'sentinel-password-0123' });
    cleanup.add(() => group.stop());
  });

  afterAll(() => cleanup.run());

  it('REDIS_WAIT_REPLICAS=1: 202 once the replica holds the webhook; a stalled replica turns it into 503 after REDIS_WAIT_TIMEOUT', async () => {
    const redis = testRedisFor('sentinel', group.env);
    const prefix = testPrefix('wait');
    cleanup.add(() => redis.cleanupPrefix(prefix));
    const rulesDir = writeRules(cleanup, {
      'w.yaml': httpProcedure({ id: 'WAIT-1', alertname: 'WaitDown', sinkUrl: 'http://127.0.0.1:9', expect: false }),
    });
    const env = baseEnv(
      { prefix, rulesDir, prometheusUrl: 'http://127.0.0.1:9', redis: redis.env },
      { REDIS_WAIT_REPLICAS: '1', REDIS_WAIT_TIMEOUT: '300ms' },
    );
    const [receiver] = await startAll(cleanup, [{ env, command: 'receiver', name: 'wait-receiver' }]);
    const api = new Api(receiver!.url);
    expect((await api.webhook(webhookPayload({ alertname: 'WaitDown', instance: 'w-1' }))).enqueued).toBe(1);

    const primary = await group.primaryPort();
    const replica = [...group.nodes.values()].find((n) => n.port !== primary)!;
    replica.process.kill('SIGSTOP');
    cleanup.add(() => replica.process.kill('SIGCONT'));
    const t0 = performance.now();
    const stalled = await api.post(webhookPayload({ alertname: 'WaitDown', instance: 'w-2' }));
    const stalledMs = performance.now() - t0;
    expect(stalled.status).toBe(503);
    expect(stalledMs).toBeGreaterThanOrEqual(300);
    replica.process.kill('SIGCONT');
    // Alertmanager's retry: the record and job written before the 503 are found again, and now confirmed.
    const retried = await api.webhook(webhookPayload({ alertname: 'WaitDown', instance: 'w-2' }));
    expect(retried.alerts[0]!.result).toBe('duplicate');
    reportGuarantee('wait-for-replica', {
      topology: 'sentinel',
      REDIS_WAIT_TIMEOUT: '300ms',
      stalledReplica: 503,
      stalledMs: Math.round(stalledMs),
      retried: 202,
    });
  });

  it('every accepted incident has exactly one run, none lost, every action once; leases, budgets and jobs right', async () => {
    await runFailoverScenario('sentinel', cleanup, {
      redis: testRedisFor('sentinel', group.env),
      killPrimary: () => group.killPrimary(),
      promoted: (_tag, old) => group.waitForFailover(old),
      rejoin: (port) => group.restartAsReplica(port),
    });
  }, 180_000);
});
