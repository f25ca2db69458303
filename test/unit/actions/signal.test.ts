import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { findByName, signal } from '../../../src/actions/signal.js';
import { ActionError } from '../../../src/actions/types.js';
import { actionContext, describeActionContract } from './contract.js';

/**
 * Real processes: copies of /bin/sleep under distinctive names, so that comm (the process name pgrep -x
 * matches) is ours and nothing else on the machine can be hit.
 */
const tag = randomBytes(3).toString('hex');
const NAME = `rt${tag}`; // e.g. rt1a2b3c
const SLEEPY = `${NAME}y`; // a longer name with NAME as prefix: must not match
const LONG = `remediator-test-${tag}-relay`; // over comm's 15 characters
const LONG_SIBLING = `${LONG}2`; // same first 15 characters

let dir: string;
const children: ChildProcess[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'remediator-signal-'));
  for (const name of [NAME, SLEEPY, LONG, LONG_SIBLING]) await copyFile('/bin/sleep', join(dir, name));
});
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** Starts a sleeping process named `name` and resolves once the kernel shows that name for it. */
async function start(name: string): Promise<ChildProcess & { pid: number }> {
  const child = spawn(join(dir, name), ['30'], { stdio: 'ignore' });
  children.push(child);
  await once(child, 'spawn');
  // After fork and before execve the child still has the parent's name; wait for the exec.
  for (let i = 0; (await readFile(`/proc/${child.pid}/comm`, 'utf8')).trim() !== name.slice(0, 15); i++) {
    if (i > 500) throw new Error(`${name} did not exec`);
    await new Promise((r) => setTimeout(r, 2));
  }
  return child as ChildProcess & { pid: number };
}

function exited(child: ChildProcess): Promise<NodeJS.Signals | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.signalCode);
  return once(child, 'exit').then(([, sig]) => sig as NodeJS.Signals | null);
}

describeActionContract(signal, {
  valid: { process: 'relay', signal: 'SIGTERM' },
  // signal is instantaneous and prints one line per pid: no slow run, no big output.
  failing: () => ({ pidFile: dir, signal: 'SIGTERM' as const }), // a directory: cannot be read as a pid file
});

describe('actions/signal', () => {
  it('signals every process with exactly that name, and only those', async () => {
    const [a, b, sleepy] = [await start(NAME), await start(NAME), await start(SLEEPY)];
    const result = await signal.run({ process: NAME, signal: 'SIGTERM' }, actionContext());
    const pids = [a.pid, b.pid].sort((x, y) => x - y);
    expect(result).toEqual({
      status: 'succeeded',
      output: `SIGTERM sent to ${NAME} (pids ${pids.join(', ')})`,
      detail: { pids },
    });
    expect(await exited(a)).toBe('SIGTERM');
    expect(await exited(b)).toBe('SIGTERM');
    expect(sleepy.exitCode === null && sleepy.signalCode === null).toBe(true);
  });

  it('one process: "SIGTERM sent to NAME (pid N)"', async () => {
    const a = await start(NAME);
    const result = await signal.run({ process: NAME, signal: 'SIGUSR1' }, actionContext());
    expect(result.output).toBe(`SIGUSR1 sent to ${NAME} (pid ${a.pid})`);
    expect(await exited(a)).toBe('SIGUSR1');
  });

  it('a name longer than comm holds matches by argv[0], not by the truncated comm alone', async () => {
    const [relay, sibling] = [await start(LONG), await start(LONG_SIBLING)];
    expect(await findByName(LONG)).toEqual([relay.pid]);
    expect(await findByName(LONG.slice(0, 15))).toEqual([relay.pid, sibling.pid].sort((x, y) => x - y));
    const result = await signal.run({ process: LONG, signal: 'SIGTERM' }, actionContext());
    expect(result.detail).toEqual({ pids: [relay.pid] });
    expect(await exited(relay)).toBe('SIGTERM');
    expect(sibling.exitCode === null && sibling.signalCode === null).toBe(true);
  });

  it('no such process: a failed result that says so, not an exception', async () => {
    const sleepy = await start(SLEEPY);
    const result = await signal.run({ process: NAME, signal: 'SIGTERM' }, actionContext());
    expect(result).toEqual({
      status: 'failed',
      output: `no process named "${NAME}" found; nothing signalled`,
      detail: { pids: [] },
    });
    expect(sleepy.signalCode).toBeNull();
  });

  it('never finds remediator itself', async () => {
    const self = (await readFile('/proc/self/comm', 'utf8')).trim();
    expect(await findByName(self)).not.toContain(process.pid);
  });

  it('pid file: signals the pid in it', async () => {
    const a = await start(NAME);
    const pidFile = join(dir, 'relay.pid');
    await writeFile(pidFile, ` ${a.pid}\n`);
    const result = await signal.run({ pidFile, signal: 'SIGTERM' }, actionContext());
    expect(result).toEqual({
      status: 'succeeded',
      output: `SIGTERM sent to pid ${a.pid} (from ${pidFile})`,
      detail: { pids: [a.pid] },
    });
    expect(await exited(a)).toBe('SIGTERM');
  });

  it.each`
    content          | problem
    ${'garbage'}     | ${'does not hold a pid: "garbage"'}
    ${''}            | ${'does not hold a pid: ""'}
    ${'-5'}          | ${'does not hold a pid'}
    ${'12 34'}       | ${'does not hold a pid'}
    ${'1'}           | ${'names pid 1, which is never signalled'}
    ${'0'}           | ${'names pid 0, which is never signalled'}
    ${'99999999999'} | ${'does not hold a pid'}
  `(
    'pid file holding $content: failed, nothing signalled',
    async ({ content, problem }: { content: string; problem: string }) => {
      const pidFile = join(dir, 'bad.pid');
      await writeFile(pidFile, content);
      const result = await signal.run({ pidFile, signal: 'SIGTERM' }, actionContext());
      expect(result.status).toBe('failed');
      expect(result.output).toContain(problem);
      expect(result.detail).toEqual({ pids: [] });
    },
  );

  it('pid file naming remediator itself: refused', async () => {
    const pidFile = join(dir, 'self.pid');
    await writeFile(pidFile, String(process.pid));
    const result = await signal.run({ pidFile, signal: 'SIGTERM' }, actionContext());
    expect(result).toMatchObject({ status: 'failed', detail: { pids: [] } });
    expect(result.output).toContain('never signalled');
  });

  it('a stale pid file (process gone): failed, saying so', async () => {
    const a = await start(NAME);
    a.kill('SIGKILL');
    await exited(a);
    const pidFile = join(dir, 'stale.pid');
    await writeFile(pidFile, String(a.pid));
    const result = await signal.run({ pidFile, signal: 'SIGTERM' }, actionContext());
    expect(result.status).toBe('failed');
    expect(result.output).toContain(`pid ${a.pid} no longer exists`);
  });

  it('a missing pid file: failed, not an exception', async () => {
    const result = await signal.run({ pidFile: join(dir, 'missing.pid'), signal: 'SIGTERM' }, actionContext());
    expect(result).toMatchObject({ status: 'failed', detail: { pids: [] } });
    expect(result.output).toContain('does not exist');
  });

  it('an unreadable pid file: a non-retryable ActionError naming it', async () => {
    const err = await signal.run({ pidFile: dir, signal: 'SIGTERM' }, actionContext()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ActionError);
    expect(err).toMatchObject({ retryable: false });
    expect((err as Error).message).toContain(dir);
  });

  it('an aborted signal sends nothing', async () => {
    const a = await start(NAME);
    await expect(signal.run({ process: NAME, signal: 'SIGKILL' }, actionContext(AbortSignal.abort()))).rejects.toThrow();
    expect(a.exitCode === null && a.signalCode === null).toBe(true);
  });

  it('spec: exactly one of process or pidFile', () => {
    expect(signal.spec.safeParse({ signal: 'SIGTERM' }).success).toBe(false);
    const both = signal.spec.safeParse({ process: 'a', pidFile: '/b', signal: 'SIGTERM' });
    expect(both.success).toBe(false);
    expect(both.error?.issues[0]?.message).toBe('exactly one of process or pidFile must be set');
  });

  it('render(): process through the argv sink, pidFile through the path sink', () => {
    const sinks: string[] = [];
    signal.render({ process: 'relay', signal: 'SIGTERM' }, (t, sink) => (sinks.push(sink), t));
    signal.render({ pidFile: '/run/relay.pid', signal: 'SIGTERM' }, (t, sink) => (sinks.push(sink), t));
    expect(sinks).toEqual(['argv', 'path']);
  });
});
