/**
 * The relay stand-in and the supervisor's registration heartbeat: names as Linux shows them, the exact ack,
 * the probe trap (a connection without a valid registration ends the registration loop for good while the
 * process stays up), and the service-manager stand-ins that restart both programs hands-off.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { SIM_BIN, startRelay, startSupervisor, type SimProcess } from '../../../sim/launch.js';
import { createIpcClient } from '../../../src/supervisor/ipc-client.js';
import { COMMAND_KINDS } from '../../../src/supervisor/protocol.js';
import { startLineServer, type LineServer } from '../../helpers/line-server.js';

const run = promisify(execFile);
const running: SimProcess[] = [];
let lineServer: LineServer | undefined;
afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => p.stop(2000)));
  await lineServer?.close();
  lineServer = undefined;
});

const REGISTRATION = (dir: string, target = 'payments-worker-a') =>
  JSON.stringify({
    target_id: target,
    display_name: 'payments worker a',
    ipc_path: join(dir, 'supervisor.sock'),
    lease_seconds: 30,
    supported_commands: [{ name: 'restart_child', idempotent: false, timeout_seconds: 30 }],
  });

/** Connect, write `line` (if any), read one line or the close. */
function talk(path: string, line: string | undefined): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ path });
    let buf = '';
    s.once('connect', () => (line === undefined ? s.end() : s.write(`${line}\n`)));
    s.on('data', (c: Buffer) => (buf += c.toString('utf8')));
    s.once('close', () => resolve(buf));
    s.once('error', reject);
  });
}

describe('sim relay stand-in and registration', () => {
  it('runs as rust-supervisor-relay with comm rust-supervisor; pgrep -x never finds it, pgrep -f does', async () => {
    const relay = await startRelay();
    running.push(relay);
    expect(readFileSync(`/proc/${relay.pid}/comm`, 'utf8').trim()).toBe('rust-supervisor');
    expect(readFileSync(`/proc/${relay.pid}/cmdline`, 'utf8').startsWith('rust-supervisor-relay --config ')).toBe(true);
    await expect(run('pgrep', ['-x', 'rust-supervisor-relay'])).rejects.toMatchObject({ code: 1 });
    const { stdout } = await run('pgrep', ['-f', `rust-supervisor-relay --config ${relay.configFile}`]);
    expect(stdout.trim().split('\n')).toContain(String(relay.pid));
    expect(relay.stdout()).toBe('relay listening on wss://localhost:9443/supervisor\n');
  });

  it('acks a registration with the exact line; a bare connect-and-close ends its registration loop for good', async () => {
    const relay = await startRelay();
    running.push(relay);
    expect(await talk(relay.listenPath, REGISTRATION(relay.dir))).toBe(
      '{"ok":true,"retryable":false,"status":"registered","target_id":"payments-worker-a"}\n',
    );
    expect(await talk(relay.listenPath, REGISTRATION('/elsewhere'))).toBe(
      '{"error":{"code":"ipc_path_not_allowed","message":"IPC path is outside allowed prefixes"},"ok":false,"retryable":false}\n',
    );
    await talk(relay.listenPath, undefined); // the probe
    // A registration racing the loop's end may still be accepted into the backlog and then reset; none is acked,
    // and once the listener is gone every connection is refused.
    let refused = false;
    for (let i = 0; i < 50 && !refused; i++) {
      const answer = await talk(relay.listenPath, REGISTRATION(relay.dir)).catch((e: NodeJS.ErrnoException) => e.code);
      expect(['ECONNREFUSED', 'ECONNRESET', 'EPIPE', ''], String(answer)).toContain(answer);
      refused = answer === 'ECONNREFUSED';
    }
    expect(refused).toBe(true);
    expect(statSync(relay.listenPath).isSocket()).toBe(true);
    expect(readFileSync(`/proc/${relay.pid}/comm`, 'utf8').trim()).toBe('rust-supervisor'); // still up
    expect(relay.stdout() + relay.stderr()).toBe('relay listening on wss://localhost:9443/supervisor\n'); // and silent
  });

  it('the supervisor sends TargetProcessRegistration every heartbeat interval and ignores failures', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'supsim-'));
    let n = 0;
    lineServer = await startLineServer(() =>
      ++n === 1 ? 'close' : '{"ok":true,"retryable":false,"status":"registered","target_id":"payments-worker-a"}\n',
    );
    const sup = await startSupervisor({ dir, relay: { listenPath: lineServer.path }, heartbeatSeconds: 1 });
    running.push(sup);
    const deadline = Date.now() + 10_000;
    while (lineServer.lines.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(lineServer.lines.length).toBeGreaterThanOrEqual(3);
    expect(lineServer.lines[0]).toBe(
      `{"target_id":"payments-worker-a","display_name":"payments worker a","ipc_path":"${sup.ipcPath}","lease_seconds":30,"supported_commands":[${COMMAND_KINDS.map(
        (c) => `{"name":"${c}","idempotent":false,"timeout_seconds":30}`,
      ).join(',')}]}`,
    );
    expect(sup.stdout() + sup.stderr()).toBe('');
  });

  it('restart-relay and restart-supervisor restart both programs hands-off; after a SIGKILL create_new refuses the stale socket', async () => {
    const relay = await startRelay();
    running.push(relay);
    const sup = await startSupervisor({ dir: relay.dir, relay: { listenPath: relay.listenPath } });
    running.push(sup);
    const relayPid = join(relay.dir, 'relay.pid');
    const supPid = join(relay.dir, 'supervisor.pid');

    await run(join(SIM_BIN, 'restart-relay'), ['--config', relay.configFile, '--pid-file', relayPid]);
    const newRelay = Number(readFileSync(relayPid, 'utf8'));
    expect(readFileSync(`/proc/${newRelay}/comm`, 'utf8').trim()).toBe('rust-supervisor');

    await sup.stop();
    await run(join(SIM_BIN, 'restart-supervisor'), ['--config', sup.configFile, '--pid-file', supPid]);
    const first = Number(readFileSync(supPid, 'utf8'));
    expect((await createIpcClient({ path: sup.ipcPath }).hello()).response.ok).toBe(true);
    process.kill(first, 'SIGKILL');
    while (existsSync(`/proc/${first}/stat`) && !readFileSync(`/proc/${first}/stat`, 'utf8').includes(') Z '))
      await new Promise((r) => setTimeout(r, 20));
    const failed = await run(join(SIM_BIN, 'restart-supervisor'), [
      '--config',
      sup.configFile,
      '--pid-file',
      supPid,
      '--start-timeout-ms',
      '10000',
    ]).catch((e: { code: number; stderr: string }) => e);
    expect(failed).toMatchObject({ code: 1 });
    expect((failed as { stderr: string }).stderr).toContain('IPC path already exists and bind_mode is create_new');
    for (const f of [relayPid, supPid]) {
      const pid = Number(readFileSync(f, 'utf8'));
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }, 60_000);
});
