import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakePrometheus, vector, type FakePrometheus } from '../../helpers/fake-prometheus.js';
import { reportGuarantee } from '../../helpers/guarantee-report.js';
import { cleanupPrefix, requireRedis, testPrefix } from '../../helpers/redis.js';
import type { RemediatorProcess } from '../../helpers/remediator.js';
import { startSink, type Sink } from '../../helpers/sink.js';
import { startStack, type Stack } from '../../helpers/stack.js';
import { waitFor } from '../../helpers/wait.js';
import { Api, baseEnv, Cleanup, healthyQuery, httpProcedure, startAll, workerReady, writeRules } from './common.js';
import { webhookPayload } from '../../helpers/payload.js';

interface Silence {
  id: string;
  status: { state: 'active' | 'pending' | 'expired' };
  matchers: { name: string; value: string; isRegex: boolean; isEqual?: boolean }[];
  createdBy: string;
  startsAt: string;
  endsAt: string;
}

/**
 * Guarantee 7: resolved alerts. A run still waiting for its target when its alert resolves is cancelled without
 * acting; a run already in a step finishes that step and verifies, and takes no further action. And the optional
 * per-procedure `silence: {for: 5m}` silences the alert in a real Alertmanager while the run acts, and expires
 * the silence when the run ends.
 */
describe('guarantee 7: resolved alerts cancel runs not started; silences while acting', () => {
  const prefix = testPrefix('g7-resolved');
  const cleanup = new Cleanup();
  let prom: FakePrometheus;
  let sink: Sink;
  let stack: Stack;
  let serve: RemediatorProcess;
  let api: Api;

  beforeAll(async () => {
    await requireRedis();
    cleanup.add(() => cleanupPrefix(prefix));
    prom = await startFakePrometheus();
    cleanup.add(() => prom.close());
    sink = await startSink({
      delayMs: (hit, nth) => (nth === 0 && /\/(RES-HOLD|RES-TWO\/step1|RES-SIL)\//.test(`${hit.path}/`) ? 5000 : 0),
    });
    cleanup.add(() => sink.close());
    // Only its Alertmanager is used. One trivial rule file: startStack recognises its Prometheus by a path in the config.
    const noop = join(cleanup.tempDir('prom-rules'), 'noop.rules.yaml');
    writeFileSync(noop, 'groups:\n  - name: noop\n    rules:\n      - record: remediator_test_noop\n        expr: vector(1)\n');
    stack = await startStack({
      webhookUrl: 'http://127.0.0.1:9/unused',
      webhookToken: 'unused-token',
      scrapeTargets: [],
      ruleFiles: [noop],
    });
    cleanup.add(() => stack.stop());
    const rulesDir = writeRules(cleanup, {
      'hold.yaml': httpProcedure({ id: 'RES-HOLD', alertname: 'ResHold', sinkUrl: sink.url }),
      'wait.yaml': httpProcedure({ id: 'RES-WAIT', alertname: 'ResWait', sinkUrl: sink.url }),
      'two.yaml': httpProcedure({ id: 'RES-TWO', alertname: 'ResTwo', sinkUrl: sink.url, steps: ['step1', 'step2'] }),
      'sil.yaml': httpProcedure({ id: 'RES-SIL', alertname: 'SilenceMe', sinkUrl: sink.url, extra: 'silence: { for: 5m }' }),
    });
    const env = baseEnv({ prefix, rulesDir, prometheusUrl: prom.url }, { ALERTMANAGER_URL: stack.alertmanagerUrl });
    const procs = await startAll(cleanup, [
      { env, command: 'serve', name: 'g7-serve' },
      { env, command: 'worker', name: 'g7-worker' },
    ]);
    serve = procs[0]!;
    await workerReady(procs[1]!);
    api = new Api(serve.url);
  }, 60_000);

  afterAll(() => cleanup.run());

  it('a run waiting for its target is cancelled by the resolved alert and never acts', async () => {
    prom.script(healthyQuery('res-1'), vector([{ instance: 'res-1' }, '1']));
    const holder = (await api.webhook(webhookPayload({ alertname: 'ResHold', instance: 'res-1' }))).alerts[0]!.runId!;
    await sink.waitForHit((h) => h.path.startsWith('/act/res-1/RES-HOLD/'));
    const startsAt = '2026-11-28T07:30:00.000Z';
    const waiter = (await api.webhook(webhookPayload({ alertname: 'ResWait', instance: 'res-1', startsAt }))).alerts[0]!.runId!;
    await api.waitRun(waiter, 'waiting for the target', (r) => r.reason?.startsWith(`waiting: run ${holder}`) === true);

    const resolved = await api.webhook(webhookPayload({ alertname: 'ResWait', instance: 'res-1', startsAt, status: 'resolved' }));
    expect(resolved).toMatchObject({ resolved: 1, alerts: [{ result: 'resolved', runId: waiter }] });
    const cancelled = await api.waitFinal(waiter);
    expect(cancelled.state).toBe('cancelled');
    expect(cancelled.reason).toMatch(/^alert resolved at .+, before the run started$/);
    expect(cancelled.steps).toEqual([]);
    expect((await api.waitFinal(holder)).state).toBe('succeeded');
    expect(sink.hitsTo('/act/res-1/RES-WAIT/')).toHaveLength(0);
    reportGuarantee('resolved-cancels-waiting', { runState: cancelled.state, actionsExecuted: 0 });
  });

  it('a run in progress finishes its current step and verifies, then takes no further action', async () => {
    prom.script(healthyQuery('res-2'), vector([{ instance: 'res-2' }, '1']));
    const startsAt = '2026-11-28T07:40:00.000Z';
    const id = (await api.webhook(webhookPayload({ alertname: 'ResTwo', instance: 'res-2', startsAt }))).alerts[0]!.runId!;
    await sink.waitForHit((h) => h.path === '/act/res-2/RES-TWO/step1');
    expect(
      (await api.webhook(webhookPayload({ alertname: 'ResTwo', instance: 'res-2', startsAt, status: 'resolved' }))).resolved,
    ).toBe(1);
    const run = await api.waitFinal(id);
    expect(run.steps[0]).toMatchObject({ name: 'step1', status: 'passed' });
    expect(run.steps[0]!.observed).toEqual([{ labels: { instance: 'res-2' }, value: 1, at: expect.any(String) }]);
    expect(run.steps[1]).toMatchObject({ name: 'step2', status: 'skipped' });
    expect(run.steps[1]!.reason).toMatch(/^alert resolved at .+: no further action$/);
    expect(run.state).toBe('succeeded');
    expect(sink.hitsTo('/act/res-2/RES-TWO/step1')).toHaveLength(1);
    expect(sink.hitsTo('/act/res-2/RES-TWO/step2')).toHaveLength(0);
  });

  it('silence: {for: 5m} silences the alert in a real Alertmanager while acting and expires it at the end', async () => {
    prom.script(healthyQuery('sil-1'), vector([{ instance: 'sil-1' }, '1']));
    const body = webhookPayload({ alertname: 'SilenceMe', instance: 'sil-1' });
    const id = (await api.webhook(body)).alerts[0]!.runId!;
    await sink.waitForHit((h) => h.path.startsWith('/act/sil-1/RES-SIL/'));
    const acting = await api.waitRun(id, 'holding a silence', (r) => r.silence !== undefined);
    expect(acting.state).toBe('running');
    const silenceUrl = `${stack.alertmanagerUrl}/api/v2/silence/${acting.silence!.id}`;
    const during = (await (await fetch(silenceUrl)).json()) as Silence;
    expect(during.status.state).toBe('active');
    expect(during.createdBy).toBe('remediator');
    // Exactly this alert: every label, matched literally.
    const labels = body.alerts[0]!.labels;
    expect(during.matchers.map((m) => [m.name, m.value, m.isRegex, m.isEqual ?? true]).sort()).toEqual(
      Object.entries(labels)
        .map(([k, v]) => [k, v, false, true])
        .sort(),
    );
    // Its span as created (the silence's own times, not the test's clock): the rule's 5m.
    expect(Date.parse(during.endsAt)).toBe(Date.parse(acting.silence!.until));
    expect(Date.parse(during.endsAt) - Date.parse(during.startsAt)).toBeGreaterThan(4 * 60_000);

    const done = await api.waitRun(
      id,
      'finished with the silence expired',
      (r) => r.state === 'succeeded' && r.silence?.expired === true,
    );
    const after = await waitFor('Alertmanager to report the silence expired', async () => {
      const s = (await (await fetch(silenceUrl)).json()) as Silence;
      return s.status.state === 'expired' ? s : undefined;
    });
    expect(after.id).toBe(done.silence!.id);
    reportGuarantee('silence-while-acting', { silenceStateDuring: during.status.state, silenceStateAfter: after.status.state });
  });
});
