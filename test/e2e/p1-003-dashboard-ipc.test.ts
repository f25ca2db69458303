/**
 * P1-003 Dashboard IPC Disconnected, hands-off, end to end: simulator → real Prometheus
 * (DashboardIPCDisconnected, fast copy of the shipped alert rule) → real Alertmanager → remediator (shipped
 * rules/P1-003-dashboard-ipc.yaml, only its vars set) → steps verified against Prometheus → escalations.
 *
 * Scenarios on one supervisor, in order (3 runs: the rule's budget of 3 an hour per target):
 *   1. link dropped, relay wedged → restarting the relay heals; "if still disconnected" is skipped, with the reason.
 *   2. sticky drop (only a supervisor restart clears it) and that restart fails → the still-disconnected
 *      escalation fires, the socket-path contention one does not.
 *   3. sticky drop and a rogue process holding the socket path → the restarted supervisor fails with
 *      field_path="dashboard.path" → the contention escalation fires (with the socket-path hint), the
 *      still-disconnected one does not.
 *
 * The fast alert copy keeps `for: 3s` (not 0s): a supervisor we start again between scenarios shows a
 * disconnected link for a moment while its relay boots, which must not page (it would not in production either,
 * with `for: 30s`).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunRecord } from '../../src/engine/record.js';
import { waitFor } from '../helpers/wait.js';
import { squatSocket, startP1Env, step, stepSummary, timingLine, type P1Env, type SocketSquatter } from './p1-harness-legacy.js';

const notes: string[] = [];
const note = (line: string) => {
  notes.push(line);
  process.stdout.write(`${line}\n`);
};

const CONTENTION = /field_path="dashboard\.path"/;

describe('e2e P1-003 Dashboard IPC Disconnected (real Prometheus + Alertmanager + simulator, nobody acting)', () => {
  let env: P1Env;
  let squatter: SocketSquatter | undefined;

  beforeAll(async () => {
    env = await startP1Env({
      procedure: 'P1-003',
      tag: '1003',
      fastRules: { for: '3s' },
      vars: (sup, names) => ({
        socket_path: sup.socket,
        relay_process: names.relayName,
        restart_command: JSON.stringify(sup.restartCommand),
      }),
    });
  });

  afterAll(async () => {
    await squatter?.close();
    await env?.stop();
    if (notes.length > 0) process.stdout.write(`\nP1-003 closing note:\n${notes.map((n) => `  ${n}`).join('\n')}\n`);
  });

  async function settled(): Promise<void> {
    await env.waitHealthy();
    await waitFor(
      'DashboardIPCDisconnected to stop firing',
      async () => ((await env.query('ALERTS{alertname="DashboardIPCDisconnected"}')) === undefined ? true : undefined),
      20_000,
      250,
    );
  }

  async function runAfter(faultAt: number): Promise<RunRecord> {
    return env.waitRun('a P1-003 run for the injected fault', (r) => Date.parse(r.alert.startsAt) >= faultAt - 1000, 30_000);
  }

  async function state(): Promise<{ relay: { pid: number | null; starts: number }; dashboard: { refused_connections: number } }> {
    return (await (await fetch(`${env.sup.adminUrl}/state`)).json()) as never;
  }

  function expectFirstSteps(run: RunRecord) {
    const socket = step(run, 'check-socket');
    expect(socket.status).toBe('passed');
    expect(socket.action?.spec).toMatchObject({ command: ['stat', '-c', '%F %A %U:%G %n', env.sup.socket] });
    expect(socket.result?.output).toMatch(/^socket srw-rw----/);
    const relay = step(run, 'check-relay');
    expect(relay.status).toBe('passed');
    expect(relay.action?.spec).toMatchObject({ command: ['pgrep', '-x', env.names.relayName] });
  }

  it('link dropped: restarting the relay heals hands-off; the supervisor-restart branch is skipped, with the reason', async () => {
    const before = await state();
    const faultAt = Date.now();
    await fetch(`${env.sup.adminUrl}/faults/ipc/drop`, { method: 'POST' });
    const first = await runAfter(faultAt);
    const run = await env.waitState(first.id, ['succeeded'], 60_000);
    note(timingLine('P1-003', 'verified recovery', faultAt, run) + ' [relay restart]');

    expect(run.alert.labels).toMatchObject({ alertname: 'DashboardIPCDisconnected', instance: env.instance, severity: 'page' });
    expect(
      run.steps.map((s) => [s.name, s.status]),
      stepSummary(run),
    ).toEqual([
      ['check-socket', 'passed'],
      ['check-relay', 'passed'],
      ['restart-relay', 'passed'],
      ['restart-supervisor', 'skipped'],
    ]);
    expectFirstSteps(run);
    expect(step(run, 'check-relay').result?.output?.trim()).toBe(String(before.relay.pid));
    const restart = step(run, 'restart-relay');
    expect(restart.action).toMatchObject({ kind: 'signal', spec: { process: env.names.relayName, signal: 'SIGTERM' } });
    expect(restart.result?.status).toBe('succeeded');
    // Prometheus confirmed dashboard_link == "connected" within 10 s, with the series and time it saw.
    expect(restart.observed.length).toBeGreaterThan(0);
    for (const o of restart.observed) {
      expect(o).toMatchObject({ value: 1, labels: { instance: env.instance, job: 'supervisor' } });
      expect(Date.parse(o.at)).toBeGreaterThanOrEqual(faultAt);
    }
    expect(restart.expect).toMatchObject({ holds: true, unknown: false });
    // The branch not taken: recorded as skipped, with why (its condition; or, if Alertmanager's "resolved"
    // arrived first, that the alert resolved: either way nothing was run).
    const skipped = step(run, 'restart-supervisor');
    expect(skipped.reason).toMatch(
      /^(condition not met: step restart-relay: status one of failed, unknown \(step restart-relay: status passed|alert resolved at )/,
    );
    expect(skipped.result).toBeUndefined();
    note(`P1-003: skipped restart-supervisor: ${skipped.reason}`);
    // The supervisor relaunched its relay (a new process); the supervisor itself was not restarted.
    const after = await state();
    expect(after.relay.pid).not.toBe(before.relay.pid);
    expect(after.relay.starts).toBe(before.relay.starts + 1);
    expect((await (await fetch(`${env.sup.adminUrl}/health`)).json()) as { pid: number }).toMatchObject({ pid: env.sup.pid });
    expect(run.escalations).toEqual([]);
    expect(env.webhookPosts(run.id)).toEqual([]);
    expect(await env.escalationAlerts(run.id)).toEqual([]);
  }, 120_000);

  it('still disconnected (sticky drop, the supervisor restart fails): the still-disconnected escalation fires, the contention one does not', async () => {
    await settled();
    await fetch(`${env.sup.adminUrl}/faults/restart-fails?count=1`, { method: 'POST' });
    const faultAt = Date.now();
    await fetch(`${env.sup.adminUrl}/faults/ipc/drop?sticky=true`, { method: 'POST' });
    const first = await runAfter(faultAt);
    const run = await env.waitState(first.id, ['escalated'], 90_000);
    note(timingLine('P1-003', 'escalation', faultAt, run) + ' [still disconnected]');

    expect(
      run.steps.map((s) => [s.name, s.status]),
      stepSummary(run),
    ).toEqual([
      ['check-socket', 'passed'],
      ['check-relay', 'passed'],
      ['restart-relay', 'failed'],
      ['restart-supervisor', 'failed'],
    ]);
    expectFirstSteps(run);
    const relay = step(run, 'restart-relay');
    expect(relay.reason).toMatch(/within 10s/);
    expect(relay.observed.every((o) => o.value === 0)).toBe(true);
    const sup = step(run, 'restart-supervisor');
    expect(sup.when).toMatchObject({ holds: true });
    expect(sup.result).toMatchObject({ status: 'failed', exitCode: 1 });
    expect(sup.result?.output).toMatch(/StartupFailed/);
    expect(sup.result?.output).not.toMatch(CONTENTION);

    expect(run.escalations.map((e) => [e.when, e.to, e.status])).toEqual([
      ['failed', 'alertmanager', 'sent'],
      ['failed', 'webhook', 'sent'],
    ]);
    expect(run.escalations[0]!.message).toMatch(/still disconnected after restarting the relay and the supervisor/);
    const alerts = await waitFor(
      'the RemediationEscalated alert at Alertmanager',
      async () => {
        const a = await env.escalationAlerts(run.id);
        return a.length > 0 ? a : undefined;
      },
      15_000,
    );
    expect(alerts).toHaveLength(1);
    expect(alerts[0]!.labels).toMatchObject({ procedure: 'P1-003', reason: 'failed', target: env.instance });
    expect(alerts[0]!.labels.cause).toBeUndefined();
    expect(alerts[0]!.annotations.summary).toMatch(/still disconnected/);
    expect(alerts[0]!.annotations.outputs).toMatch(/StartupFailed/);
    expect(alerts[0]!.annotations.metrics).toMatch(/restart-relay/);
    const posts = env.webhookPosts(run.id);
    expect(posts).toHaveLength(1);
    expect(posts[0]!.message).not.toMatch(/contention/);
    expect(Object.keys(posts[0]!.attachments).sort()).toEqual(['metrics', 'outputs']);
  }, 120_000);

  it('socket-path contention (a rogue process holds the socket path): the contention escalation fires with the socket-path hint, the still-disconnected one does not', async () => {
    // The last scenario left the supervisor down (its restart failed): start it again, by hand, before the fault.
    await env.restartSupervisor();
    await settled();
    squatter = squatSocket(env.sup.socket);
    const faultAt = Date.now();
    await fetch(`${env.sup.adminUrl}/faults/ipc/drop?sticky=true`, { method: 'POST' });
    const first = await runAfter(faultAt);
    const run = await env.waitState(first.id, ['escalated'], 90_000);
    note(timingLine('P1-003', 'escalation', faultAt, run) + ' [socket-path contention]');

    // The rogue took the path when the old supervisor let go of it, and the new one found it live.
    expect(squatter.holding()).toBe(true);
    expect(squatter.connections).toBeGreaterThanOrEqual(1);

    expect(
      run.steps.map((s) => [s.name, s.status]),
      stepSummary(run),
    ).toEqual([
      ['check-socket', 'passed'],
      ['check-relay', 'passed'],
      ['restart-relay', 'failed'],
      ['restart-supervisor', 'failed'],
    ]);
    const sup = step(run, 'restart-supervisor');
    expect(sup.result).toMatchObject({ status: 'failed', exitCode: 1 });
    expect(sup.result?.output).toMatch(CONTENTION);

    expect(run.escalations.map((e) => [e.when, e.to, e.status])).toEqual([
      ['failed', 'alertmanager', 'sent'],
      ['failed', 'webhook', 'sent'],
    ]);
    const message = run.escalations[0]!.message;
    expect(message).toContain('field_path="dashboard.path"');
    expect(message).toContain(env.sup.socket);
    expect(message).toMatch(/check the deployment guide, section 'Dashboard IPC socket path' \(dashboard\.path\)/);
    expect(message).not.toMatch(/still disconnected/);

    const alerts = await waitFor(
      'the RemediationEscalated alert at Alertmanager',
      async () => {
        const a = await env.escalationAlerts(run.id);
        return a.length > 0 ? a : undefined;
      },
      15_000,
    );
    expect(alerts).toHaveLength(1);
    expect(alerts[0]!.labels).toMatchObject({ procedure: 'P1-003', reason: 'failed', cause: 'socket-path-contention' });
    expect(alerts[0]!.annotations.summary).toBe(message);
    expect(alerts[0]!.annotations.step_restart_supervisor).toMatch(/field_path=\\"dashboard\.path\\"/);
    expect(alerts[0]!.annotations.step_check_socket).toContain(env.sup.socket);
    expect(alerts[0]!.annotations.outputs).toBeUndefined();
    const posts = env.webhookPosts(run.id);
    expect(posts).toHaveLength(1);
    expect(posts[0]!.message).toBe(message);
    expect(Object.keys(posts[0]!.attachments).sort()).toEqual(['step:check-socket', 'step:restart-supervisor']);
    expect(JSON.stringify(posts[0]!.attachments['step:restart-supervisor'])).toMatch(/field_path=\\"dashboard\.path\\"/);

    // Three runs, one per scenario, and the still-disconnected run carried no contention escalation.
    const all = await env.runs();
    expect(all.map((r) => r.state).sort()).toEqual(['escalated', 'escalated', 'succeeded']);
    for (const r of all.filter((x) => x.id !== run.id && x.state === 'escalated')) {
      expect((await env.escalationAlerts(r.id)).map((a) => a.labels.cause)).toEqual([undefined]);
    }
  }, 120_000);
});
