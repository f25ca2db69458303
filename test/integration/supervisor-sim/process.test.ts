/**
 * The simulated host as a process: how it binds its socket (create_new / replace_stale with the real error texts
 * and the real fatal print), what it leaves behind (socket removed on a clean exit, left on SIGKILL), how a panic
 * ends it (Rust's message, exit 101, no core file), and its name as Linux shows it.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startSupervisor, type SupervisorProcess } from '../../../sim/launch.js';
import { createIpcClient } from '../../../src/supervisor/ipc-client.js';

const running: SupervisorProcess[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => p.stop(2000)));
});

async function start(
  dir: string,
  extra: Record<string, unknown> = {},
  ipc: Record<string, unknown> = {},
  wait: 'hello' | 'none' = 'hello',
) {
  const p = await startSupervisor({ dir, config: { children: [{ name: 'payment_loop' }], ...extra, ipc }, wait });
  running.push(p);
  return p;
}

const fatal = (msg: string) =>
  `Error: FatalConfig { message: "dashboard IPC startup failed: validation_failed at ipc_bind: ${msg}" }\n`;

describe('sim/supervisor process surface', () => {
  it('create_new refuses an existing path with the real fatal print and exit 1', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'supsim-'));
    writeFileSync(join(dir, 'supervisor.sock'), '');
    const p = await start(dir, {}, {}, 'none');
    expect(await p.exited).toEqual({ code: 1, signal: null });
    expect(p.stderr()).toBe(fatal('IPC path already exists and bind_mode is create_new'));
  });

  it('replace_stale refuses a live socket, a symlink and a non-socket; unlinks a stale one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'supsim-'));
    const first = await start(dir);
    const live = await start(dir, {}, { bind_mode: 'replace_stale' }, 'none');
    expect(await live.exited).toMatchObject({ code: 1 });
    expect(live.stderr()).toBe(fatal('IPC path is served by a live process'));

    first.kill('SIGKILL');
    await first.exited;
    expect(statSync(first.ipcPath).isSocket()).toBe(true); // SIGKILL: no destructor, the file stays
    const blocked = await start(dir, {}, {}, 'none'); // default create_new: the stale file blocks the start
    expect(await blocked.exited).toMatchObject({ code: 1 });
    expect(blocked.stderr()).toBe(fatal('IPC path already exists and bind_mode is create_new'));
    const replaced = await start(dir, {}, { bind_mode: 'replace_stale' });
    expect((await createIpcClient({ path: replaced.ipcPath }).state(replaced.targetId)).response.ok).toBe(true);

    const other = mkdtempSync(join(tmpdir(), 'supsim-'));
    writeFileSync(join(other, 'plain'), '');
    symlinkSync(join(other, 'plain'), join(other, 'supervisor.sock'));
    const viaLink = await start(other, {}, { bind_mode: 'replace_stale' }, 'none');
    expect(await viaLink.exited).toMatchObject({ code: 1 });
    expect(viaLink.stderr()).toBe(fatal('IPC path must not be a symlink'));
    const third = mkdtempSync(join(tmpdir(), 'supsim-'));
    writeFileSync(join(third, 'supervisor.sock'), 'not a socket');
    const regular = await start(third, {}, { bind_mode: 'replace_stale' }, 'none');
    expect(await regular.exited).toMatchObject({ code: 1 });
    expect(regular.stderr()).toBe(fatal('IPC path must be a Unix socket before stale replacement'));
  });

  it('a clean stop (SIGINT, or SIGTERM in a host that handles it) removes the socket and exits 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'supsim-'));
    const p = await start(dir, { sim: { lifecycle_log: true } });
    p.kill('SIGTERM');
    expect(await p.exited).toEqual({ code: 0, signal: null });
    expect(existsSync(p.ipcPath)).toBe(false);
    expect(p.stdout()).toContain('shutdown_phase_changed:Reconcile:Completed\n');
  });

  it('sigterm: default (a host without a handler) dies on SIGTERM and leaves the socket', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'supsim-'));
    const p = await start(dir, { sim: { sigterm: 'default' } });
    p.kill('SIGTERM');
    expect((await p.exited).signal).toBe('SIGKILL');
    expect(statSync(p.ipcPath).isSocket()).toBe(true);
  });

  it('the socket mode follows the umask (ipc.permissions is never applied)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'supsim-'));
    const p = await start(dir, {}, { permissions: '0600' });
    const mode = statSync(p.ipcPath).mode & 0o777;
    expect(mode).toBe(0o777 & ~process.umask());
  });

  it("a panic in main prints Rust's message, removes the socket while unwinding, exits 101 without a core file", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'supsim-'));
    const p = await start(dir, { sim: { panic_location: 'src/main.rs:57:9' } });
    await p.fault('panic', { message: 'supervisor invariant violated' });
    expect(await p.exited).toEqual({ code: 101, signal: null });
    expect(p.stderr()).toBe(
      "thread 'main' panicked at src/main.rs:57:9:\nsupervisor invariant violated\nnote: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n",
    );
    expect(existsSync(p.ipcPath)).toBe(false);
    expect(readdirSync(dir).filter((f) => f.startsWith('core'))).toEqual([]);
    expect(readdirSync(process.cwd()).filter((f) => /^core(\.|$)/.test(f))).toEqual([]);
  });

  it('is named as configured in /proc/<pid>/comm (cut to 15 characters)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'supsim-'));
    const p = await start(dir, { sim: { process_name: 'payments-worker-extended' } });
    expect(readFileSync(`/proc/${p.pid}/comm`, 'utf8').trim()).toBe('payments-worker');
  });
});
