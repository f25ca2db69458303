import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { staleSocket } from '../../../src/actions/stale-socket.js';
import { actionContext, describeActionContract } from './contract.js';

describeActionContract(staleSocket, { valid: { path: '{{ vars.ipc_path }}' } });

const dir = mkdtempSync(join(tmpdir(), 'stale-socket-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A socket file nobody listens on: a process that bound it, SIGKILLed (nothing unlinks the file). */
async function staleAt(path: string): Promise<void> {
  const child = spawn(process.execPath, ['-e', `require('node:net').createServer().listen(${JSON.stringify(path)})`], {
    stdio: 'ignore',
  });
  const exited = new Promise((r) => child.once('exit', r));
  while (!existsSync(path)) await delay(10);
  child.kill('SIGKILL');
  await exited;
}

function listen(path: string): Promise<Server> {
  const server = createServer((c) => c.end());
  return new Promise((r) => server.listen(path, () => r(server)));
}

describe('actions/staleSocket', () => {
  it('removes a socket nobody listens on (a SIGKILLed supervisor left it behind)', async () => {
    const path = join(dir, 'stale.sock');
    await staleAt(path);
    expect(existsSync(path)).toBe(true);
    const r = await staleSocket.run({ path }, actionContext());
    expect(r).toMatchObject({ status: 'succeeded', detail: { path, state: 'removed' } });
    expect(r.output).toMatch(/^removed stale socket .*connection refused/);
    expect(existsSync(path)).toBe(false);
  });

  it('leaves a live socket alone and fails with the real program words', async () => {
    const path = join(dir, 'live.sock');
    const server = await listen(path);
    try {
      const r = await staleSocket.run({ path }, actionContext());
      expect(r).toMatchObject({ status: 'failed', detail: { state: 'live' } });
      expect(r.output).toMatch(/IPC path is served by a live process/);
      expect(existsSync(path)).toBe(true);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });

  it('leaves a regular file, a directory and a symlink alone', async () => {
    const file = join(dir, 'file.sock');
    writeFileSync(file, 'x');
    const folder = join(dir, 'folder.sock');
    mkdirSync(folder);
    const link = join(dir, 'link.sock');
    symlinkSync(file, link);
    for (const [path, state] of [
      [file, 'not_a_socket'],
      [folder, 'directory'],
      [link, 'symlink'],
    ] as const) {
      const r = await staleSocket.run({ path }, actionContext());
      expect(r, path).toMatchObject({ status: 'failed', detail: { state } });
      expect(existsSync(path)).toBe(true);
    }
  });

  it('succeeds with nothing to do when there is no file', async () => {
    const r = await staleSocket.run({ path: join(dir, 'none.sock') }, actionContext());
    expect(r).toMatchObject({ status: 'succeeded', detail: { state: 'absent' } });
  });

  it('takes the path from operator values only', () => {
    expect(staleSocket.spec.safeParse({ path: '{{ labels.path }}' }).success).toBe(false);
    expect(staleSocket.spec.safeParse({ path: '/run/rust-supervisor/a.sock' }).success).toBe(true);
  });
});
