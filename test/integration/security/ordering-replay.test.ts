/**
 * Issue 9, class "ordering and replay", on the real service (`node dist/cli.js serve`, real Redis):
 * - a `resolved` notification that arrives before its `firing` one (retries, HA peers) is remembered: the firing
 *   one's run is cancelled before acting (before: forgotten, and the action ran on an incident that was over);
 * - a firing incident older than MAX_INCIDENT_AGE (below RUN_RETENTION) or starting in the future is refused in the
 *   answer, not run; a replay after RUN_RETENTION is such an incident (before: answered `enqueued`, and either never
 *   run or run a second time);
 * - an incident first seen while paused, or by a DRY_RUN instance, runs for real when it comes again once automation
 *   acts (before: it blocked the real run for RUN_RETENTION, 7 days).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupPrefix, REDIS_URL, requireRedis, testPrefix } from '../../helpers/redis.js';
import { startRemediator, type RemediatorProcess } from '../../helpers/remediator.js';
import { startSink, type Sink } from '../../helpers/sink.js';
import { waitFor } from '../../helpers/wait.js';
import { Api, Cleanup, httpProcedure, TOKEN, writeRules } from '../guarantees/common.js';
import { webhookPayload } from '../../helpers/payload.js';

describe('integration/security: ordering and replay (real service, real Redis)', () => {
  const cleanup = new Cleanup();
  const prefix = testPrefix('ordering');
  let sink: Sink;
  let rulesDir: string;
  let serve: RemediatorProcess;
  let api: Api;
  const env = (extra: Record<string, string> = {}) => ({
    REDIS_URL,
    QUEUE_PREFIX: prefix,
    RULES_DIR: rulesDir,
    PROMETHEUS_URL: 'http://127.0.0.1:9',
    WEBHOOK_TOKEN: TOKEN,
    RUN_RETENTION: '6s',
    MAX_INCIDENT_AGE: '4s',
    STORM_TARGETS: '100',
    ...extra,
  });
  const now = (offsetMs = 0) => new Date(Date.now() + offsetMs).toISOString();

  beforeAll(async () => {
    await requireRedis();
    sink = await startSink();
    cleanup.add(() => sink.close());
    rulesDir = writeRules(cleanup, {
      'order-001.yaml': httpProcedure({ id: 'ORDER-001', alertname: 'OrderProbe', sinkUrl: sink.url, expect: false }),
    });
    cleanup.add(() => cleanupPrefix(prefix));
    serve = await startRemediator(env(), 'serve', 'ordering');
    cleanup.add(() => serve.stop());
    api = new Api(serve.url);
  });
  afterAll(() => cleanup.run());

  it('a resolved notification before its firing one is remembered: the run is cancelled, nothing acts', async () => {
    const startsAt = now(-1000);
    const resolved = await api.webhook(
      webhookPayload({ alertname: 'OrderProbe', instance: 'early-resolve', startsAt, status: 'resolved' }),
    );
    expect(resolved.alerts[0]).toMatchObject({ result: 'resolved', reason: expect.stringContaining('remembered') });
    const firing = await api.webhook(webhookPayload({ alertname: 'OrderProbe', instance: 'early-resolve', startsAt }));
    expect(firing.alerts[0]!.result).toBe('enqueued');
    const run = await api.waitFinal(firing.alerts[0]!.runId!);
    expect(run.state).toBe('cancelled');
    expect(run.reason).toMatch(/^alert resolved at .* before the run started/);
    expect(sink.hitsTo('/act/early-resolve')).toEqual([]);
  });

  it('an incident older than MAX_INCIDENT_AGE, or starting in the future, is refused and not run', async () => {
    const answer = await api.webhook(
      webhookPayload(
        { alertname: 'OrderProbe', instance: 'too-old', startsAt: now(-60_000) },
        { alertname: 'OrderProbe', instance: 'future', startsAt: now(3_600_000) },
      ),
    );
    expect(answer.alerts.map((a) => a.result)).toEqual(['refused', 'refused']);
    expect((answer as unknown as { refused: number }).refused).toBe(2);
    expect(answer.alerts.map((a) => a.runId !== undefined && a.result)).toEqual(['refused', 'refused']);
    expect(await api.runs({ target: 'too-old' })).toEqual([]);
    expect(sink.hitsTo('/act/too-old')).toEqual([]);
  });

  it('a replay after RUN_RETENTION is refused: the incident ran once', async () => {
    const startsAt = now(-500);
    const first = await api.webhook(webhookPayload({ alertname: 'OrderProbe', instance: 'replayed', startsAt }));
    expect((await api.waitFinal(first.alerts[0]!.runId!)).state).toBe('succeeded');
    // Its record expires with RUN_RETENTION (6 s): then it is not remembered any more…
    await waitFor(
      'the record to expire',
      async () => ((await api.run(first.alerts[0]!.runId!)) === undefined ? true : undefined),
      20_000,
    );
    // …and the same incident, sent again, is older than MAX_INCIDENT_AGE (4 s).
    const replay = await api.webhook(webhookPayload({ alertname: 'OrderProbe', instance: 'replayed', startsAt }));
    expect(replay.alerts[0]!.result).toBe('refused');
    expect(sink.hitsTo('/act/replayed')).toHaveLength(1);
  });

  it('an incident first seen while paused runs for real when it comes again after the resume', async () => {
    const auth = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };
    expect((await fetch(`${serve.url}/api/pause`, { method: 'POST', headers: auth, body: '{"reason":"test"}' })).status).toBe(
      200,
    );
    const startsAt = now(-500);
    const first = await api.webhook(webhookPayload({ alertname: 'OrderProbe', instance: 'paused-first', startsAt }));
    const plan = await api.waitFinal(first.alerts[0]!.runId!);
    expect(plan.state).toBe('skipped');
    expect(plan.planOnly).toBe('paused');
    // Still paused: a re-send is a duplicate.
    expect(
      (await api.webhook(webhookPayload({ alertname: 'OrderProbe', instance: 'paused-first', startsAt }))).alerts[0]!.result,
    ).toBe('duplicate');
    expect((await fetch(`${serve.url}/api/resume`, { method: 'POST', headers: auth })).status).toBe(200);
    const again = await api.webhook(webhookPayload({ alertname: 'OrderProbe', instance: 'paused-first', startsAt }));
    expect(again.alerts[0]).toMatchObject({ result: 'enqueued', runId: first.alerts[0]!.runId });
    const run = await api.waitRun(first.alerts[0]!.runId!, 'the real run', (r) => r.state === 'succeeded');
    expect(run.planOnly).toBeUndefined();
    expect(sink.hitsTo('/act/paused-first')).toHaveLength(1);
    // And now it is spent: another re-send is a duplicate, nothing acts again.
    expect(
      (await api.webhook(webhookPayload({ alertname: 'OrderProbe', instance: 'paused-first', startsAt }))).alerts[0]!.result,
    ).toBe('duplicate');
  });

  it('an incident first seen by a DRY_RUN instance runs for real at an instance that acts', async () => {
    const dry = await startRemediator(env({ DRY_RUN: 'true' }), 'serve', 'ordering-dry');
    const startsAt = now(-500);
    let runId: string;
    try {
      const dryApi = new Api(dry.url);
      const first = await dryApi.webhook(webhookPayload({ alertname: 'OrderProbe', instance: 'dry-first', startsAt }));
      runId = first.alerts[0]!.runId!;
      expect((await dryApi.waitFinal(runId)).planOnly).toBe('dry-run');
    } finally {
      await dry.stop();
    }
    const again = await api.webhook(webhookPayload({ alertname: 'OrderProbe', instance: 'dry-first', startsAt }));
    expect(again.alerts[0]!.result).toBe('enqueued');
    await api.waitRun(runId, 'the real run', (r) => r.state === 'succeeded');
    expect(sink.hitsTo('/act/dry-first')).toHaveLength(1);
  });
});
