import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QUEUE_NAME, redisKeys } from '../../../src/queue/keys.js';
import { startFakePrometheus, vector, type FakePrometheus } from '../../helpers/fake-prometheus.js';
import { reportGuarantee } from '../../helpers/guarantee-report.js';
import { freePort } from '../../helpers/ports.js';
import { cleanupPrefix, requireRedis, testPrefix } from '../../helpers/redis.js';
import type { RemediatorProcess } from '../../helpers/remediator.js';
import { startSink, type Sink } from '../../helpers/sink.js';
import { waitFor } from '../../helpers/wait.js';
import {
  Api,
  baseEnv,
  Cleanup,
  FINAL,
  healthyQuery,
  httpProcedure,
  OwnRedis,
  startAll,
  workerReady,
  writeRules,
} from './common.js';
import { webhookPayload } from '../../helpers/payload.js';

/**
 * Guarantee 6: outages of what remediator depends on, injected for real.
 * - Redis (a redis-server of this test's own) stopped: /webhook answers 503 while Redis is still down (it does not
 *   wait for it), /readyz fails; Redis back: the retried webhook is accepted and runs, the workers reconnect, the
 *   run that was in flight finishes. How fast the 503 comes is a figure (reported), not a pass/fail bound.
 * - Prometheus unreachable: the verification is unknown, the run escalates, it never reports success.
 * - Alertmanager unreachable (closed port, or answering 503): the escalation is retried, then falls back to the
 *   webhook; the record's escalations say so.
 */
describe('guarantee 6: outages', () => {
  const cleanup = new Cleanup();
  let prom: FakePrometheus;
  let sink: Sink;
  // The action in flight during the Redis outage is held until the test has seen the 503s.
  let releaseInflight!: () => void;
  const inflightHeld = new Promise<void>((r) => (releaseInflight = r));

  beforeAll(async () => {
    prom = await startFakePrometheus();
    cleanup.add(() => prom.close());
    // The run in flight during the Redis outage holds its action until released; an "Alertmanager" path answers 503.
    sink = await startSink({
      hold: (hit, nth) => (hit.path.startsWith('/act/inflight-1/') && nth === 0 ? inflightHeld : undefined),
      status: (hit) => (hit.path.startsWith('/am503/') ? 503 : 200),
    });
    cleanup.add(() => sink.close());
  });

  afterAll(() => {
    releaseInflight();
    return cleanup.run();
  });

  describe('Redis stopped and back', () => {
    const prefix = testPrefix('g6-redis');
    let redis: OwnRedis;
    let serve: RemediatorProcess;
    let worker: RemediatorProcess;

    beforeAll(async () => {
      redis = await OwnRedis.start(cleanup);
      const rulesDir = writeRules(cleanup, {
        'out.yaml': httpProcedure({ id: 'OUT-1', alertname: 'OutageDown', sinkUrl: sink.url }),
      });
      const env = baseEnv({ prefix, rulesDir, prometheusUrl: prom.url, redis: { REDIS_URL: redis.url } });
      const procs = await startAll(cleanup, [
        { env, command: 'serve', name: 'g6-serve' },
        { env, command: 'worker', name: 'g6-worker' },
      ]);
      serve = procs[0]!;
      worker = procs[1]!;
      await workerReady(worker);
    });

    it('503 while Redis is down (not held until it returns) and /readyz fails; afterwards the retried webhook runs and nothing stays stuck', async () => {
      for (const i of ['inflight-1', 'after-1']) prom.script(healthyQuery(i), vector([{ instance: i }, '1']));
      const api = new Api(serve.url);
      const inflight = (await api.webhook(webhookPayload({ alertname: 'OutageDown', instance: 'inflight-1' }))).alerts[0]!.runId!;
      const inflightHit = await sink.waitForHit((h) => h.path.startsWith('/act/inflight-1/'));

      await redis.stop(true); // SHUTDOWN SAVE: the restart finds the queue and the records again
      const downAt = Date.now();
      await waitFor(
        '/readyz to fail',
        async () => ((await fetch(`${serve.url}/readyz`)).status === 503 ? true : undefined),
        5000,
      );
      await waitFor(
        'the worker process /readyz to fail',
        async () => ((await fetch(`${worker.url}/readyz`)).status === 503 ? true : undefined),
        5000,
      );
      const body = webhookPayload({ alertname: 'OutageDown', instance: 'after-1' });
      const latencies: number[] = [];
      // Redis comes back only after these answers: a receiver that waited for it would never answer (test timeout).
      for (let k = 0; k < 5; k++) {
        const t0 = performance.now();
        const res = await api.post(body);
        latencies.push(performance.now() - t0);
        expect(res.status).toBe(503);
        expect(await res.json()).toEqual({ error: 'remediation queue unavailable; retry later' });
      }
      const max503 = Math.max(...latencies);
      expect(inflightHit.endedAt, 'the in-flight action is still held').toBeUndefined();

      // Keep Redis down until the in-flight action has ended: its worker saves the step while Redis is away.
      releaseInflight();
      await waitFor(
        'the in-flight action to end while Redis is down',
        () => (inflightHit.endedAt !== undefined ? true : undefined),
        10_000,
      );
      await redis.start();
      const downMs = Date.now() - downAt;
      // Alertmanager retries the same payload: accepted once Redis is back.
      const accepted = await waitFor(
        'the retried webhook to be accepted',
        async () => {
          const res = await api.post(body);
          return res.status === 202 ? ((await res.json()) as { enqueued: number; alerts: { runId: string }[] }) : undefined;
        },
        15_000,
      );
      expect(accepted.enqueued).toBe(1);
      const after = await api.waitFinal(accepted.alerts[0]!.runId, 20_000);
      expect(after.state).toBe('succeeded');
      const survived = await api.waitFinal(inflight, 20_000);
      expect(survived.state).toBe('succeeded');
      expect(sink.hitsTo('/act/inflight-1/')).toHaveLength(1);
      // Both workers noticed the outage and came back.
      for (const p of [serve, worker]) {
        await waitFor(
          `${p.process.name} to log its reconnect`,
          () => (/worker reconnected to redis/.test(p.process.logTail(400)) ? true : undefined),
          5000,
        );
      }
      // Nothing stuck: every run final, nothing active, waiting or delayed.
      const runs = await api.runs({ procedure: 'OUT-1' });
      expect(runs.map((r) => r.state).sort()).toEqual(['succeeded', 'succeeded']);
      expect(runs.every((r) => FINAL.includes(r.state))).toBe(true);
      const connection = new Redis(redis.url, { maxRetriesPerRequest: null });
      const queue = new Queue(QUEUE_NAME, { connection, prefix: redisKeys(prefix).bullPrefix });
      try {
        expect(await queue.getJobCounts('waiting', 'active', 'delayed', 'failed')).toEqual({
          waiting: 0,
          active: 0,
          delayed: 0,
          failed: 0,
        });
      } finally {
        await queue.close();
        connection.disconnect();
      }
      reportGuarantee('outage-redis', {
        faultsInjected: 1,
        fault: 'redis-server stopped',
        redisDownMs: downMs,
        webhook503MaxMs: Math.round(max503 * 10) / 10,
        webhook503s: latencies.length,
        runsLost: 0,
        runInFlightFinished: survived.state,
      });
    });
  });

  describe('Prometheus and Alertmanager unreachable', () => {
    const prefixes = [testPrefix('g6-prom'), testPrefix('g6-am'), testPrefix('g6-am503')];
    let noProm: Api;
    let noAm: Api;
    let am503: Api;

    beforeAll(async () => {
      await requireRedis();
      for (const p of prefixes) cleanup.add(() => cleanupPrefix(p));
      const closed = `http://127.0.0.1:${await freePort()}`;
      const rulesDir = writeRules(cleanup, {
        'verify.yaml': httpProcedure({
          id: 'OUT-PROM',
          alertname: 'NeedsProm',
          sinkUrl: sink.url,
          escalation: `escalation:
  - when: [failed, unknown]
    to: [webhook]
    message: "could not confirm {{ labels.instance }}"
`,
        }),
        'escalate.yaml': httpProcedure({
          id: 'OUT-AM',
          alertname: 'NeedsAm',
          sinkUrl: sink.url,
          escalation: `escalation:
  - when: failed
    to: [alertmanager]
    message: "{{ labels.instance }} still broken"
`,
        }),
      });
      const esc = `${sink.url}/escalate`;
      const [a, b, c] = await startAll(cleanup, [
        {
          env: baseEnv({ prefix: prefixes[0]!, rulesDir, prometheusUrl: closed, escalationUrl: esc }),
          command: 'serve',
          name: 'g6-no-prometheus',
        },
        {
          env: baseEnv(
            { prefix: prefixes[1]!, rulesDir, prometheusUrl: prom.url, escalationUrl: esc },
            { ALERTMANAGER_URL: closed },
          ),
          command: 'serve',
          name: 'g6-no-alertmanager',
        },
        {
          env: baseEnv(
            { prefix: prefixes[2]!, rulesDir, prometheusUrl: prom.url, escalationUrl: esc },
            { ALERTMANAGER_URL: `${sink.url}/am503` },
          ),
          command: 'serve',
          name: 'g6-alertmanager-503',
        },
      ]);
      [noProm, noAm, am503] = [new Api(a!.url), new Api(b!.url), new Api(c!.url)];
    });

    it('Prometheus unreachable: the verification is unknown, the run escalates, never success', async () => {
      const answer = await noProm.webhook(webhookPayload({ alertname: 'NeedsProm', instance: 'noprom-1' }));
      const run = await noProm.waitRun(
        answer.alerts[0]!.runId!,
        'escalated',
        (r) => FINAL.includes(r.state) && r.escalations.length > 0,
        20_000,
      );
      expect(sink.hitsTo('/act/noprom-1/')).toHaveLength(1); // it acted, but cannot know whether that helped
      expect(run.state).toBe('escalated');
      expect(run.steps[0]).toMatchObject({ status: 'unknown' });
      expect(run.steps[0]!.reason).toMatch(/^verification unknown: /);
      expect(run.escalations).toMatchObject([{ when: 'unknown', to: 'webhook', status: 'sent' }]);
      const sent = sink.hitsTo('/escalate').find((h) => (h.body as { runId?: string }).runId === run.id);
      expect(sent?.body).toMatchObject({ outcome: 'unknown', message: 'could not confirm noprom-1' });
      reportGuarantee('outage-prometheus', {
        faultsInjected: 1,
        fault: 'Prometheus unreachable',
        runState: run.state,
        stepStatus: run.steps[0]!.status,
        succeeded: false,
        runsLost: 0,
      });
    });

    it('Alertmanager unreachable or failing: retried, then the escalation falls back to the webhook', async () => {
      prom.script(healthyQuery('noam-1'), vector([{ instance: 'noam-1' }, '0']));
      prom.script(healthyQuery('am503-1'), vector([{ instance: 'am503-1' }, '0']));
      const [closedRun, failingRun] = await Promise.all(
        (
          [
            [noAm, 'noam-1'],
            [am503, 'am503-1'],
          ] as const
        ).map(async ([api, instance]) => {
          const id = (await api.webhook(webhookPayload({ alertname: 'NeedsAm', instance }))).alerts[0]!.runId!;
          return api.waitRun(id, 'escalated', (r) => FINAL.includes(r.state) && r.escalations.length >= 2, 25_000);
        }),
      );
      for (const run of [closedRun!, failingRun!]) {
        expect(run.steps[0]).toMatchObject({ status: 'failed' });
        expect(run.state).toBe('escalated');
        expect(run.escalations).toMatchObject([
          { when: 'failed', to: 'alertmanager', status: 'failed' },
          {
            when: 'failed',
            to: 'webhook',
            status: 'sent',
            message: `${run.target} still broken (fallback: Alertmanager unreachable)`,
          },
        ]);
        expect(sink.hitsTo('/escalate').filter((h) => (h.body as { runId?: string }).runId === run.id)).toHaveLength(1);
      }
      expect(closedRun!.escalations[0]!.error).toMatch(/ECONNREFUSED|connect/);
      expect(failingRun!.escalations[0]!.error).toMatch(/HTTP 503/);
      // Each Alertmanager delivery was tried 3 times before falling back.
      const amAttempts = sink.hitsTo('/am503/api/v2/alerts', 'POST').length;
      expect(amAttempts).toBe(3);
      reportGuarantee('outage-alertmanager', {
        faultsInjected: 2,
        fault: 'Alertmanager refused / HTTP 503',
        alertmanagerAttempts: amAttempts,
        fellBackToWebhook: true,
        runsLost: 0,
      });
    });
  });
});
