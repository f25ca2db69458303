import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isRunning, pgrepExact, runCommand, waitFor } from '../../helpers/processes.js';
import { SupervisorClient, type State } from '../../sim/client.js';
import { runSupervisorToExit, startSupervisorProcess, type SupervisorProcess } from '../../sim/launch.js';

const SERIES = [
  'supervisor_up',
  'supervisor_health_status',
  'supervisor_dashboard_link_connected',
  'supervisor_uptime_seconds',
  'supervisor_control_loop_iterations_total',
  'supervisor_children',
  'supervisor_children_target',
  'supervisor_child_restarts_total',
  'supervisor_restart_budget_tokens',
  'supervisor_relay_up',
];

const client = (s: SupervisorProcess) => new SupervisorClient(s.adminUrl, s.metricsUrl);
const lastJournalLine = (file: string) => readFileSync(file, 'utf8').trimEnd().split('\n').at(-1) ?? '';

async function relayPid(c: SupervisorClient): Promise<number> {
  return waitFor('a running relay', async () => {
    const s = await c.state();
    return s.relay.up && s.relay.pid !== null && isRunning(s.relay.pid) ? s.relay.pid : undefined;
  });
}

/** SIGTERM the supervisor named in a pid file (a daemonized one) and wait until it is gone. */
async function stopPidFile(file: string): Promise<void> {
  if (!existsSync(file)) return;
  const pid = Number(readFileSync(file, 'utf8').trim());
  if (!isRunning(pid)) return;
  process.kill(pid, 'SIGTERM');
  await waitFor(`pid ${pid} to exit`, () => !isRunning(pid), { timeoutMs: 10_000 });
}

describe('supervisor simulator (real processes)', () => {
  let sup: SupervisorProcess;
  let c: SupervisorClient;
  const pidFiles: string[] = [];
  const started: SupervisorProcess[] = [];

  beforeAll(async () => {
    sup = await startSupervisorProcess({
      children: 3,
      extraArgs: ['--restart-budget', '3', '--crash-interval-ms', '150', '--restart-backoff-ms', '250'],
    });
    started.push(sup);
    pidFiles.push(sup.pidFile);
    c = client(sup);
  });

  afterAll(async () => {
    for (const s of started) await s.stop();
    for (const f of pidFiles) await stopPidFile(f);
    for (const s of started) s.cleanup();
  });

  it('is a process named supervisor with a child named relay, found by pgrep -x', async () => {
    expect(readFileSync(`/proc/${sup.pid}/comm`, 'utf8').trim()).toBe('supervisor');
    expect(await pgrepExact('supervisor')).toContain(sup.pid);
    const relay = await relayPid(c);
    expect(readFileSync(`/proc/${relay}/comm`, 'utf8').trim()).toBe('relay');
    expect(await pgrepExact('relay')).toContain(relay);
    expect(Number(readFileSync(sup.pidFile, 'utf8'))).toBe(sup.pid);
  });

  it('exposes exactly the series of the DESIGN.md table, and a ready /health', async () => {
    const text = await (await fetch(sup.metricsUrl)).text();
    const names = new Set(
      text
        .split('\n')
        .filter((l) => l.startsWith('# TYPE '))
        .map((l) => l.split(' ')[2]),
    );
    expect([...names].sort()).toEqual([...SERIES].sort());
    const m = await c.metrics();
    expect(m.get('supervisor_up')).toBe(1);
    expect(m.get('supervisor_health_status{status="ready"}')).toBe(1);
    expect(m.get('supervisor_health_status{status="degraded"}')).toBe(0);
    expect(m.get('supervisor_dashboard_link_connected')).toBe(1);
    expect(m.get('supervisor_relay_up')).toBe(1);
    expect(m.get('supervisor_children{state="running"}')).toBe(3);
    expect(m.get('supervisor_children_target')).toBe(3);
    expect(m.get('supervisor_child_restarts_total{child="child-2"}')).toBe(0);
    expect(m.get('supervisor_restart_budget_tokens{child="child-2"}')).toBe(3);
    const h = await c.health();
    expect(h).toMatchObject({ status: 'ready', dashboard_link: 'connected', pid: sup.pid });
    expect(h.control_loop_iterations).toBeGreaterThan(0);
  });

  it('P1-003: SIGTERM to the relay → the supervisor restarts it and the link reconnects within 10 s', async () => {
    const before = await relayPid(c);
    const t0 = Date.now();
    process.kill(before, 'SIGTERM');
    const after = await waitFor(
      'a new relay holding the link',
      async () => {
        const s = await c.state();
        return s.dashboard.link === 'connected' && s.relay.pid !== null && s.relay.pid !== before ? s.relay.pid : undefined;
      },
      { timeoutMs: 10_000, processes: [sup.proc] },
    );
    expect(Date.now() - t0).toBeLessThan(10_000);
    expect(isRunning(before)).toBe(false);
    expect(await pgrepExact('relay')).toContain(after);
    expect(await c.metric('supervisor_dashboard_link_connected')).toBe(1);
  });

  it('P1-003: dropping the IPC link keeps the relay alive but disconnected; restarting the relay fixes it', async () => {
    const relay = await relayPid(c);
    expect(await c.post('/faults/ipc/drop')).toMatchObject({ result: 'Accepted', sticky: false });
    await waitFor('link disconnected', async () => (await c.health()).dashboard_link === 'disconnected');
    expect(await c.metric('supervisor_dashboard_link_connected')).toBe(0);
    expect(await c.metric('supervisor_relay_up')).toBe(1);
    expect(isRunning(relay)).toBe(true);
    expect((await c.state()).relay.pid).toBe(relay);
    expect((await c.health()).status).toBe('degraded');

    process.kill(relay, 'SIGTERM');
    await waitFor(
      'link reconnected by a new relay',
      async () => {
        const s = await c.state();
        return s.dashboard.link === 'connected' && s.relay.pid !== relay;
      },
      { timeoutMs: 10_000 },
    );
    expect(await c.metric('supervisor_dashboard_link_connected')).toBe(1);
  });

  it('P1-002: a crash-looping child drains its restart budget, is quarantined, and remove restores running == target', async () => {
    expect(await c.post('/faults/children/child-2/crash-loop')).toEqual({ result: 'Accepted' });
    await waitFor('child-2 failed at least once', async () => (await c.metric('supervisor_children{state="failed"}')) === 1);
    const quarantined = await waitFor('child-2 quarantined', async () => {
      const s = await c.state();
      const ch = s.children.find((x) => x.id === 'child-2');
      return ch?.state === 'quarantined' ? ch : undefined;
    });
    expect(quarantined.restart_count).toBe(3);
    expect(quarantined.restart_budget.tokens).toBe(0);
    expect(quarantined.last_exit_reason).toMatch(/^TaskExit::Panicked: /);
    const m = await c.metrics();
    expect(m.get('supervisor_child_restarts_total{child="child-2"}')).toBe(3);
    expect(m.get('supervisor_restart_budget_tokens{child="child-2"}')).toBe(0);
    expect(m.get('supervisor_children{state="quarantined"}')).toBe(1);
    expect(readFileSync(sup.journal, 'utf8')).toMatch(/child child-2 exited: TaskExit::Panicked: .+/);
    expect(readFileSync(sup.journal, 'utf8')).toContain('child child-2 restart budget exhausted');

    expect(await c.post('/children/child-2/remove')).toEqual({ result: 'Accepted' });
    const s: State = await c.state();
    expect(s.counts.running).toBe(s.target_count);
    expect(s.target_count).toBe(2);
    const after = await c.metrics();
    expect(after.get('supervisor_children{state="running"}')).toBe(after.get('supervisor_children_target'));
    expect(after.has('supervisor_child_restarts_total{child="child-2"}')).toBe(false);
    expect(await c.post('/children/child-2/remove')).toEqual({ result: 'Rejected', reason: 'no child with id "child-2"' });
  });

  it('P1-004: a BlockForever child stalls the control loop while uptime advances; quarantining it resumes the loop', async () => {
    expect(await c.post('/faults/children/child-1/block-forever')).toEqual({ result: 'Accepted' });
    await waitFor('the control loop to wait on child-1', () =>
      readFileSync(sup.journal, 'utf8').includes('control loop waiting on 1 blocking'),
    );
    const stalledAt = await c.health();
    // Wait for uptime to advance by 2 s (an event), then the iterations must not have moved.
    await waitFor('uptime to advance 2 s', async () => (await c.health()).uptime_secs >= stalledAt.uptime_secs + 2, {
      timeoutMs: 5000,
    });
    const later = await c.health();
    expect(later.control_loop_iterations).toBe(stalledAt.control_loop_iterations);
    expect(later.status).toBe('degraded');
    expect(await c.metric('supervisor_control_loop_iterations_total')).toBe(stalledAt.control_loop_iterations);
    expect((await c.state()).children.find((x) => x.id === 'child-1')?.behavior).toBe('BlockForever');

    expect(await c.post('/children/child-1/quarantine')).toEqual({ result: 'Accepted' });
    await waitFor(
      'iterations to increase again',
      async () => (await c.health()).control_loop_iterations > stalledAt.control_loop_iterations + 5,
    );
    expect((await c.state()).children.find((x) => x.id === 'child-1')?.state).toBe('quarantined');
    expect(await c.post('/children/child-1/remove')).toEqual({ result: 'Accepted' });
  });

  it('P1-004: an IgnoreCancel child refuses remove but can be quarantined', async () => {
    expect(await c.post('/faults/children/child-3/ignore-cancel')).toEqual({ result: 'Accepted' });
    const h0 = await c.health();
    await waitFor('uptime to advance 1 s', async () => (await c.health()).uptime_secs >= h0.uptime_secs + 1, { timeoutMs: 4000 });
    const stalled = (await c.health()).control_loop_iterations;
    const rejected = await c.post('/children/child-3/remove');
    expect(rejected).toMatchObject({ result: 'Rejected' });
    expect(JSON.stringify(rejected)).toContain('IgnoreCancel');
    expect(await c.post('/children/child-3/quarantine')).toEqual({ result: 'Accepted' });
    await waitFor('iterations to increase again', async () => (await c.health()).control_loop_iterations > stalled);
    expect(await c.post('/children/nope/quarantine')).toEqual({ result: 'Rejected', reason: 'no child with id "nope"' });
  });

  it('P1-003: a second supervisor on the same socket path fails with field_path="dashboard.path"', async () => {
    const r = await runSupervisorToExit({ socket: sup.socket });
    expect(r.code).not.toBe(0);
    expect(r.log).toContain('field_path="dashboard.path"');
    // The first one still holds it.
    expect((await c.health()).dashboard_link).toBe('connected');
  });

  it('P1-003 sticky: the link stays down across relay restarts until the supervisor process restarts', async () => {
    const relay = await relayPid(c);
    expect(await c.post('/faults/ipc/drop?sticky=true')).toMatchObject({ result: 'Accepted', sticky: true });
    await waitFor('link disconnected', async () => (await c.health()).dashboard_link === 'disconnected');
    process.kill(relay, 'SIGTERM');
    // The new relay keeps trying and is refused: the link stays down.
    await waitFor('a new relay refused 3 times', async () => {
      const s = await c.state();
      return s.relay.pid !== relay && s.dashboard.refused_connections >= 3;
    });
    expect((await c.health()).dashboard_link).toBe('disconnected');

    // The restart command (what a rule's exec action runs): stops this one cleanly, starts a detached one.
    const [cmd, ...args] = sup.restartCommand;
    const r = await runCommand(cmd ?? '', args, { timeoutMs: 45_000 });
    expect(r.code, r.stderr + r.stdout).toBe(0);
    await sup.exited;
    expect(sup.proc.exitInfo()).toEqual({ code: 0, signal: null });
    const newPid = Number(readFileSync(sup.pidFile, 'utf8'));
    expect(newPid).not.toBe(sup.pid);
    expect(readFileSync(sup.journal, 'utf8')).toMatch(new RegExp(`supervisor\\[${sup.pid}\\]: ShutdownPhase::Completed`));
    const h = await c.health();
    expect(h).toMatchObject({ status: 'ready', dashboard_link: 'connected', pid: newPid });
    expect(await pgrepExact('supervisor')).toContain(newPid);
    expect(await c.metric('supervisor_dashboard_link_connected')).toBe(1);
  });
});

describe('P1-001: crash, core dump, failing restarts, clean shutdown', () => {
  let sup: SupervisorProcess;
  afterAll(async () => {
    await sup?.stop();
    if (sup !== undefined) await stopPidFile(sup.pidFile);
    sup?.cleanup();
  });

  it('panics with a core file and a journal ending in Panic; restart fails twice, then succeeds; shutdown is clean', async () => {
    sup = await startSupervisorProcess({ children: 2 });
    const c = client(sup);
    expect(await c.post('/faults/restart-fails?count=2')).toMatchObject({ result: 'Accepted', count: 2 });
    expect(await c.post('/faults/panic')).toEqual({ result: 'Accepted' });
    const exit = await sup.exited;
    expect(exit.code).toBe(101);
    expect(lastJournalLine(sup.journal)).toMatch(/Panic$/);
    expect(existsSync(join(sup.dumpDir, `core.supervisor.${sup.pid}`))).toBe(true);
    expect(await pgrepExact('supervisor')).not.toContain(sup.pid);

    const [cmd, ...args] = sup.restartCommand;
    for (const attempt of [1, 2]) {
      const r = await runCommand(cmd ?? '', args, { timeoutMs: 45_000 });
      expect(r.code, `attempt ${attempt}: ${r.stdout}${r.stderr}`).not.toBe(0);
      expect(r.stderr).toContain('failed to start');
    }
    const ok = await runCommand(cmd ?? '', args, { timeoutMs: 45_000 });
    expect(ok.code, ok.stdout + ok.stderr).toBe(0);
    const pid = Number(readFileSync(sup.pidFile, 'utf8'));
    expect(isRunning(pid)).toBe(true);
    expect(await pgrepExact('supervisor')).toContain(pid);
    expect(await c.health()).toMatchObject({ status: 'ready', dashboard_link: 'connected', pid });

    expect(await c.post('/faults/shutdown')).toEqual({ result: 'Accepted' });
    await waitFor(`pid ${pid} to exit`, () => !isRunning(pid), { timeoutMs: 10_000 });
    expect(lastJournalLine(sup.journal)).toMatch(/ShutdownPhase::Completed$/);
    expect(existsSync(sup.pidFile)).toBe(false);
  });
});
