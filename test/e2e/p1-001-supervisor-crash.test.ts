/**
 * P1-001 Supervisor Process Crash, hands-off, end to end on the real surface: the simulated rust-tokio-supervisor
 * host under a service-manager stand-in → `remediator exporter` → real Prometheus (SupervisorDown, fast copy of the
 * shipped alert rule with `for: 5s`) → real Alertmanager → remediator (shipped rules/P1-001-supervisor-crash.yaml,
 * only its vars set) → steps verified through the supervisor's IPC socket → escalation to Alertmanager and the
 * webhook. Timelines go to test-artifacts/p1/P1-001-<path>.json.
 *
 * Scenarios on one deployment, in order (3 runs: the rule's budget of 3 an hour per target):
 *   1. panic (exit 101) → heals: logs show `panicked at`, no core of this crash (an older core and a core
 *      directory planted beside it are not taken), restart, IPC state ok, children running. Exactly one run.
 *   2. SIGKILL → the socket file stays; the stale socket is removed (nobody listens), then the restart heals.
 *   3. panic, and the config no longer starts (a bad deploy) → the restart fails twice → L2 escalation with the
 *      panic log, at Alertmanager and the webhook.
 */
import { existsSync, mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunRecord } from '../../src/engine/record.js';
import { waitFor } from '../helpers/wait.js';
import { recordTimeline, startP1Env, step, stepSummary, timingLine, type P1Env } from './p1-harness.js';

const notes: string[] = [];
const note = (line: string) => {
  notes.push(line);
  process.stdout.write(`${line}\n`);
};

describe('e2e P1-001 Supervisor Process Crash (real Prometheus + Alertmanager + sim + exporter, nobody acting)', () => {
  let env: P1Env;

  beforeAll(async () => {
    env = await startP1Env({
      procedure: 'P1-001',
      tag: '1001',
      supervisor: { config: { children: [{ name: 'payment_loop' }, { name: 'ledger_sync', heartbeat_ms: 500 }] } },
    });
  }, 180_000);

  afterAll(async () => {
    await env?.stop();
    if (notes.length > 0) process.stdout.write(`\nP1-001 closing note:\n${notes.map((n) => `  ${n}`).join('\n')}\n`);
  });

  /** Waits until the previous incident is over: everything healthy, no alert pending or firing. */
  const settled = () => env.waitHealthy(60_000);

  const runAfter = (faultAt: number) =>
    env.waitRun('a P1-001 run for the injected fault', (r) => Date.parse(r.alert.startsAt) >= faultAt - 1000, 60_000);

  /** The fault's runs: every P1-001 run whose alert started after it. */
  const runsSince = async (faultAt: number) => (await env.runs()).filter((r) => Date.parse(r.alert.startsAt) >= faultAt - 1000);

  /**
   * After the run: the alert resolved, Prometheus evaluated well past a restart's gap and Alertmanager's group
   * interval, and still this fault made exactly one run (the procedure's own restart did not re-fire it).
   */
  async function exactlyOneRun(faultAt: number): Promise<number> {
    await settled();
    const resolvedAt = Date.now();
    await waitFor(
      'Prometheus to evaluate the rules well after the alert resolved',
      async () => {
        const res = await fetch(`${env.stack.prometheusUrl}/api/v1/rules`);
        const body = (await res.json()) as { data: { groups: { lastEvaluation: string }[] } };
        return body.data.groups.every((g) => Date.parse(g.lastEvaluation) > resolvedAt + 5000) ? true : undefined;
      },
      30_000,
      500,
    );
    const runs = await runsSince(faultAt);
    expect(
      runs.map((r) => [r.state, r.alert.startsAt]),
      'one fault, one remediation',
    ).toHaveLength(1);
    return runs.length;
  }

  function expectIpcObserved(run: RunRecord, name: string) {
    const s = step(run, name);
    expect(s.expect?.holds, `${name}: ${s.expect?.reason}`).toBe(true);
    expect(s.observed).toEqual(
      expect.arrayContaining([expect.objectContaining({ labels: { method: 'state', field: 'ok' }, value: 'true' })]),
    );
    return s;
  }

  it('panic (exit 101): heals hands-off; panicked-at log, no core of this crash, restart, IPC state ok; exactly one run', async () => {
    // An older core (before this supervisor started) and a directory named like a core: neither is this crash's.
    const old = join(env.d.coreDumpDir, 'core.payments-worker.1234');
    writeFileSync(old, 'old core');
    utimesSync(old, new Date(Date.now() - 3_600_000), new Date(Date.now() - 3_600_000));
    mkdirSync(join(env.d.coreDumpDir, 'core.d'), { recursive: true });
    const crashedPid = env.supervisorPid();
    expect(crashedPid).toBeDefined();

    const faultAt = Date.now();
    await env.fault('panic', { message: 'e2e P1-001: invariant violated' });
    const first = await runAfter(faultAt);
    const run = await env.waitState(first.id, ['succeeded'], 180_000);
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
      ['clear-stale-socket', 'passed'],
      ['restart-supervisor', 'passed'],
      ['verify-children', 'passed'],
    ]);
    // 1: pgrep -x found no process of that name (exit 1: not running).
    expect(step(run, 'check-process').action).toMatchObject({
      kind: 'exec',
      spec: { command: ['pgrep', '-x', env.d.processName] },
    });
    expect(step(run, 'check-process').result).toMatchObject({ exitCode: 1 });
    // 2: the log ends with Rust's panic message (not "Panic").
    const logs = step(run, 'check-logs').result?.output ?? '';
    expect(logs).toMatch(/thread 'main' panicked at src\/main\.rs:\d+:\d+:\ne2e P1-001: invariant violated\n/);
    // 3: the core search ran and found nothing of this crash: a panic unwinds; the old core and the directory are left out.
    const core = step(run, 'collect-core-dump');
    expect(core.result).toMatchObject({ status: 'succeeded', exitCode: 0 });
    expect(core.result?.output ?? '').toBe('');
    // 4: a panic removes its socket (unwinding runs the guard): nothing stale to remove.
    expect(step(run, 'clear-stale-socket').result).toMatchObject({ status: 'succeeded', detail: { state: 'absent' } });
    // 5: restarted through the service manager; IPC state answered ok (the control loop turns).
    const restart = expectIpcObserved(run, 'restart-supervisor');
    expect(restart.action?.spec).toMatchObject({ command: env.d.restartCommand });
    expect(restart.result).toMatchObject({ status: 'succeeded', exitCode: 0 });
    expect(restart.attempts).toBe(1);
    // 6: state ok and no active child without an attempt.
    const verify = expectIpcObserved(run, 'verify-children');
    expect(verify.observed.map((o) => o.labels.field)).toContain(
      'result.state.child_runtime_records[operation=active,status=null] none',
    );
    expect(run.sla).toMatchObject({ estimateMs: 12 * 60_000, slaMs: 15 * 60_000, withinEstimate: true, withinSla: true });
    expect(run.escalations).toEqual([]);
    expect(env.webhookPosts(run.id)).toEqual([]);
    // The supervisor really runs again: a new process of that name.
    expect(env.supervisorPid()).toBeDefined();
    expect(env.supervisorPid()).not.toBe(crashedPid);

    const runsForFault = await exactlyOneRun(faultAt);
    recordTimeline({ procedure: 'P1-001', path: 'heal-panic', fault: 'panic (exit 101)', faultAt, run, runsForFault });
  }, 300_000);

  it('SIGKILL: the socket file stays behind; it is removed as stale (nobody listens), then the restart heals', async () => {
    await settled();
    const faultAt = Date.now();
    env.killSupervisor('SIGKILL');
    const first = await runAfter(faultAt);
    const run = await env.waitState(first.id, ['succeeded'], 180_000);
    note(timingLine('P1-001', 'verified recovery', faultAt, run) + ' [SIGKILL, stale socket]');

    expect(
      run.steps.map((s) => [s.name, s.status]),
      stepSummary(run),
    ).toEqual([
      ['check-process', 'passed'],
      // A SIGKILL writes nothing to the log: how it ended cannot be told from it (systemd would add code=killed).
      ['check-logs', 'failed'],
      ['collect-core-dump', 'skipped'],
      ['clear-stale-socket', 'passed'],
      ['restart-supervisor', 'passed'],
      ['verify-children', 'passed'],
    ]);
    expect(step(run, 'clear-stale-socket').result).toMatchObject({ status: 'succeeded', detail: { state: 'removed' } });
    expect(step(run, 'clear-stale-socket').result?.output).toMatch(/^removed stale socket .*connection refused/);
    expectIpcObserved(run, 'restart-supervisor');
    expect(step(run, 'restart-supervisor').attempts).toBe(1);
    expectIpcObserved(run, 'verify-children');
    expect(run.escalations).toEqual([]);

    const runsForFault = await exactlyOneRun(faultAt);
    recordTimeline({
      procedure: 'P1-001',
      path: 'heal-sigkill-stale-socket',
      fault: 'SIGKILL (stale socket left)',
      faultAt,
      run,
      runsForFault,
    });
  }, 300_000);

  it('restart fails twice (a panic, then a config that no longer starts): L2 escalation with the panic log', async () => {
    await settled();
    const good = readFileSync(env.d.configFile, 'utf8');
    const faultAt = Date.now();
    await env.fault('panic', { message: 'e2e P1-001: restart fails' });
    // The bad deploy: the config the service manager starts with names a relative ipc.path, which the real program refuses.
    writeFileSync(env.d.configFile, good.replace(`path: ${env.d.ipcPath}`, 'path: relative/supervisor.sock'));
    try {
      const first = await runAfter(faultAt);
      const run = await env.waitState(first.id, ['escalated'], 240_000);
      note(timingLine('P1-001', 'escalation', faultAt, run) + ' [restart fails twice]');

      expect(
        run.steps.map((s) => [s.name, s.status]),
        stepSummary(run),
      ).toEqual([
        ['check-process', 'passed'],
        ['check-logs', 'passed'],
        ['collect-core-dump', 'passed'],
        ['clear-stale-socket', 'passed'],
        ['restart-supervisor', 'failed'],
      ]);
      const restart = step(run, 'restart-supervisor');
      expect(restart.attempts).toBe(2);
      expect(restart.result).toMatchObject({ status: 'failed', exitCode: 1 });
      expect(restart.result?.output).toMatch(/Error: FatalConfig .*ipc\.path/);
      expect(run.reason).toMatch(/^step restart-supervisor failed/);
      expect(run.escalations.map((e) => [e.when, e.to, e.status])).toEqual([
        ['failed', 'alertmanager', 'sent'],
        ['failed', 'webhook', 'sent'],
      ]);
      expect(run.escalations[0]!.message).toMatch(/did not come back after two restarts: escalate to L2 engineering/);

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
        procedure: 'P1-001',
        target: env.instance,
        reason: 'failed',
        team: 'l2-engineering',
      });
      expect(alert!.annotations.step_check_logs).toMatch(/thread 'main' panicked at src\/main\.rs/);
      expect(alert!.annotations.step_check_logs).toMatch(/e2e P1-001: restart fails/);
      expect(alert!.annotations.step_restart_supervisor).toMatch(/FatalConfig/);
      const posts = env.webhookPosts(run.id);
      expect(posts).toHaveLength(1);
      expect(posts[0]).toMatchObject({ procedure: 'P1-001', outcome: 'failed' });
      expect(JSON.stringify(posts[0]!.attachments['step:check-logs'])).toMatch(/panicked at/);

      recordTimeline({
        procedure: 'P1-001',
        path: 'escalate-restart-fails-twice',
        fault: 'panic + config that does not start',
        faultAt,
        run,
        runsForFault: (await runsSince(faultAt)).length,
      });
    } finally {
      writeFileSync(env.d.configFile, good);
    }
    // The two healed runs escalated nothing.
    const all = await env.runs();
    expect(all.map((r) => r.state).sort()).toEqual(['escalated', 'succeeded', 'succeeded']);
    expect(existsSync(env.d.ipcPath)).toBe(false);
  }, 300_000);
});
