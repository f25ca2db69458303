/**
 * P1-001 Supervisor Process Crash, hands-off, end to end: simulator → real Prometheus (SupervisorDown, fast copy
 * of the shipped alert rule) → real Alertmanager → remediator (shipped rules/P1-001-supervisor-crash.yaml,
 * only its vars set) → steps verified against Prometheus → escalation to Alertmanager and the webhook.
 *
 * Scenarios on one supervisor, in order (3 runs: the rule's budget of 3 an hour per target):
 *   1. panic → heals: every step runs, the core dump is collected.
 *   2. clean shutdown → heals: the core-dump branch is recorded as skipped, with its reason.
 *   3. restart fails twice → escalates to L2 with the core dump and logs (and only then).
 *
 * The fast alert copy keeps `for: 5s` (production: 1m), not 0s: `supervisor_up == 0` is true while a clean
 * shutdown is still in progress, and a SupervisorDown that fires then finds the process still running (pgrep exit
 * 0), so the procedure rightly does not restart it and its verification fails. Production's `for: 1m` leaves a
 * clean shutdown time to finish; so does 5s here, even on a loaded CI machine.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunRecord } from '../../src/engine/record.js';
import { waitFor } from '../helpers/wait.js';
import { startP1Env, step, stepSummary, timingLine, type P1Env } from './p1-harness.js';

const notes: string[] = [];
const note = (line: string) => {
  notes.push(line);
  process.stdout.write(`${line}\n`);
};

describe('e2e P1-001 Supervisor Process Crash (real Prometheus + Alertmanager + simulator, nobody acting)', () => {
  let env: P1Env;

  beforeAll(async () => {
    env = await startP1Env({
      procedure: 'P1-001',
      tag: '1001',
      fastRules: { for: '5s' },
      vars: (sup, names) => ({
        supervisor_process: names.processName,
        // The simulator's journal stands in for `journalctl -u supervisor -n 50`.
        log_command: JSON.stringify(['tail', '-n', '50', sup.journal]),
        core_dump_dir: sup.dumpDir,
        restart_command: JSON.stringify(sup.restartCommand),
      }),
    });
  });

  afterAll(async () => {
    await env?.stop();
    if (notes.length > 0) process.stdout.write(`\nP1-001 closing note:\n${notes.map((n) => `  ${n}`).join('\n')}\n`);
  });

  /** Waits until the previous incident is over: supervisor up and connected, SupervisorDown no longer firing. */
  async function settled(): Promise<void> {
    await env.waitHealthy();
    await waitFor(
      'SupervisorDown to stop firing',
      async () => ((await env.query('ALERTS{alertname="SupervisorDown"}')) === undefined ? true : undefined),
      20_000,
      250,
    );
  }

  async function runAfter(faultAt: number): Promise<RunRecord> {
    return env.waitRun('a P1-001 run for the injected fault', (r) => Date.parse(r.alert.startsAt) >= faultAt - 1000, 30_000);
  }

  function expectNoEscalation(run: RunRecord) {
    expect(run.escalations).toEqual([]);
    expect(env.webhookPosts(run.id)).toEqual([]);
  }

  function expectPromObserved(run: RunRecord, name: string, faultAt: number, value: number) {
    const s = step(run, name);
    expect(s.observed.length, `${name} observed values`).toBeGreaterThan(0);
    for (const o of s.observed) {
      expect(o.value).toBe(value);
      expect(o.labels).toMatchObject({ instance: env.instance, job: 'supervisor' });
      expect(Date.parse(o.at)).toBeGreaterThanOrEqual(faultAt - 1000);
      expect(Date.parse(o.at)).toBeLessThanOrEqual(Date.parse(s.endedAt!) + 1000);
    }
    return s;
  }

  it('panic: heals hands-off; every step recorded with its output and the Prometheus-confirmed values', async () => {
    const faultAt = Date.now();
    await fetch(`${env.sup.adminUrl}/faults/panic?message=e2e%20P1-001`, { method: 'POST' });
    const first = await runAfter(faultAt);
    const run = await env.waitState(first.id, ['succeeded'], 90_000);
    note(timingLine('P1-001', 'verified recovery', faultAt, run) + ' [panic]');

    expect(run.alert.labels).toMatchObject({
      alertname: 'SupervisorDown',
      instance: env.instance,
      job: 'supervisor',
      severity: 'page',
    });
    expect(
      run.steps.map((s) => [s.name, s.status]),
      stepSummary(run),
    ).toEqual([
      ['check-process', 'passed'],
      ['check-logs', 'passed'],
      ['collect-core-dump', 'passed'],
      ['restart-supervisor', 'passed'],
      ['verify-children', 'passed'],
    ]);
    // 1: pgrep -x found no supervisor (exit 1: not running).
    expect(step(run, 'check-process').action).toMatchObject({
      kind: 'exec',
      spec: { command: ['pgrep', '-x', env.names.processName] },
    });
    expect(step(run, 'check-process').result).toMatchObject({ exitCode: 1 });
    // 2: the journal ends with Panic.
    expect(step(run, 'check-logs').result?.output).toMatch(/supervisor terminated: Panic\s*$/);
    // 3: the core dump the panic wrote.
    expect(step(run, 'collect-core-dump').result?.output).toMatch(/core\.supervisor\.\d+ \d+ bytes/);
    // 4: restarted with the restart command; Prometheus confirmed health.status == "ready".
    const restart = expectPromObserved(run, 'restart-supervisor', faultAt, 1);
    expect(restart.action?.spec).toMatchObject({ command: env.sup.restartCommand });
    expect(restart.result).toMatchObject({ status: 'succeeded', exitCode: 0 });
    expect(restart.observed[0]!.labels).toMatchObject({ status: 'ready' });
    expect(restart.attempts).toBe(1);
    // 5: dashboard_link == "connected", confirmed by Prometheus.
    expectPromObserved(run, 'verify-children', faultAt, 1);
    for (const s of run.steps) {
      expect(s.startedAt && s.endedAt && s.durationMs !== undefined, `${s.name} timed`).toBeTruthy();
      expect(s.estimate).toBeGreaterThan(0);
    }
    expect(run.sla).toMatchObject({ estimateMs: 12 * 60_000, slaMs: 15 * 60_000, withinEstimate: true, withinSla: true });
    expectNoEscalation(run);
    // The supervisor really runs again: a new process, found by pgrep's name, ready.
    const health = (await (await fetch(`${env.sup.adminUrl}/health`)).json()) as { pid: number; status: string };
    expect(health.status).toBe('ready');
    expect(health.pid).not.toBe(env.sup.pid);
  }, 120_000);

  it('clean shutdown: heals; the "if unexpected crash" branch is recorded as skipped, with the reason', async () => {
    await settled();
    const faultAt = Date.now();
    await fetch(`${env.sup.adminUrl}/faults/shutdown`, { method: 'POST' });
    const first = await runAfter(faultAt);
    const run = await env.waitState(first.id, ['succeeded'], 90_000);
    note(timingLine('P1-001', 'verified recovery', faultAt, run) + ' [clean shutdown]');

    expect(
      run.steps.map((s) => [s.name, s.status]),
      stepSummary(run),
    ).toEqual([
      ['check-process', 'passed'],
      ['check-logs', 'passed'],
      ['collect-core-dump', 'skipped'],
      ['restart-supervisor', 'passed'],
      ['verify-children', 'passed'],
    ]);
    expect(step(run, 'check-logs').result?.output).toMatch(/ShutdownPhase::Completed\s*$/);
    const skipped = step(run, 'collect-core-dump');
    expect(skipped.reason).toMatch(
      /^condition not met: step check-logs: output =~ \/Panic\\s\*\$\/ \(step check-logs: output does not match/,
    );
    expect(skipped.action).toBeUndefined();
    expect(skipped.result).toBeUndefined();
    expectPromObserved(run, 'restart-supervisor', faultAt, 1);
    expectPromObserved(run, 'verify-children', faultAt, 1);
    expectNoEscalation(run);
  }, 120_000);

  it('restart fails twice: escalates to L2 engineering with the core dump and logs, at Alertmanager and the webhook', async () => {
    await settled();
    const marker = (await (await fetch(`${env.sup.adminUrl}/faults/restart-fails?count=2`, { method: 'POST' })).json()) as {
      count: number;
    };
    expect(marker.count).toBe(2);
    const faultAt = Date.now();
    await fetch(`${env.sup.adminUrl}/faults/panic?message=e2e%20P1-001%20restart%20fails`, { method: 'POST' });
    const first = await runAfter(faultAt);
    const run = await env.waitState(first.id, ['escalated'], 90_000);
    note(timingLine('P1-001', 'escalation', faultAt, run) + ' [restart fails twice]');

    expect(
      run.steps.map((s) => [s.name, s.status]),
      stepSummary(run),
    ).toEqual([
      ['check-process', 'passed'],
      ['check-logs', 'passed'],
      ['collect-core-dump', 'passed'],
      ['restart-supervisor', 'failed'],
    ]);
    const restart = step(run, 'restart-supervisor');
    expect(restart.attempts).toBe(2);
    expect(restart.reason).toMatch(/after 2 attempts/);
    expect(restart.result).toMatchObject({ status: 'failed', exitCode: 1 });
    expect(restart.result?.output).toMatch(/StartupFailed/);
    expect(run.reason).toMatch(/^step restart-supervisor failed/);

    // Exactly the "restart fails twice" escalation, to both destinations; not the budget one.
    expect(run.escalations.map((e) => [e.when, e.to, e.status])).toEqual([
      ['failed', 'alertmanager', 'sent'],
      ['failed', 'webhook', 'sent'],
    ]);
    expect(run.escalations[0]!.message).toMatch(
      /did not come back after two restarts: escalate to L2 engineering with the core dump and logs/,
    );

    // At the real Alertmanager, with the core dump and the logs attached.
    const [alert, ...more] = await waitFor(
      'the RemediationEscalated alert at Alertmanager',
      async () => {
        const a = await env.escalationAlerts(run.id);
        return a.length > 0 ? a : undefined;
      },
      15_000,
    );
    expect(more).toEqual([]);
    expect(alert!.labels).toMatchObject({
      alertname: 'RemediationEscalated',
      procedure: 'P1-001',
      target: env.instance,
      reason: 'failed',
      team: 'l2-engineering',
      severity: 'page',
    });
    expect(alert!.annotations.summary).toMatch(/L2 engineering with the core dump and logs/);
    expect(Object.keys(alert!.annotations)).toEqual(
      expect.arrayContaining(['step_collect_core_dump', 'step_check_logs', 'outputs', 'metrics', 'tried', 'run_id']),
    );
    expect(alert!.annotations.step_collect_core_dump).toMatch(/core\.supervisor\.\d+/);
    expect(alert!.annotations.step_check_logs).toMatch(/supervisor terminated: Panic/);
    expect(alert!.annotations.outputs).toMatch(/StartupFailed/);

    // And at the webhook, with the same attachments.
    const posts = env.webhookPosts(run.id);
    expect(posts).toHaveLength(1);
    expect(posts[0]).toMatchObject({ procedure: 'P1-001', outcome: 'failed' });
    expect(Object.keys(posts[0]!.attachments).sort()).toEqual([
      'metrics',
      'outputs',
      'step:check-logs',
      'step:collect-core-dump',
    ]);
    expect(JSON.stringify(posts[0]!.attachments['step:collect-core-dump'])).toMatch(/core\.supervisor\.\d+/);
    expect(JSON.stringify(posts[0]!.attachments['step:check-logs'])).toMatch(/Panic/);

    // "Not otherwise": the two healed runs escalated nothing, anywhere.
    const all = await env.runs();
    expect(all.map((r) => r.state).sort()).toEqual(['escalated', 'succeeded', 'succeeded']);
    for (const r of all.filter((x) => x.id !== run.id)) {
      expect(r.escalations).toEqual([]);
      expect(await env.escalationAlerts(r.id)).toEqual([]);
      expect(env.webhookPosts(r.id)).toEqual([]);
    }
  }, 120_000);
});
