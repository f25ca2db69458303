import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakePrometheus, vector, type FakePrometheus } from '../../helpers/fake-prometheus.js';
import { reportGuarantee } from '../../helpers/guarantee-report.js';
import { testPrefix, TOPOLOGIES, useRedis, type TestRedis } from '../../helpers/redis.js';
import type { RemediatorProcess } from '../../helpers/remediator.js';
import { startSink, type Sink } from '../../helpers/sink.js';
import type { RunRecord } from '../../../src/engine/record.js';
import { Api, baseEnv, Cleanup, FINAL, healthyQuery, httpProcedure, startAll, writeRules } from './common.js';
import { webhookPayload } from '../../helpers/payload.js';

/**
 * Guarantee 3: budgets and flapping. A procedure with `budget: {runs: 2, per: 1m}`; the same alert fires, heals
 * and fires again (a new startsAt each time: a new incident) four times, through two serve processes. Two runs
 * act; the rest are recorded with "budget exhausted" and no action; exactly one budget escalation reaches the
 * webhook, carrying the history of the runs that spent the budget.
 */
describe.each(TOPOLOGIES)('guarantee 3: budgets and flapping (%s Redis)', (topology) => {
  let redis: TestRedis;
  const prefix = testPrefix('g3-budget');
  const cleanup = new Cleanup();
  let prom: FakePrometheus;
  let sink: Sink;
  let procs: RemediatorProcess[];

  beforeAll(async () => {
    redis = await useRedis(topology, cleanup);
    cleanup.add(() => redis.cleanupPrefix(prefix));
    prom = await startFakePrometheus();
    cleanup.add(() => prom.close());
    sink = await startSink();
    cleanup.add(() => sink.close());
    const rulesDir = writeRules(cleanup, {
      'budget.yaml': httpProcedure({
        id: 'BUD-1',
        alertname: 'Flapping',
        sinkUrl: sink.url,
        extra: 'budget: { runs: 2, per: 1m }',
        escalation: `escalation:
  - when: budget-exhausted
    to: [webhook]
    attach: [steps]
    message: "budget of BUD-1 exhausted on {{ labels.instance }}"
`,
      }),
    });
    const env = baseEnv({ prefix, rulesDir, prometheusUrl: prom.url, redis: redis.env, escalationUrl: `${sink.url}/escalate` });
    procs = await startAll(cleanup, [
      { env, command: 'serve', name: 'g3-serve-1' },
      { env, command: 'serve', name: 'g3-serve-2' },
    ]);
  });

  afterAll(() => cleanup.run());

  it('fire, heal, fire again ×4 within the window: 2 runs act, 2 are skipped for the budget, one escalation with the history', async () => {
    prom.script(healthyQuery('flappy-1'), vector([{ instance: 'flappy-1' }, '1']));
    const runs: RunRecord[] = [];
    for (let k = 0; k < 4; k++) {
      const api = new Api(procs[k % 2]!.url);
      const startsAt = new Date(Date.parse('2026-11-28T07:00:00Z') + k * 60_000).toISOString();
      const fired = await api.webhook(webhookPayload({ alertname: 'Flapping', instance: 'flappy-1', startsAt }));
      expect(fired.enqueued).toBe(1);
      // Final, and done escalating (or noting it escalated already) before the next incident fires.
      const run = await api.waitRun(
        fired.alerts[0]!.runId!,
        'final, and done escalating',
        (r) =>
          FINAL.includes(r.state) &&
          (!r.reason?.startsWith('budget exhausted') || r.escalations.length > 0 || r.reason.includes('escalated already')),
      );
      runs.push(run);
      // Heals: Alertmanager sends the resolved notification of this incident.
      const healed = await api.webhook(
        webhookPayload({ alertname: 'Flapping', instance: 'flappy-1', startsAt, status: 'resolved' }),
      );
      expect(healed.resolved).toBe(1);
    }

    expect(new Set(runs.map((r) => r.id)).size).toBe(4);
    expect(runs.slice(0, 2).map((r) => r.state)).toEqual(['succeeded', 'succeeded']);
    expect(sink.hitsTo('/act/flappy-1/')).toHaveLength(2);
    const [third, fourth] = runs.slice(2) as [RunRecord, RunRecord];
    for (const r of [third, fourth]) {
      expect(r.reason).toMatch(/^budget exhausted: 2 runs per 60s on this target/);
      expect(r.steps).toEqual([]); // no action, not even started
    }
    // The first exhausted run escalates (state escalated), the next is only recorded.
    expect(third.state).toBe('escalated');
    expect(third.escalations).toMatchObject([{ when: 'budget-exhausted', to: 'webhook', status: 'sent' }]);
    expect(fourth.state).toBe('skipped');
    expect(fourth.reason).toContain('escalated already in this window');
    expect(fourth.escalations).toEqual([]);

    const escalations = sink.hitsTo('/escalate');
    expect(escalations).toHaveLength(1);
    const body = escalations[0]!.body as { outcome: string; runId: string; reason: string; message: string };
    expect(body).toMatchObject({
      outcome: 'budget-exhausted',
      runId: third.id,
      message: 'budget of BUD-1 exhausted on flappy-1',
    });
    // The history: the two runs that spent the budget.
    expect(body.reason).toContain(runs[0]!.id);
    expect(body.reason).toContain(runs[1]!.id);

    reportGuarantee('budget-flapping', {
      topology,
      incidents: 4,
      budget: '2/1m',
      runsActed: sink.hitsTo('/act/flappy-1/').length,
      skippedForBudget: 2,
      budgetEscalations: escalations.length,
    });
  });
});
