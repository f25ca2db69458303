/**
 * P1-002 Child Task Crash Loop, hands-off, end to end on the real surface: the simulated rust-tokio-supervisor host
 * under a service-manager stand-in → `remediator exporter` → real Prometheus (ChildCrashLoop, fast copy of the
 * shipped alert rule with `for: 5s`) → real Alertmanager → remediator (shipped rules/P1-002-child-crash-loop.yaml,
 * only its vars set) → steps verified through the supervisor's IPC socket → escalation to Alertmanager and the
 * webhook. Timelines go to test-artifacts/p1/P1-002-<path>.json.
 *
 * Scenarios on one deployment (the procedure's target is `instance/child_id`: each scenario has its own child):
 *   1. heal: ledger_sync panics after every start until its restart limit (6 in its window) is used up; the run
 *      finds its record past the threshold, reads `panicked at` in the journal, sees the limit exhausted and no
 *      attempt running (nothing quarantines it), removes it (confirmed) and finds no slot left.
 *   2. escalation: report_export crash-loops, then its task stops looking at its cancellation token (a hang in the
 *      middle of the loop). The remove is accepted, but the child never stops: its slot lingers (`removed`,
 *      `cancelling`), the root cause is not found → "file a bug with the exit reason and journal snippet".
 *
 * The runbook's trigger for that escalation is time ("not identified in 10min": the rule's `timeout: 10m` and
 * escalation `when: [failed, timeout]`); the test reaches the same entry through its `failed` half, a slot that
 * lingers past verify-slot's two minutes.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIpcClient } from '../../src/supervisor/ipc-client.js';
import { findChildRecord, readState } from '../../src/supervisor/results.js';
import { waitFor } from '../helpers/wait.js';
import { recordTimeline, startP1Env, step, stepSummary, timingLine, type P1Env } from './p1-harness.js';

const notes: string[] = [];
const note = (line: string) => {
  notes.push(line);
  process.stdout.write(`${line}\n`);
};

describe('e2e P1-002 Child Task Crash Loop (real Prometheus + Alertmanager + sim + exporter, nobody acting)', () => {
  let env: P1Env;

  beforeAll(async () => {
    env = await startP1Env({
      procedure: 'P1-002',
      tag: '1002',
      supervisor: {
        config: {
          policy: { child_restart_limit: 6, child_restart_window_ms: 60_000 },
          children: [{ name: 'payment_loop' }, { name: 'ledger_sync' }, { name: 'report_export' }],
        },
      },
    });
  }, 180_000);

  afterAll(async () => {
    await env?.stop();
    if (notes.length > 0) process.stdout.write(`\nP1-002 closing note:\n${notes.map((n) => `  ${n}`).join('\n')}\n`);
  });

  /** The child's record, read through the supervisor's own socket (as the procedure reads it). */
  async function record(child: string) {
    const { response } = await createIpcClient({ path: env.d.ipcPath }).state(env.d.targetId, { timeoutMs: 5000 });
    return findChildRecord(readState(response).state, child);
  }

  const runFor = (child: string, faultAt: number) =>
    env.waitRun(
      `a P1-002 run for ${child}`,
      (r) => r.alert.labels.child_id === child && Date.parse(r.alert.startsAt) >= faultAt - 1000,
      90_000,
    );

  const runsFor = async (child: string, faultAt: number) =>
    (await env.runs()).filter((r) => r.alert.labels.child_id === child && Date.parse(r.alert.startsAt) >= faultAt - 1000);

  it('heal: a child past its restart limit is found, its panic read, removed (confirmed); no slot lingers', async () => {
    const faultAt = Date.now();
    await env.fault('crash-loop', { child: 'ledger_sync', panic_after_ms: 200 });
    const first = await runFor('ledger_sync', faultAt);
    const run = await env.waitState(first.id, ['succeeded'], 180_000);
    note(timingLine('P1-002', 'verified (no lingering slot)', faultAt, run) + ' [crash loop, limit used up]');

    expect(run.alert.labels).toMatchObject({
      alertname: 'ChildCrashLoop',
      instance: env.instance,
      child_id: 'ledger_sync',
      severity: 'page',
    });
    expect(
      run.steps.map((s) => [s.name, s.status]),
      stepSummary(run),
    ).toEqual([
      ['query-state', 'passed'],
      ['check-exit-reason', 'passed'],
      ['budget-exhausted', 'passed'],
      ['remove-child', 'passed'],
      ['verify-slot', 'passed'],
    ]);
    // 1: the record exists and used its restarts (7 of 6: the runtime stops restarting past the limit).
    const query = step(run, 'query-state');
    expect(query.action).toMatchObject({ kind: 'ipc', spec: { method: 'state', path: env.d.ipcPath } });
    expect(query.observed).toEqual(
      expect.arrayContaining([
        // the count of the child's records, then its restart_limit.used
        expect.objectContaining({ labels: { step: 'query-state', field: 'json' }, value: 1 }),
        expect.objectContaining({ labels: { step: 'query-state', field: 'json' }, value: 7 }),
      ]),
    );
    // 2: Rust's panic message in the journal (TaskExit::* is never printed).
    expect(step(run, 'check-exit-reason').result?.output).toMatch(
      /thread 'tokio-runtime-worker' panicked at src\/tasks\/ledger_sync\.rs:\d+:\d+:\ninjected panic after 200ms/,
    );
    // 3: exhausted, and no attempt runs: nothing quarantined it.
    const budget = step(run, 'budget-exhausted');
    expect(budget.when).toMatchObject({ holds: true });
    expect(budget.observed).toEqual(
      expect.arrayContaining([
        expect.objectContaining({
          labels: expect.objectContaining({ field: expect.stringMatching(/\.status == null$/) }),
          value: null,
        }),
      ]),
    );
    // 4: command.remove_child, confirmed, every required field from the run; accepted and completed.
    const remove = step(run, 'remove-child');
    expect(remove.action).toMatchObject({
      kind: 'ipc',
      spec: { method: 'command.remove_child', child: 'ledger_sync', confirmed: true, target_id: env.d.targetId },
    });
    expect(remove.result).toMatchObject({
      status: 'succeeded',
      body: {
        ok: true,
        result: {
          type: 'command_result',
          result: {
            command_id: expect.stringMatching(new RegExp(`^P1-002-.*-remove-child-ledger_sync$`)),
            accepted: true,
            status: 'completed',
            state_delta: { outcome: { child_id: 'ledger_sync', operation_after: 'removed' } },
          },
        },
      },
    });
    // 5: no record left for the child, every other active child running.
    expect(step(run, 'verify-slot').expect).toMatchObject({ holds: true });
    expect(await record('ledger_sync')).toBeUndefined();
    expect(await record('payment_loop')).toMatchObject({ operation: 'active', status: 'running' });
    expect(run.escalations).toEqual([]);
    expect(env.webhookPosts(run.id)).toEqual([]);

    // The alert resolves (the child is gone) and the fault made exactly one run.
    await waitFor(
      'ChildCrashLoop for ledger_sync to resolve',
      async () => ((await env.firing('ChildCrashLoop')) === 0 ? true : undefined),
      60_000,
      500,
    );
    const runs = await runsFor('ledger_sync', faultAt);
    expect(runs).toHaveLength(1);
    recordTimeline({
      procedure: 'P1-002',
      path: 'heal-remove',
      fault: 'child crash loop (panic after each start)',
      faultAt,
      run,
      runsForFault: runs.length,
    });
  }, 300_000);

  it('escalation: the removed child does not stop, its slot lingers: file a bug with the exit reason and journal snippet', async () => {
    const faultAt = Date.now();
    await env.fault('crash-loop', { child: 'report_export', panic_after_ms: 1000 });
    // Mid-loop (4 restarts used, the limit not reached), the task stops looking at its cancellation token.
    await waitFor(
      'report_export to use 4 restarts',
      async () => ((await record('report_export'))?.restart_limit.used === 4 ? true : undefined),
      60_000,
      100,
    );
    await env.fault('ignore-cancel', { child: 'report_export' });
    const first = await runFor('report_export', faultAt);
    const run = await env.waitState(first.id, ['escalated'], 300_000);
    note(timingLine('P1-002', 'escalation (file a bug)', faultAt, run) + ' [slot lingers after remove]');

    expect(
      run.steps.map((s) => [s.name, s.status]),
      stepSummary(run),
    ).toEqual([
      ['query-state', 'passed'],
      ['check-exit-reason', 'passed'],
      ['budget-exhausted', 'skipped'],
      ['remove-child', 'passed'],
      ['verify-slot', 'failed'],
    ]);
    expect(step(run, 'remove-child').result).toMatchObject({
      body: {
        result: { result: { accepted: true, state_delta: { outcome: { operation_after: 'removed', status: 'cancelling' } } } },
      },
    });
    expect(step(run, 'verify-slot').reason).toMatch(
      /1 result\.state\.child_runtime_records elements where child_id=report_export/,
    );
    expect(await record('report_export')).toMatchObject({ operation: 'removed', status: 'cancelling' });

    expect(run.escalations.map((e) => [e.when, e.to, e.status])).toEqual([
      ['failed', 'alertmanager', 'sent'],
      ['failed', 'webhook', 'sent'],
    ]);
    const [alert, ...more] = await waitFor(
      'the RemediationEscalated alert at Alertmanager',
      async () => {
        const a = await env.escalationAlerts(run.id);
        return a.length > 0 ? a : undefined;
      },
      30_000,
    );
    expect(more).toEqual([]);
    expect(alert!.labels).toMatchObject({
      alertname: 'RemediationEscalated',
      procedure: 'P1-002',
      reason: 'failed',
      action: 'file-a-bug',
    });
    expect(alert!.annotations.summary).toMatch(/file a bug with the exit reason and journal snippet/);
    // The exit reason and the journal snippet: Rust's panic message of this child.
    expect(alert!.annotations.step_check_exit_reason).toMatch(/panicked at src\/tasks\/report_export\.rs:\d+:\d+:/);
    const posts = env.webhookPosts(run.id);
    expect(posts).toHaveLength(1);
    expect(posts[0]).toMatchObject({ procedure: 'P1-002', outcome: 'failed' });
    expect(posts[0]!.message).toMatch(/file a bug with the exit reason and journal snippet/);
    expect(JSON.stringify(posts[0]!.attachments['step:check-exit-reason'])).toMatch(
      /report_export\.rs.*\\ninjected panic after 1000ms/,
    );

    recordTimeline({
      procedure: 'P1-002',
      path: 'escalate-file-a-bug',
      fault: 'child crash loop, then it ignores cancellation',
      faultAt,
      run,
      runsForFault: (await runsFor('report_export', faultAt)).length,
    });
  }, 420_000);
});
