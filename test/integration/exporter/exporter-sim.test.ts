/**
 * `remediator exporter` as deployed (the built CLI, a real process) beside the simulator (sim/: a supervisor host
 * whose control loop can stall, a relay stand-in with the registration probe trap), then read by a real
 * Prometheus. Also the `ipc` action, the `ipc` check and `remediator ipc` against the same socket. Fault
 * injection goes through the simulator's admin channel; everything is read through the IPC socket, /proc and
 * the exporter's /metrics, never through the admin channel.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startRelay, startSupervisor, type RelayProcess, type SupervisorProcess } from '../../../sim/launch.js';
import { ipc as ipcAction, IpcSpec } from '../../../src/actions/ipc.js';
import { ipc as ipcCheck, IpcCheckSpec } from '../../../src/checks/ipc.js';
import { silentLogger } from '../../../src/log.js';
import { parseWireJson } from '../../../src/supervisor/json.js';
import { parseExposition, promtoolCheckMetrics, valueOf, type Sample } from '../../helpers/exposition.js';
import { freePort } from '../../helpers/ports.js';
import { runCommand, spawnProcess, type ManagedProcess } from '../../helpers/processes.js';
import { waitFor } from '../../helpers/wait.js';
import { startStack, type Stack } from '../../helpers/stack.js';
import { checkContext } from '../../unit/checks/contract.js';

const CLI = new URL('../../../dist/cli.js', import.meta.url).pathname;
const IPC_TIMEOUT_MS = 2000; // the default; a loaded CI machine's sim answers state well within it
const RECORDS = 'result.state.child_runtime_records';

function assertBuilt(): void {
  if (!existsSync(CLI)) throw new Error(`${CLI} not found: run \`npm run build\` first (npm test does)`);
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

interface Rig {
  relay: RelayProcess;
  supervisor: SupervisorProcess;
  exporter: ManagedProcess;
  port: number;
  processName: string;
}

/** A relay, a supervisor registered with it (heartbeat 1 s), and an exporter process watching both. */
async function startRig(): Promise<Rig> {
  assertBuilt();
  const processName = `pw${randomBytes(4).toString('hex')}`; // the host binary's comm, ours alone
  const relay = await startRelay();
  const supervisor = await startSupervisor({
    dir: relay.dir,
    relay: { listenPath: relay.listenPath },
    heartbeatSeconds: 1,
    config: {
      policy: { child_restart_limit: 2, child_restart_window_ms: 60_000, initial_backoff_ms: 10, max_backoff_ms: 50 },
      children: [{ name: 'payment_loop' }, { name: 'ledger_sync', heartbeat_ms: 200 }],
      sim: { process_name: processName },
    },
  });
  const port = await freePort();
  const exporter = spawnProcess('exporter', process.execPath, [CLI, 'exporter'], {
    env: {
      SUPERVISOR_IPC_PATH: supervisor.ipcPath,
      SUPERVISOR_PROCESS: processName,
      // This relay's command line only (other tests run relays too).
      RELAY_PROCESS_PATTERN: `rust-supervisor-relay --config ${escapeRegExp(relay.configFile)}`,
      RELAY_REGISTRATION_PATH: relay.listenPath,
      IPC_TIMEOUT: `${IPC_TIMEOUT_MS}ms`,
      EXPORTER_HOST: '127.0.0.1',
      EXPORTER_PORT: String(port),
      LOG_LEVEL: 'info',
    },
  });
  await waitFor('the exporter to answer /healthz', async () => (await fetch(`http://127.0.0.1:${port}/healthz`)).ok, {
    processes: [exporter],
  });
  return { relay, supervisor, exporter, port, processName };
}

async function stopRig(rig: Rig | undefined): Promise<void> {
  if (rig === undefined) return;
  await rig.exporter.stop();
  await rig.supervisor.stop(2000);
  await rig.relay.stop(2000);
}

async function scrape(rig: Rig, headers: Record<string, string> = {}): Promise<{ text: string; samples: Sample[]; ms: number }> {
  const t0 = performance.now();
  const res = await fetch(`http://127.0.0.1:${rig.port}/metrics`, { headers });
  const text = await res.text();
  expect(res.status, text).toBe(200);
  return { text, samples: parseExposition(text), ms: performance.now() - t0 };
}

/** A valid registration line to the relay: acked only while its registration loop is alive. */
function register(relay: RelayProcess, ipcPath: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ path: relay.listenPath });
    let buf = '';
    s.once('connect', () =>
      s.write(
        `${JSON.stringify({ target_id: 'probe-check', display_name: 'x', ipc_path: ipcPath, lease_seconds: 30, supported_commands: [] })}\n`,
      ),
    );
    s.on('data', (c: Buffer) => (buf += c.toString('utf8')));
    s.once('close', () => resolve(buf));
    s.once('error', reject);
  });
}

describe('exporter beside the simulator', () => {
  let rig: Rig;
  beforeAll(async () => {
    rig = await startRig();
  }, 60_000);
  afterAll(() => stopRig(rig), 30_000);

  it('exports the measured state of a healthy supervisor; /metrics passes promtool check metrics', async () => {
    const { text, samples } = await waitFor('a scrape with state answered', async () => {
      const r = await scrape(rig);
      return valueOf(r.samples, 'supervisor_ipc_state_ok') === 1 ? r : undefined;
    });
    expect(valueOf(samples, 'supervisor_ipc_up')).toBe(1);
    expect(valueOf(samples, 'supervisor_ipc_socket_present')).toBe(1);
    expect(valueOf(samples, 'supervisor_ipc_state_ok')).toBe(1);
    expect(valueOf(samples, 'supervisor_process_up')).toBe(1);
    expect(valueOf(samples, 'supervisor_relay_process_up')).toBe(1);
    expect(valueOf(samples, 'supervisor_relay_registration_socket_present')).toBe(1);
    expect(valueOf(samples, 'supervisor_target_info', { target_id: rig.supervisor.targetId })).toBe(1);
    expect(valueOf(samples, 'supervisor_children_declared')).toBe(2);
    for (const child_id of ['payment_loop', 'ledger_sync']) {
      expect(valueOf(samples, 'supervisor_child_operation', { child_id, operation: 'active' })).toBe(1);
      expect(valueOf(samples, 'supervisor_child_attempt_active', { child_id })).toBe(1);
      // Until a child's first exit the runtime reports its default limit (u32::MAX), not the policy's.
      expect(valueOf(samples, 'supervisor_child_restart_limit', { child_id })).toBe(4294967295);
      expect(valueOf(samples, 'supervisor_child_restart_limit_exhausted', { child_id })).toBe(0);
      expect(valueOf(samples, 'supervisor_child_heartbeat_stale', { child_id })).toBe(0);
    }
    const lint = await promtoolCheckMetrics(text);
    expect(lint, lint.output).toEqual({ code: 0, output: '' });
  });

  it("never connects to the relay's registration socket: after many scrapes its registration loop still acks", async () => {
    for (let i = 0; i < 25; i++) {
      const { samples } = await scrape(rig);
      expect(valueOf(samples, 'supervisor_relay_registration_socket_present')).toBe(1);
    }
    // One bare connection would have ended the loop for good (then: refused). It is alive:
    expect(await register(rig.relay, `${rig.relay.dir}/probe-check.sock`)).toBe(
      '{"ok":true,"retryable":false,"status":"registered","target_id":"probe-check"}\n',
    );
  });

  it('a crash loop shows as restart_limit used/exhausted and no attempt, as the runtime reports it', async () => {
    await rig.supervisor.fault('crash-loop', { child: 'ledger_sync', panic_after_ms: 50 });
    const samples = await waitFor(
      'ledger_sync exhausted',
      async () => {
        const { samples: s } = await scrape(rig);
        return valueOf(s, 'supervisor_child_restart_limit_exhausted', { child_id: 'ledger_sync' }) === 1 &&
          valueOf(s, 'supervisor_child_attempt_active', { child_id: 'ledger_sync' }) === 0
          ? s
          : undefined;
      },
      { timeoutMs: 20_000, processes: [rig.exporter] },
    );
    expect(valueOf(samples, 'supervisor_child_restart_limit_used', { child_id: 'ledger_sync' })).toBeGreaterThan(2);
    expect(valueOf(samples, 'supervisor_child_restart_limit_remaining', { child_id: 'ledger_sync' })).toBe(0);
    expect(valueOf(samples, 'supervisor_child_restart_limit', { child_id: 'ledger_sync' })).toBe(2); // the policy's, once it exited
    expect(valueOf(samples, 'supervisor_child_attempt_status', { child_id: 'ledger_sync', status: 'none' })).toBe(1);
    expect(valueOf(samples, 'supervisor_child_operation', { child_id: 'ledger_sync', operation: 'active' })).toBe(1); // not quarantined
  });

  it('the ipc check finds the exhausted child; the ipc action quarantines it with the run in command_id; remediator ipc reads it back', async () => {
    const ctx = checkContext(new AbortController().signal);
    const exhausted = IpcCheckSpec.parse({
      ipc: { path: rig.supervisor.ipcPath, method: 'state', timeout: '2s' },
      json: [
        { path: RECORDS, where: { child_id: 'ledger_sync' }, count: 1 },
        { path: RECORDS, where: { child_id: 'ledger_sync' }, field: 'restart_limit.exhausted', value: true },
      ],
    });
    const seen = await ipcCheck.evaluate(exhausted, ctx);
    expect(seen.holds, seen.reason).toBe(true);

    const result = await ipcAction.run(
      IpcSpec.parse({
        path: rig.supervisor.ipcPath,
        method: 'command.quarantine_child',
        target_id: rig.supervisor.targetId,
        child: 'ledger_sync',
      }),
      {
        signal: new AbortController().signal,
        log: silentLogger,
        run: { id: 'inc-sim', procedure: 'P1-002', step: 'quarantine', attempt: 1 },
      },
    );
    expect(result.status, result.output).toBe('succeeded');
    expect(result.detail).toMatchObject({ accepted: true, commandId: 'P1-002-inc-sim-quarantine-ledger_sync' });
    const body = result.body as {
      result: { result: { command_id: string; state_delta: { outcome: { operation_after: string } } } };
    };
    expect(body.result.result.command_id).toBe('P1-002-inc-sim-quarantine-ledger_sync');
    expect(body.result.result.state_delta.outcome.operation_after).toBe('quarantined');

    const cli = await runCommand(process.execPath, [CLI, 'ipc', 'state', '--path', rig.supervisor.ipcPath]);
    expect(cli.code, cli.stderr).toBe(0);
    const answer = parseWireJson(cli.stdout.trim()) as {
      result: { state: { child_runtime_records: { child_id: string; operation: string }[] } };
    };
    expect(answer.result.state.child_runtime_records.find((r) => r.child_id === 'ledger_sync')?.operation).toBe('quarantined');
    const { samples } = await scrape(rig);
    expect(valueOf(samples, 'supervisor_child_operation', { child_id: 'ledger_sync', operation: 'quarantined' })).toBe(1);
  });

  it('a stalled control loop turns supervisor_ipc_state_ok to 0 within one scrape; hello still answers', async () => {
    const before = await waitFor('state answers before the stall', async () => {
      const b = await scrape(rig);
      return valueOf(b.samples, 'supervisor_ipc_state_ok') === 1 ? b : undefined;
    });
    const lastGood = valueOf(before.samples, 'supervisor_ipc_state_last_success_timestamp_seconds');

    await rig.supervisor.fault('stall');
    try {
      // The very next scrape, with Prometheus's usual 10 s scrape timeout.
      const stalled = await scrape(rig, { 'X-Prometheus-Scrape-Timeout-Seconds': '10' });
      expect(valueOf(stalled.samples, 'supervisor_ipc_state_ok')).toBe(0);
      expect(valueOf(stalled.samples, 'supervisor_ipc_up')).toBe(1);
      expect(valueOf(stalled.samples, 'supervisor_process_up')).toBe(1);
      // The state call waited for its timeout, it did not fail at once. Not `>= IPC_TIMEOUT`: the timer is set on the
      // event loop's cached clock, which trails the performance.now() the stage is measured with (seen in CI: 1.99996 s).
      expect(valueOf(stalled.samples, 'supervisor_ipc_state_duration_seconds')).toBeGreaterThan((IPC_TIMEOUT_MS - 50) / 1000);
      expect(valueOf(stalled.samples, 'supervisor_ipc_state_last_success_timestamp_seconds')).toBe(lastGood);
      expect(valueOf(stalled.samples, 'supervisor_children_declared')).toBeUndefined(); // not measured
      // The scrape answered while the loop is still stalled (it stays so until 'unstall' below): it did not hang
      // with the loop. How long it took is a figure.
      process.stdout.write(
        `[exporter] stall → supervisor_ipc_state_ok 0 in the first scrape after the fault: scrape took ${Math.round(stalled.ms)} ms (IPC_TIMEOUT ${IPC_TIMEOUT_MS} ms)\n`,
      );

      // The same signal through the ipc check (P1-004) and remediator ipc.
      const ctx = checkContext(new AbortController().signal);
      const path = rig.supervisor.ipcPath;
      expect(
        (await ipcCheck.evaluate(IpcCheckSpec.parse({ ipc: { path, method: 'state', timeout: '500ms' }, timedOut: true }), ctx))
          .holds,
      ).toBe(true);
      expect(
        (await ipcCheck.evaluate(IpcCheckSpec.parse({ ipc: { path, method: 'hello', timeout: '500ms' }, ok: true }), ctx)).holds,
      ).toBe(true);
      const cli = await runCommand(process.execPath, [CLI, 'ipc', 'state', '--path', path, '--timeout', '500ms']);
      expect(cli.code).toBe(2);
      expect(JSON.parse(cli.stdout)).toMatchObject({ error: { timedOut: true } });
      // A command goes through the loop too: its timeout is a result, not an exception.
      const command = await ipcAction.run(
        IpcSpec.parse({
          path,
          method: 'command.quarantine_child',
          target_id: rig.supervisor.targetId,
          child: 'payment_loop',
          timeout: '500ms',
        }),
        { signal: new AbortController().signal, log: silentLogger },
      );
      expect(command).toMatchObject({ status: 'failed', detail: { timedOut: true } });

      // The snapshot keeps the last good state for the escalation.
      const snapshot = parseWireJson(await (await fetch(`http://127.0.0.1:${rig.port}/snapshot`)).text()) as {
        last_scrape: { state_timed_out: boolean };
        hello: { answer: { ok: boolean } };
        last_good_state: { answer: { result: { type: string } } };
      };
      expect(snapshot.last_scrape.state_timed_out).toBe(true);
      expect(snapshot.hello.answer.ok).toBe(true);
      expect(snapshot.last_good_state.answer.result.type).toBe('state');
    } finally {
      await rig.supervisor.fault('unstall');
    }
    await waitFor('state answers again', async () => valueOf((await scrape(rig)).samples, 'supervisor_ipc_state_ok') === 1, {
      processes: [rig.exporter],
    });
  });

  it('the relay gone: its process reads 0; the supervisor killed: process 0, ipc 0, its stale socket still present', async () => {
    await rig.relay.stop(2000);
    const relayGone = (await scrape(rig)).samples;
    expect(valueOf(relayGone, 'supervisor_relay_process_up')).toBe(0);
    expect(valueOf(relayGone, 'supervisor_ipc_up')).toBe(1);

    rig.supervisor.kill('SIGKILL');
    await rig.supervisor.exited;
    const { samples, text } = await scrape(rig);
    expect(valueOf(samples, 'supervisor_process_up')).toBe(0);
    expect(valueOf(samples, 'supervisor_ipc_up')).toBe(0);
    expect(valueOf(samples, 'supervisor_ipc_state_ok')).toBe(0);
    expect(valueOf(samples, 'supervisor_ipc_socket_present')).toBe(1); // SIGKILL leaves the socket file behind
    expect(valueOf(samples, 'supervisor_target_info', { target_id: rig.supervisor.targetId })).toBe(1); // remembered
    expect((await promtoolCheckMetrics(text)).code).toBe(0);
    expect(readFileSync(rig.exporter.logFile, 'utf8')).toMatch(/"stage":"hello".*"msg":"scrape stage failed"/);
  });
});

describe('exporter scraped by a real Prometheus', () => {
  let rig: Rig;
  let stack: Stack;
  beforeAll(async () => {
    rig = await startRig();
    stack = await startStack({
      webhookUrl: 'http://127.0.0.1:9/unused',
      webhookToken: 'unused-token-0123456789',
      scrapeTargets: [{ job: 'supervisor', target: `127.0.0.1:${rig.port}` }],
      ruleFiles: [],
    });
  }, 90_000);
  afterAll(async () => {
    await stack?.stop();
    await stopRig(rig);
  }, 30_000);

  const query = async (promql: string) => {
    const r = (await (await fetch(`${stack.prometheusUrl}/api/v1/query?query=${encodeURIComponent(promql)}`)).json()) as {
      data: { result: { metric: Record<string, string>; value: [number, string] }[] };
    };
    return r.data.result;
  };
  const instance = () => `127.0.0.1:${rig.port}`;

  it('every supervisor series carries the target instance, also when the control loop stalls and when the process is gone', async () => {
    await waitFor('Prometheus has the exporter series', async () => (await query('supervisor_ipc_state_ok == 1')).length === 1);
    for (const r of await query('{__name__=~"supervisor_.*"}'))
      expect(r.metric, r.metric.__name__).toMatchObject({ instance: instance(), job: 'supervisor' });

    // Prometheus scrapes every 1 s with a 1 s scrape timeout: the exporter fits its IPC calls inside it.
    await rig.supervisor.fault('stall');
    const stalledAt = Date.now();
    await waitFor(
      'Prometheus sees state_ok 0',
      async () => (await query(`supervisor_ipc_state_ok{instance="${instance()}"} == 0`)).length === 1,
      {
        timeoutMs: 15_000,
      },
    );
    process.stdout.write(
      `[exporter] stall → Prometheus has supervisor_ipc_state_ok 0 after ${Date.now() - stalledAt} ms (scrape_interval 1s)\n`,
    );
    expect(await query(`up{instance="${instance()}"}`)).toEqual([expect.objectContaining({ value: [expect.any(Number), '1'] })]);
    await rig.supervisor.fault('unstall');

    rig.supervisor.kill('SIGKILL');
    await rig.supervisor.exited;
    const gone = await waitFor(
      'Prometheus sees the process gone',
      async () => {
        const r = await query(`supervisor_process_up{instance="${instance()}"} == 0 and on (instance) supervisor_ipc_up == 0`);
        return r.length === 1 ? r : undefined;
      },
      { timeoutMs: 15_000 },
    );
    expect(gone[0]!.metric).toMatchObject({ instance: instance(), job: 'supervisor' });
  });
});
