/**
 * P1-004 Runtime Starvation, hands-off, end to end on the real surface: the simulated rust-tokio-supervisor host
 * under a service-manager stand-in → `remediator exporter` → real Prometheus (RuntimeStarvation: `hello` answers,
 * `state` does not; fast copy of the shipped alert rule with `for: 5s`) → real Alertmanager → remediator (shipped
 * rules/P1-004-runtime-starvation.yaml, only its vars set) → steps verified through the supervisor's IPC socket →
 * escalation to Alertmanager and the webhook. Timelines go to test-artifacts/p1/P1-004-<path>.json.
 *
 * Children: payment_loop (critical), ledger_sync and report_export (optional: `criticality: standard` in the
 * topology). Scenarios on one deployment, the supervisor restarted by its service manager between them (a fresh
 * process; `bind_mode: replace_stale`, since a starved host does not finish its graceful stop and is killed):
 *   1. heal: ledger_sync hogs the runtime (blocking work between its awaits): every control-loop message comes
 *      2.5 s late, so `state` misses the 2 s check while a command still gets through. Quarantining the
 *      non-critical children stops it; `state` answers again.
 *   2. escalation: ledger_sync hogs and ignores cancellation: quarantined, it stays `cancelling` and keeps the loop
 *      late → "starvation persists after quarantining all non-critical children" → L2 with the runtime snapshot.
 *   3. escalation: report_export never yields (block_forever): the loop does not answer even a query within a
 *      command's 30 s → escalated at once, with the hello answer and the last good state, no command sent.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunRecord } from '../../src/engine/record.js';
import { createIpcClient } from '../../src/supervisor/ipc-client.js';
import { findChildRecord, readState } from '../../src/supervisor/results.js';
import { waitFor } from '../helpers/wait.js';
import { recordTimeline, startP1Env, step, stepSummary, timingLine, type AmAlert, type P1Env } from './p1-harness.js';

const notes: string[] = [];
const note = (line: string) => {
  notes.push(line);
  process.stdout.write(`${line}\n`);
};

describe('e2e P1-004 Runtime Starvation (real Prometheus + Alertmanager + sim + exporter, nobody acting)', () => {
  let env: P1Env;

  beforeAll(async () => {
    env = await startP1Env({
      procedure: 'P1-004',
      tag: '1004',
      supervisor: {
        bindMode: 'replace_stale',
        config: {
          children: [
            { name: 'payment_loop' },
            { name: 'ledger_sync', criticality: 'optional' },
            { name: 'report_export', criticality: 'optional' },
          ],
        },
      },
    });
  }, 180_000);

  afterAll(async () => {
    await env?.stop();
    if (notes.length > 0) process.stdout.write(`\nP1-004 closing note:\n${notes.map((n) => `  ${n}`).join('\n')}\n`);
  });

  const runAfter = (faultAt: number) =>
    env.waitRun('a P1-004 run for the injected fault', (r) => Date.parse(r.alert.startsAt) >= faultAt - 1000, 90_000);
  const runsSince = async (faultAt: number) => (await env.runs()).filter((r) => Date.parse(r.alert.startsAt) >= faultAt - 1000);

  /** A fresh supervisor process (its service manager's restart), then everything healthy again. */
  async function freshSupervisor() {
    await env.restartSupervisor();
    await env.waitHealthy(90_000);
  }

  async function escalationAlert(runId: string): Promise<AmAlert> {
    const [alert, ...more] = await waitFor(
      'the RemediationEscalated alert at Alertmanager',
      async () => {
        const a = await env.escalationAlerts(runId);
        return a.length > 0 ? a : undefined;
      },
      30_000,
    );
    expect(more).toEqual([]);
    return alert!;
  }

  /** The quarantines step 3 sent: one per non-critical child, taken from the topology of the state answer. */
  function quarantined(run: RunRecord): string[] {
    return (step(run, 'quarantine-non-critical').action?.spec as { method: string; child: string }[]).map((s) => {
      expect(s.method).toBe('command.quarantine_child');
      return s.child;
    });
  }

  it('heal: a non-critical child hogs the runtime; quarantining the non-critical children lets the loop turn again', async () => {
    const faultAt = Date.now();
    await env.fault('hog', { child: 'ledger_sync', ms: 2500 });
    const first = await runAfter(faultAt);
    const run = await env.waitState(first.id, ['succeeded'], 180_000);
    note(timingLine('P1-004', 'verified recovery', faultAt, run) + ' [hog, quarantined]');

    expect(run.alert.labels).toMatchObject({ alertname: 'RuntimeStarvation', instance: env.instance, severity: 'page' });
    expect(
      run.steps.map((s) => [s.name, s.status]),
      stepSummary(run),
    ).toEqual([
      ['check-control-loop', 'failed'],
      ['review-children', 'passed'],
      ['quarantine-non-critical', 'passed'],
      ['verify-recovery', 'passed'],
    ]);
    // 1: the exporter's snapshot read, and `state` did not answer within 2 s.
    const check = step(run, 'check-control-loop');
    expect(check.action).toMatchObject({ kind: 'http', spec: { url: `${env.exporterUrl}/snapshot` } });
    expect(check.observed).toEqual(
      expect.arrayContaining([expect.objectContaining({ labels: { method: 'state', field: 'timedOut' }, value: 'true' })]),
    );
    // 2: the list, asked with a command's 30 s: it came (late).
    const review = step(run, 'review-children');
    expect(review.result).toMatchObject({ status: 'succeeded', body: { ok: true, result: { type: 'state' } } });
    expect((review.result?.detail as { elapsedMs: number }).elapsedMs).toBeGreaterThanOrEqual(2000);
    // 3: every non-critical child, never the critical one; each accepted as quarantined.
    expect(quarantined(run)).toEqual(['ledger_sync', 'report_export']);
    const bodies = step(run, 'quarantine-non-critical').result?.body as { result: { result: unknown } }[];
    for (const b of bodies)
      expect(b.result.result).toMatchObject({
        accepted: true,
        status: 'completed',
        state_delta: { outcome: { operation_after: 'quarantined' } },
      });
    // 4: state answers within 2 s again, asked at least 5 s after the quarantines.
    const verify = step(run, 'verify-recovery');
    expect(verify.expect).toMatchObject({ holds: true });
    expect(Date.parse(verify.observed[0]!.at)).toBeGreaterThanOrEqual(
      Date.parse(step(run, 'quarantine-non-critical').endedAt!) + 4000,
    );
    expect(run.escalations).toEqual([]);
    expect(env.webhookPosts(run.id)).toEqual([]);

    await waitFor(
      'RuntimeStarvation to resolve',
      async () => ((await env.firing('RuntimeStarvation')) === 0 ? true : undefined),
      60_000,
      500,
    );
    const runsForFault = (await runsSince(faultAt)).length;
    expect(runsForFault).toBe(1);
    recordTimeline({
      procedure: 'P1-004',
      path: 'heal-quarantine',
      fault: 'a non-critical child hogs the runtime',
      faultAt,
      run,
      runsForFault,
    });
  }, 420_000);

  it('escalation: starvation persists after quarantining all non-critical children: L2 with the runtime snapshot', async () => {
    await freshSupervisor();
    const faultAt = Date.now();
    await env.fault('hog', { child: 'ledger_sync', ms: 2500 });
    await env.fault('ignore-cancel', { child: 'ledger_sync' });
    const first = await runAfter(faultAt);
    const run = await env.waitState(first.id, ['escalated'], 240_000);
    note(timingLine('P1-004', 'escalation (L2, persists)', faultAt, run) + ' [hog that ignores cancel]');

    expect(
      run.steps.map((s) => [s.name, s.status]),
      stepSummary(run),
    ).toEqual([
      ['check-control-loop', 'failed'],
      ['review-children', 'passed'],
      ['quarantine-non-critical', 'passed'],
      ['verify-recovery', 'failed'],
    ]);
    expect(quarantined(run)).toEqual(['ledger_sync', 'report_export']);
    const verify = step(run, 'verify-recovery');
    expect(verify.reason).toMatch(/no answer within 2s/);
    expect(run.escalations.map((e) => [e.when, e.to, e.status])).toEqual([
      ['failed', 'alertmanager', 'sent'],
      ['failed', 'webhook', 'sent'],
    ]);
    const alert = await escalationAlert(run.id);
    expect(alert.labels).toMatchObject({ procedure: 'P1-004', target: env.instance, reason: 'failed', team: 'l2-engineering' });
    expect(alert.annotations.summary).toMatch(
      /persists after quarantining all non-critical children: escalate to L2 with the runtime snapshot/,
    );
    const posts = env.webhookPosts(run.id);
    expect(posts).toHaveLength(1);
    // The runtime snapshot: the exporter's last good state (before the fault) and hello answer.
    const snapshot = (posts[0]!.attachments['step:check-control-loop'] as { result: { body: Record<string, unknown> } }).result
      .body;
    expect(snapshot).toMatchObject({
      hello: { answer: { ok: true, result: { type: 'hello' } } },
      last_good_state: { answer: { ok: true, result: { type: 'state' } } },
    });
    expect(JSON.stringify(posts[0]!.attachments['step:quarantine-non-critical'])).toMatch(/ledger_sync/);
    // What the quarantine left, read through the socket (late, but it answers): the hog stuck cancelling.
    const { response } = await createIpcClient({ path: env.d.ipcPath }).state(env.d.targetId, { timeoutMs: 15_000 });
    expect(findChildRecord(readState(response).state, 'ledger_sync')).toMatchObject({
      operation: 'quarantined',
      status: 'cancelling',
    });

    recordTimeline({
      procedure: 'P1-004',
      path: 'escalate-persists',
      fault: 'a non-critical child hogs the runtime and ignores cancel',
      faultAt,
      run,
      runsForFault: (await runsSince(faultAt)).length,
    });
  }, 420_000);

  it('escalation: the control loop is too starved to answer commands: escalated at once, hello + last good state, nothing sent', async () => {
    await freshSupervisor();
    const faultAt = Date.now();
    await env.fault('block', { child: 'report_export' });
    const first = await runAfter(faultAt);
    const run = await env.waitState(first.id, ['escalated'], 180_000);
    note(timingLine('P1-004', 'escalation (at once, too starved)', faultAt, run) + ' [block_forever]');

    expect(
      run.steps.map((s) => [s.name, s.status]),
      stepSummary(run),
    ).toEqual([
      ['check-control-loop', 'failed'],
      ['review-children', 'failed'],
    ]);
    expect(step(run, 'review-children').result).toMatchObject({ status: 'failed', detail: { timedOut: true } });
    expect(step(run, 'review-children').result?.output).toMatch(/no answer to state within 30s/);
    expect(run.escalations.map((e) => [e.when, e.to, e.status])).toEqual([
      ['failed', 'alertmanager', 'sent'],
      ['failed', 'webhook', 'sent'],
    ]);
    const alert = await escalationAlert(run.id);
    expect(alert.labels).toMatchObject({ procedure: 'P1-004', reason: 'failed', team: 'l2-engineering' });
    expect(alert.annotations.summary).toMatch(/too starved to answer commands/);
    const posts = env.webhookPosts(run.id);
    expect(posts).toHaveLength(1);
    const snapshot = (posts[0]!.attachments['step:check-control-loop'] as { result: { body: Record<string, unknown> } }).result
      .body;
    expect(snapshot).toMatchObject({
      hello: { answer: { ok: true, result: { type: 'hello', protocol_version: 'dashboard-ipc.v1' } } },
      last_good_state: { answer: { ok: true, result: { type: 'state' } } },
      last_scrape: { ipc_up: true, state_ok: false },
    });

    recordTimeline({
      procedure: 'P1-004',
      path: 'escalate-too-starved',
      fault: 'a child never yields (block_forever)',
      faultAt,
      run,
      runsForFault: (await runsSince(faultAt)).length,
    });
    expect((await env.runs()).map((r) => r.state).sort()).toEqual(['escalated', 'escalated', 'succeeded']);
  }, 300_000);
});
