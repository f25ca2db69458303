/**
 * P1-003 Dashboard IPC Disconnected, hands-off, end to end on the real surface: the simulated supervisor and relay
 * under service-manager stand-ins → `remediator exporter` → real Prometheus (DashboardIPCDisconnected, fast copy with
 * `for: 5s`) → real Alertmanager → remediator (shipped rules/P1-003-dashboard-ipc.yaml, only its vars set) →
 * escalation to Alertmanager and the webhook. Timelines go to test-artifacts/p1/P1-003-<path>.json.
 *
 * Scenarios on one deployment, in order (3 runs: the rule's budget of 3 an hour per target):
 *   1. the relay is killed (nothing restarts it) → heals: pgrep -f finds no relay, the relay is restarted through its
 *      service manager, connected (relay up, registration socket present, IPC answers) holds past a heartbeat.
 *      Exactly one run. The registration socket is never connected to (the relay would stop registering).
 *   2. socket path contention: the supervisor's socket file is deleted and another process takes the path → the
 *      relay restart does not help, the supervisor restart fails with `IPC path already exists` → the escalation
 *      naming the deployment guide.
 *   3. still disconnected: the relay is killed and its config no longer starts (a bad deploy) → relay restart fails,
 *      supervisor restart does not bring the relay back → the "still disconnected" escalation.
 */
import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunRecord } from '../../src/engine/record.js';
import { waitFor } from '../helpers/wait.js';
import { recordTimeline, squatSocket, startP1Env, step, stepSummary, timingLine, type P1Env } from './p1-harness.js';

const notes: string[] = [];
const note = (line: string) => {
  notes.push(line);
  process.stdout.write(`${line}\n`);
};

describe('e2e P1-003 Dashboard IPC Disconnected (real Prometheus + Alertmanager + sim + exporter, nobody acting)', () => {
  let env: P1Env;

  beforeAll(async () => {
    env = await startP1Env({
      procedure: 'P1-003',
      tag: '1003',
      supervisor: { config: { children: [{ name: 'payment_loop' }] }, heartbeatSeconds: 2 },
    });
  }, 180_000);

  afterAll(async () => {
    await env?.stop();
    if (notes.length > 0) process.stdout.write(`\nP1-003 closing note:\n${notes.map((n) => `  ${n}`).join('\n')}\n`);
  });

  const settled = () => env.waitHealthy(90_000);
  const runAfter = (faultAt: number) =>
    env.waitRun('a P1-003 run for the injected fault', (r) => Date.parse(r.alert.startsAt) >= faultAt - 1000, 60_000);
  const runsSince = async (faultAt: number) => (await env.runs()).filter((r) => Date.parse(r.alert.startsAt) >= faultAt - 1000);

  /** The escalation alert at the real Alertmanager and the webhook post, for the run. */
  async function escalatedTo(run: RunRecord) {
    const [alert, ...more] = await waitFor(
      'the RemediationEscalated alert at Alertmanager',
      async () => {
        const a = await env.escalationAlerts(run.id);
        return a.length > 0 ? a : undefined;
      },
      30_000,
    );
    expect(more).toEqual([]);
    const posts = env.webhookPosts(run.id);
    expect(posts).toHaveLength(1);
    return { alert: alert!, post: posts[0]! };
  }

  it('relay killed (nothing restarts it): the relay is restarted through its service manager; connected past a heartbeat; one run', async () => {
    const killed = env.killRelay('SIGTERM');
    const faultAt = Date.now();
    const first = await runAfter(faultAt);
    const run = await env.waitState(first.id, ['succeeded'], 180_000);
    note(timingLine('P1-003', 'verified recovery', faultAt, run) + ' [relay killed]');

    expect(run.alert.labels).toMatchObject({ alertname: 'DashboardIPCDisconnected', instance: env.instance, job: 'supervisor' });
    expect(
      run.steps.map((s) => [s.name, s.status]),
      stepSummary(run),
    ).toEqual([
      ['check-socket', 'passed'],
      ['check-relay', 'failed'],
      ['restart-relay', 'passed'],
      ['restart-supervisor', 'skipped'],
    ]);
    // 1: the supervisor's socket and the relay's registration socket are there (stat only: type, mode, owner, path).
    expect(step(run, 'check-socket').result?.output).toMatch(
      new RegExp(`^socket s\\S+ \\S+ ${env.d.ipcPath}\nsocket s\\S+ \\S+ ${env.d.relay.listenPath}\n`),
    );
    // 2: pgrep -f on the relay's command line found nothing (pgrep -x relay could never match it).
    expect(step(run, 'check-relay').action?.spec).toMatchObject({ command: ['pgrep', '-f', env.d.relay.pattern] });
    expect(step(run, 'check-relay').result).toMatchObject({ exitCode: 1 });
    // 3: restarted through the service manager; connected held 20 s (relay up, socket present, IPC answers).
    const restart = step(run, 'restart-relay');
    expect(restart.action?.spec).toMatchObject({ command: env.d.relayRestartCommand });
    expect(restart.result).toMatchObject({ status: 'succeeded', exitCode: 0 });
    expect(restart.observed.length).toBeGreaterThan(0);
    for (const o of restart.observed)
      expect(o).toMatchObject({ labels: { instance: env.instance, job: 'supervisor' }, value: 1 });
    expect(restart.expect?.reason ?? '').not.toBe('');
    expect(run.escalations).toEqual([]);
    expect(env.relayPid()).toBeDefined();
    expect(env.relayPid()).not.toBe(killed);
    // The supervisor keeps registering with the new relay: the relay is still up and its socket bound after more heartbeats.
    await settled();
    expect(await runsSince(faultAt)).toHaveLength(1);
    recordTimeline({
      procedure: 'P1-003',
      path: 'heal-relay-killed',
      fault: 'relay killed (SIGTERM)',
      faultAt,
      run,
      runsForFault: 1,
    });
  }, 300_000);

  it('socket path contention: another process holds ipc.path; the supervisor restart fails with "IPC path already exists"; escalation names the deployment guide', async () => {
    await settled();
    const faultAt = Date.now();
    unlinkSync(env.d.ipcPath);
    const squatter = squatSocket(env.d.ipcPath);
    try {
      const first = await runAfter(faultAt);
      const run = await env.waitState(first.id, ['escalated'], 300_000);
      note(timingLine('P1-003', 'escalation', faultAt, run) + ' [socket path contention]');

      expect(
        run.steps.map((s) => [s.name, s.status]),
        stepSummary(run),
      ).toEqual([
        ['check-socket', 'passed'],
        ['check-relay', 'passed'],
        ['restart-relay', 'failed'],
        ['restart-supervisor', 'failed'],
      ]);
      const restart = step(run, 'restart-supervisor');
      expect(restart.result).toMatchObject({ status: 'failed', exitCode: 1 });
      expect(restart.result?.output).toMatch(
        /Error: FatalConfig \{ message: "dashboard IPC startup failed: validation_failed at ipc_bind: IPC path already exists and bind_mode is create_new" \}/,
      );
      expect(run.escalations.map((e) => [e.when, e.to, e.status])).toEqual([
        ['failed', 'alertmanager', 'sent'],
        ['failed', 'webhook', 'sent'],
      ]);
      expect(run.escalations[0]!.message).toBe(
        `Dashboard IPC socket path contention on ${env.instance} (another process holds ${env.d.ipcPath}): check the deployment guide, section 'Dashboard IPC socket path' (ipc.path, ipc.bind_mode)`,
      );
      const { alert, post } = await escalatedTo(run);
      expect(alert.labels).toMatchObject({ procedure: 'P1-003', target: env.instance, cause: 'socket-path-contention' });
      expect(alert.annotations.step_restart_supervisor).toMatch(/IPC path already exists/);
      expect(Object.keys(post.attachments).sort()).toEqual(['step:check-socket', 'step:restart-supervisor']);
      recordTimeline({
        procedure: 'P1-003',
        path: 'escalate-socket-path-contention',
        fault: 'ipc.path taken by another process',
        faultAt,
        run,
        runsForFault: (await runsSince(faultAt)).length,
      });
    } finally {
      await squatter.close();
    }
    await env.restartSupervisor();
  }, 420_000);

  it('still disconnected (the relay does not start again): the relay and supervisor restarts do not reconnect; escalation', async () => {
    await settled();
    const good = readFileSync(env.d.relay.configFile, 'utf8');
    const faultAt = Date.now();
    // The bad deploy: the relay's config loses its registration section; then the relay goes down.
    writeFileSync(env.d.relay.configFile, good.replace(/^registration:[\s\S]*$/m, ''));
    env.killRelay('SIGTERM');
    try {
      const first = await runAfter(faultAt);
      const run = await env.waitState(first.id, ['escalated'], 300_000);
      note(timingLine('P1-003', 'escalation', faultAt, run) + ' [still disconnected]');

      expect(
        run.steps.map((s) => [s.name, s.status]),
        stepSummary(run),
      ).toEqual([
        ['check-socket', 'passed'],
        ['check-relay', 'failed'],
        ['restart-relay', 'failed'],
        ['restart-supervisor', 'failed'],
      ]);
      expect(step(run, 'restart-relay').result).toMatchObject({ status: 'failed', exitCode: 1 });
      // The supervisor restarted fine; the relay is what stays down.
      expect(step(run, 'restart-supervisor').result).toMatchObject({ status: 'succeeded', exitCode: 0 });
      expect(step(run, 'restart-supervisor').reason).toMatch(/supervisor_relay_process_up/);
      expect(run.escalations.map((e) => [e.when, e.to, e.status])).toEqual([
        ['failed', 'alertmanager', 'sent'],
        ['failed', 'webhook', 'sent'],
      ]);
      expect(run.escalations[0]!.message).toBe(
        `Dashboard IPC on ${env.instance} still disconnected after restarting the relay and the supervisor`,
      );
      const { alert } = await escalatedTo(run);
      expect(alert.labels.cause).toBeUndefined();
      recordTimeline({
        procedure: 'P1-003',
        path: 'escalate-still-disconnected',
        fault: 'relay killed, its config broken',
        faultAt,
        run,
        runsForFault: (await runsSince(faultAt)).length,
      });
    } finally {
      writeFileSync(env.d.relay.configFile, good);
    }
    await env.restartRelay();
    const all = await env.runs();
    expect(all.map((r) => r.state).sort()).toEqual(['escalated', 'escalated', 'succeeded']);
  }, 420_000);
});

describe('e2e P1-003, step 4: the socket file is deleted under a running supervisor; only its restart reopens the IPC', () => {
  let env: P1Env;

  beforeAll(async () => {
    env = await startP1Env({
      procedure: 'P1-003',
      tag: '1003b',
      supervisor: { config: { children: [{ name: 'payment_loop' }] }, heartbeatSeconds: 2 },
    });
  }, 180_000);

  afterAll(async () => {
    await env?.stop();
  });

  it('socket file deleted (a tmp cleaner): the relay restart does not help, the supervisor restart heals; one run', async () => {
    const before = env.supervisorPid();
    const faultAt = Date.now();
    unlinkSync(env.d.ipcPath);
    const first = await env.waitRun('a P1-003 run', (r) => Date.parse(r.alert.startsAt) >= faultAt - 1000, 60_000);
    const run = await env.waitState(first.id, ['succeeded'], 300_000);
    note(timingLine('P1-003', 'verified recovery', faultAt, run) + ' [socket file deleted: supervisor restart]');

    expect(
      run.steps.map((s) => [s.name, s.status]),
      stepSummary(run),
    ).toEqual([
      ['check-socket', 'failed'],
      ['check-relay', 'passed'],
      ['restart-relay', 'failed'],
      ['restart-supervisor', 'passed'],
    ]);
    expect(step(run, 'check-socket').result?.output).toMatch(/No such file or directory/);
    expect(step(run, 'restart-supervisor').result).toMatchObject({ status: 'succeeded', exitCode: 0 });
    expect(run.reason).toMatch(/^verified by step restart-supervisor/);
    expect(env.supervisorPid()).not.toBe(before);
    await env.waitHealthy(90_000);
    const runs = (await env.runs()).filter((r) => Date.parse(r.alert.startsAt) >= faultAt - 1000);
    expect(runs).toHaveLength(1);
    recordTimeline({
      procedure: 'P1-003',
      path: 'heal-socket-deleted-supervisor-restart',
      fault: 'ipc.path deleted under a running supervisor',
      faultAt,
      run,
      runsForFault: runs.length,
    });
  }, 420_000);
});
