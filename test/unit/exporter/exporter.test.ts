/**
 * The exporter over HTTP against a golden-replaying supervisor socket (test/helpers/golden-supervisor.ts), real
 * processes (a copy of /bin/sleep under a name of ours) and a real relay registration socket that fails the test
 * if anything connects to it. The same behaviour against the simulator is in test/integration/exporter.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { copyFile, mkdtemp, readFile, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ExporterConfig, loadExporterConfig } from '../../../src/config.js';
import { startExporter, type RunningExporter } from '../../../src/exporter/exporter.js';
import { silentLogger } from '../../../src/log.js';
import { parseWireJson } from '../../../src/supervisor/json.js';
import { parseExposition, promtoolCheckMetrics, samplesOf, valueOf, type Sample } from '../../helpers/exposition.js';
import { goldenAnswer, startFakeSupervisor, type FakeSupervisor } from '../../helpers/golden-supervisor.js';

const tag = randomBytes(3).toString('hex');
const SUPERVISOR_NAME = `supx${tag}`; // comm of our stand-in supervisor process (≤ 15 characters)
const RELAY_MARK = `rust-supervisor-relay-test-${tag}`; // on the relay stand-in's command line

let dir: string;
let supervisor: FakeSupervisor | undefined;
let exporter: RunningExporter | undefined;
const children: ChildProcess[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'remediator-exporter-'));
  await copyFile('/bin/sleep', join(dir, SUPERVISOR_NAME));
});
afterEach(async () => {
  await exporter?.stop();
  await supervisor?.close();
  exporter = undefined;
  supervisor = undefined;
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});
afterAll(() => rm(dir, { recursive: true, force: true }));

async function start(env: Record<string, string>): Promise<RunningExporter> {
  const config = loadExporterConfig({
    EXPORTER_HOST: '127.0.0.1',
    EXPORTER_PORT: '0',
    RELAY_PROCESS_PATTERN: RELAY_MARK,
    ...env,
  });
  exporter = await startExporter(config, silentLogger);
  return exporter;
}

async function scrape(e: RunningExporter, headers: Record<string, string> = {}): Promise<{ text: string; samples: Sample[] }> {
  const res = await fetch(`http://127.0.0.1:${e.port}/metrics`, { headers });
  expect(res.status).toBe(200);
  const text = await res.text();
  return { text, samples: parseExposition(text) };
}

/** A process whose comm is `name` (a copy of sleep), once the kernel shows that name. */
async function startNamed(name: string): Promise<ChildProcess> {
  const child = spawn(join(dir, name), ['30'], { stdio: 'ignore' });
  children.push(child);
  await once(child, 'spawn');
  for (let i = 0; (await readFile(`/proc/${child.pid}/comm`, 'utf8')).trim() !== name; i++) {
    if (i > 500) throw new Error(`${name} did not exec`);
    await new Promise((r) => setTimeout(r, 2));
  }
  return child;
}

/** A process with RELAY_MARK on its command line (as `pgrep -f` would see the relay). */
async function startRelay(): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 60_000)', RELAY_MARK], { stdio: 'ignore' });
  children.push(child);
  await once(child, 'spawn');
  for (let i = 0; !(await readFile(`/proc/${child.pid}/cmdline`, 'utf8')).includes(RELAY_MARK); i++) {
    if (i > 500) throw new Error('relay stand-in did not exec');
    await new Promise((r) => setTimeout(r, 2));
  }
  return child;
}

/** A Unix socket that counts every connection (the relay's registration socket must only ever be stat()ed). */
async function registrationTrap(path: string): Promise<{ connections: () => number; close: () => Promise<void> }> {
  let connections = 0;
  const server: Server = createServer((s) => {
    connections++;
    s.destroy();
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return { connections: () => connections, close: () => new Promise((r) => server.close(() => r())) };
}

describe('exporter/config', () => {
  it('requires SUPERVISOR_IPC_PATH, takes the documented defaults, and refuses bad values by name', () => {
    expect(() => loadExporterConfig({})).toThrow(/SUPERVISOR_IPC_PATH/);
    const c = loadExporterConfig({ SUPERVISOR_IPC_PATH: '/run/s.sock' });
    expect(c).toMatchObject({ EXPORTER_PORT: 9466, IPC_TIMEOUT: 2000, RELAY_PROCESS_PATTERN: 'rust-supervisor-relay' });
    expect(c.SUPERVISOR_PROCESS).toBeUndefined();
    expect(() => loadExporterConfig({ SUPERVISOR_IPC_PATH: 'relative.sock' })).toThrow(/SUPERVISOR_IPC_PATH/);
    expect(() => loadExporterConfig({ SUPERVISOR_IPC_PATH: '/s', SUPERVISOR_PROCESS: 'rust-supervisor-host' })).toThrow(
      /SUPERVISOR_PROCESS: Linux shows at most 15/,
    );
    expect(() => loadExporterConfig({ SUPERVISOR_IPC_PATH: '/s', RELAY_PROCESS_PATTERN: '(' })).toThrow(/RELAY_PROCESS_PATTERN/);
    expect(() => loadExporterConfig({ SUPERVISOR_IPC_PATH: '/s', IPC_TIMEOUT: '2' })).toThrow(/IPC_TIMEOUT/);
    expect(loadExporterConfig({ SUPERVISOR_IPC_PATH: '/s', RELAY_PROCESS_PATTERN: '' }).RELAY_PROCESS_PATTERN).toBe('');
    expect(Object.keys(ExporterConfig.shape)).toEqual(
      expect.arrayContaining([
        'SUPERVISOR_IPC_PATH',
        'EXPORTER_PORT',
        'EXPORTER_HOST',
        'SUPERVISOR_PROCESS',
        'RELAY_PROCESS_PATTERN',
        'RELAY_REGISTRATION_PATH',
        'IPC_TIMEOUT',
        'SUPERVISOR_TARGET_ID',
      ]),
    );
  });
});

describe('exporter docs', () => {
  it('docs/supervisor.md documents every setting and every series; the README every setting', async () => {
    const { readFileSync } = await import('node:fs');
    const { SERIES } = await import('../../../src/exporter/series.js');
    const docs = readFileSync(new URL('../../../docs/supervisor.md', import.meta.url), 'utf8');
    const readme = readFileSync(new URL('../../../README.md', import.meta.url), 'utf8');
    for (const key of Object.keys(ExporterConfig.shape)) {
      expect(docs, key).toContain(`| \`${key}\` |`);
      expect(readme, key).toContain(`\`${key}\``);
    }
    for (const [name] of Object.values(SERIES)) expect(docs, name).toContain(`| \`${name}\` |`);
  });
});

describe('exporter', () => {
  it('exports what hello, state, /proc and stat measured; /metrics passes promtool check metrics', async () => {
    supervisor = await startFakeSupervisor({ hello: goldenAnswer('hello'), state: goldenAnswer('state-crash-loop') });
    await startNamed(SUPERVISOR_NAME);
    await startRelay();
    const registration = join(dir, `reg-${tag}.sock`);
    const trap = await registrationTrap(registration);
    try {
      const e = await start({
        SUPERVISOR_IPC_PATH: supervisor.path,
        SUPERVISOR_PROCESS: SUPERVISOR_NAME,
        RELAY_REGISTRATION_PATH: registration,
      });
      const { text, samples } = await scrape(e);

      expect(valueOf(samples, 'supervisor_ipc_up')).toBe(1);
      expect(valueOf(samples, 'supervisor_ipc_socket_present')).toBe(1);
      expect(valueOf(samples, 'supervisor_ipc_state_ok')).toBe(1);
      expect(valueOf(samples, 'supervisor_ipc_state_duration_seconds')).toBeGreaterThan(0);
      expect(valueOf(samples, 'supervisor_process_up')).toBe(1);
      expect(valueOf(samples, 'supervisor_process_start_time_seconds')).toBeGreaterThan(1.6e9);
      expect(valueOf(samples, 'supervisor_relay_process_up')).toBe(1);
      expect(valueOf(samples, 'supervisor_relay_registration_socket_present')).toBe(1);
      expect(valueOf(samples, 'supervisor_target_info', { target_id: 'payments-worker-a' })).toBe(1);
      // state-crash-loop: ledger_sync used 3 of a limit of 2, exhausted, no attempt; payment_loop healthy.
      const state = parseWireJson(goldenAnswer('state-crash-loop')) as {
        result: { state: { topology: { nodes: { kind: string }[] } } };
      };
      expect(valueOf(samples, 'supervisor_children_declared')).toBe(
        state.result.state.topology.nodes.filter((n) => n.kind === 'child_task').length,
      );
      expect(valueOf(samples, 'supervisor_child_restart_limit_used', { child_id: 'ledger_sync' })).toBe(3);
      expect(valueOf(samples, 'supervisor_child_restart_limit_remaining', { child_id: 'ledger_sync' })).toBe(0);
      expect(valueOf(samples, 'supervisor_child_restart_limit_exhausted', { child_id: 'ledger_sync' })).toBe(1);
      expect(valueOf(samples, 'supervisor_child_restart_limit', { child_id: 'ledger_sync' })).toBe(2);
      expect(valueOf(samples, 'supervisor_child_attempt_active', { child_id: 'ledger_sync' })).toBe(0);
      expect(valueOf(samples, 'supervisor_child_attempt_status', { child_id: 'ledger_sync', status: 'none' })).toBe(1);
      expect(valueOf(samples, 'supervisor_child_heartbeat_stale', { child_id: 'ledger_sync' })).toBe(0);
      // One-hot: exactly one operation is 1 per child, and every operation has a series.
      for (const child of ['ledger_sync', 'payment_loop']) {
        const ops = samplesOf(samples, 'supervisor_child_operation', { child_id: child });
        expect(ops.map((s) => s.labels.operation).sort()).toEqual(['active', 'paused', 'quarantined', 'removed']);
        expect(ops.filter((s) => s.value === 1).map((s) => s.labels.operation)).toEqual(['active']);
      }
      expect(valueOf(samples, 'supervisor_child_attempt_active', { child_id: 'payment_loop' })).toBe(1);
      // The exporter never writes the labels Prometheus attaches.
      for (const s of samples) {
        expect(s.labels).not.toHaveProperty('instance');
        expect(s.labels).not.toHaveProperty('job');
      }
      expect(valueOf(samples, 'supervisor_exporter_scrapes_total')).toBe(1);
      for (const stage of ['ipc_socket', 'hello', 'state', 'process', 'relay_process', 'relay_registration'])
        expect(valueOf(samples, 'supervisor_exporter_scrape_errors_total', { stage })).toBe(0);

      const lint = await promtoolCheckMetrics(text);
      expect(lint, lint.output).toEqual({ code: 0, output: '' });
      expect(trap.connections(), 'nothing may connect to the relay registration socket').toBe(0);
    } finally {
      await trap.close();
    }
  });

  it('a stalled control loop (hello answers, state hangs) reads as state_ok 0 within the one scrape, with the last good state kept', async () => {
    supervisor = await startFakeSupervisor({ hello: goldenAnswer('hello'), state: goldenAnswer('state-healthy') });
    // IPC_TIMEOUT is long; Prometheus's scrape timeout (the header) is what bounds the stalled scrape.
    const e = await start({ SUPERVISOR_IPC_PATH: supervisor.path, IPC_TIMEOUT: '30s' });
    const good = await scrape(e);
    expect(valueOf(good.samples, 'supervisor_ipc_state_ok')).toBe(1);
    const goodAt = valueOf(good.samples, 'supervisor_ipc_state_last_success_timestamp_seconds');
    expect(goodAt).toBeGreaterThan(1.6e9);

    supervisor.answers.set('state', 'hang');
    // Prometheus gives up after 1 s: the state call gets 1 s minus the exporter's 250 ms margin, not 30 s.
    const stalled = await scrape(e, { 'X-Prometheus-Scrape-Timeout-Seconds': '1' });
    expect(valueOf(stalled.samples, 'supervisor_ipc_up')).toBe(1);
    expect(valueOf(stalled.samples, 'supervisor_ipc_state_ok')).toBe(0);
    const seconds = valueOf(stalled.samples, 'supervisor_ipc_state_duration_seconds')!;
    // A Node timer may fire a fraction of a millisecond before performance.now() says 750 ms have passed.
    expect(seconds).toBeGreaterThanOrEqual(0.74);
    expect(seconds).toBeLessThan(30);
    // Only what was measured: no child series without a state answer; the last good state's time stays.
    expect(samplesOf(stalled.samples, 'supervisor_child_operation')).toEqual([]);
    expect(valueOf(stalled.samples, 'supervisor_children_declared')).toBeUndefined();
    expect(valueOf(stalled.samples, 'supervisor_ipc_state_last_success_timestamp_seconds')).toBe(goodAt);
    expect(valueOf(stalled.samples, 'supervisor_exporter_scrape_errors_total', { stage: 'state' })).toBe(1);
    expect(valueOf(stalled.samples, 'supervisor_exporter_last_scrape_error', { stage: 'state' })).toBe(1);
    expect(valueOf(stalled.samples, 'supervisor_exporter_last_scrape_error', { stage: 'hello' })).toBe(0);
    expect((await promtoolCheckMetrics(stalled.text)).code).toBe(0);

    // The snapshot: hello now, and the last good state exactly as the supervisor wrote it.
    const snapshot = await (await fetch(`http://127.0.0.1:${e.port}/snapshot`)).text();
    const parsed = parseWireJson(snapshot) as {
      target_id: string;
      last_scrape: { ipc_up: boolean; state_ok: boolean; state_timed_out: boolean };
      hello: { answer: { ok: boolean } };
      last_good_state: { at: string; answer: { result: { type: string } } };
    };
    expect(parsed.target_id).toBe('payments-worker-a');
    expect(parsed.last_scrape).toMatchObject({ ipc_up: true, state_ok: false, state_timed_out: true });
    expect(parsed.hello.answer.ok).toBe(true);
    expect(parsed.last_good_state.answer.result.type).toBe('state');
    expect(snapshot).toContain('"generated_at_unix_nanos":1747650000000000000'); // every digit, not 1747650000000000000 rounded
  });

  it('Prometheus scrape timeout shorter than IPC_TIMEOUT shortens the IPC calls', async () => {
    supervisor = await startFakeSupervisor({ hello: goldenAnswer('hello'), state: 'hang' });
    const e = await start({ SUPERVISOR_IPC_PATH: supervisor.path, IPC_TIMEOUT: '30s' });
    const { samples } = await scrape(e, { 'X-Prometheus-Scrape-Timeout-Seconds': '0.6' });
    expect(valueOf(samples, 'supervisor_ipc_state_ok')).toBe(0);
    expect(valueOf(samples, 'supervisor_ipc_state_duration_seconds')).toBeLessThan(10); // 0.35 s asked, not 30 s
  });

  it('no supervisor: ipc_up 0, no socket, process down, relay gone and no registration socket, each measured as 0', async () => {
    const missing = join(dir, `gone-${tag}.sock`);
    const e = await start({
      SUPERVISOR_IPC_PATH: missing,
      SUPERVISOR_PROCESS: `nope${tag}`,
      RELAY_REGISTRATION_PATH: join(dir, 'no-registration.sock'),
      SUPERVISOR_TARGET_ID: 'payments-worker-a',
    });
    const { text, samples } = await scrape(e);
    expect(valueOf(samples, 'supervisor_ipc_up')).toBe(0);
    expect(valueOf(samples, 'supervisor_ipc_socket_present')).toBe(0);
    expect(valueOf(samples, 'supervisor_ipc_state_ok')).toBe(0);
    expect(valueOf(samples, 'supervisor_process_up')).toBe(0);
    expect(valueOf(samples, 'supervisor_process_start_time_seconds')).toBeUndefined();
    expect(valueOf(samples, 'supervisor_relay_process_up')).toBe(0);
    expect(valueOf(samples, 'supervisor_relay_registration_socket_present')).toBe(0);
    // The configured target id names the supervisor even when nothing answers.
    expect(valueOf(samples, 'supervisor_target_info', { target_id: 'payments-worker-a' })).toBe(1);
    expect(valueOf(samples, 'supervisor_exporter_scrape_errors_total', { stage: 'hello' })).toBe(1);
    expect(valueOf(samples, 'supervisor_exporter_scrape_errors_total', { stage: 'process' })).toBe(0);
    expect((await promtoolCheckMetrics(text)).code).toBe(0);
  });

  it('what is not configured is not exported: no SUPERVISOR_PROCESS, RELAY_PROCESS_PATTERN empty, no RELAY_REGISTRATION_PATH', async () => {
    supervisor = await startFakeSupervisor({ hello: goldenAnswer('hello'), state: goldenAnswer('state-healthy') });
    const e = await start({ SUPERVISOR_IPC_PATH: supervisor.path, RELAY_PROCESS_PATTERN: '' });
    const { samples } = await scrape(e);
    for (const name of ['supervisor_process_up', 'supervisor_relay_process_up', 'supervisor_relay_registration_socket_present'])
      expect(valueOf(samples, name), name).toBeUndefined();
    expect(valueOf(samples, 'supervisor_ipc_up')).toBe(1);
  });

  it('hello without registration (validation_failed) still means the socket answers; the target id comes from state', async () => {
    supervisor = await startFakeSupervisor({
      hello: goldenAnswer('hello-registration-disabled'),
      state: goldenAnswer('state-healthy'),
    });
    const e = await start({ SUPERVISOR_IPC_PATH: supervisor.path });
    const { samples } = await scrape(e);
    expect(valueOf(samples, 'supervisor_ipc_up')).toBe(1);
    expect(valueOf(samples, 'supervisor_exporter_last_scrape_error', { stage: 'hello' })).toBe(0);
    expect(valueOf(samples, 'supervisor_target_info', { target_id: 'payments-worker-a' })).toBe(1);
    // The next scrape sends the learned target id with state, as the relay does.
    await scrape(e);
    expect(
      supervisor
        .requests()
        .filter((r) => r.method === 'state')
        .at(-1)?.params,
    ).toEqual({ target_id: 'payments-worker-a' });
  });

  it('a configured target id the supervisor does not answer to is a hello scrape error (its commands would be refused)', async () => {
    supervisor = await startFakeSupervisor({ hello: goldenAnswer('hello'), state: goldenAnswer('state-healthy') });
    const e = await start({ SUPERVISOR_IPC_PATH: supervisor.path, SUPERVISOR_TARGET_ID: 'someone-else' });
    const { samples } = await scrape(e);
    expect(valueOf(samples, 'supervisor_exporter_last_scrape_error', { stage: 'hello' })).toBe(1);
    expect(valueOf(samples, 'supervisor_target_info', { target_id: 'someone-else' })).toBe(1);
  });

  it('concurrent scrapes share one measurement: the supervisor is asked once', async () => {
    supervisor = await startFakeSupervisor({ hello: goldenAnswer('hello'), state: goldenAnswer('state-healthy') });
    const e = await start({ SUPERVISOR_IPC_PATH: supervisor.path });
    await Promise.all([scrape(e), scrape(e), scrape(e)]);
    expect(supervisor.requests().filter((r) => r.method === 'state').length).toBeLessThan(3);
  });

  it('serves a landing page and /healthz', async () => {
    const e = await start({ SUPERVISOR_IPC_PATH: join(dir, 'none.sock') });
    expect(await (await fetch(`http://127.0.0.1:${e.port}/healthz`)).text()).toBe('ok\n');
    expect(await (await fetch(`http://127.0.0.1:${e.port}/`)).text()).toContain('href="metrics"');
  });
});
