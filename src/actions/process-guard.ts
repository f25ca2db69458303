/**
 * An exec child must not outlive the worker that started it, nor run twice (issue 9). Three parts:
 *
 * 1. A guard between the worker and the command: a tiny Node program (GUARD_SOURCE, run with `node -e`) that starts
 *    the command in its own process group and holds a pipe from the worker. When the worker dies, however (SIGKILL,
 *    OOM), the kernel closes the pipe; the guard sees end-of-file and kills the command's group (SIGTERM, SIGKILL after
 *    the grace), as PR_SET_PDEATHSIG would, but for the whole group. The guard also enforces the attempt's deadline by
 *    itself, so a command never runs past it even with no worker left to stop it.
 * 2. What is running is recorded in the run's checkpoint (host and boot, pid, process group, the process's start
 *    time, its deadline): a takeover fences it before acting again (fencePrevious): on the same host it stops the
 *    group and waits until it is gone; on another host it waits until the previous attempt's deadline has passed.
 * 3. Shutdown waits for its children (stopChildren): every guard is told to terminate and waited for.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';

/** After SIGTERM, a process group has this long to exit before SIGKILL. */
export const KILL_GRACE_MS = 2000;

/** A command the run started, as its checkpoint keeps it. */
export interface RunningProcess {
  /** hostname and boot id: a pid means something only on the machine, and boot, it was taken on. */
  host: string;
  pid: number;
  /** The command's process group (the command leads it). */
  pgid: number;
  /** The process's start time (clock ticks since boot, /proc/<pid>/stat): tells it from a later process with its pid. */
  startTime: number;
  /** The guard's pid (it kills the group when the worker dies). */
  guardPid?: number;
  /** Epoch ms past which the guard has killed the group whatever happens. */
  deadline: number;
}

let bootId: string | undefined;
/** `<hostname>/<boot id>`: where a pid is valid. */
export function thisHost(): string {
  bootId ??= (() => {
    try {
      return readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
    } catch {
      return 'unknown-boot';
    }
  })();
  return `${hostname()}/${bootId}`;
}

/** The process's start time, or undefined when there is no such (live) process. */
export function startTimeOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z' || fields[0] === 'X') return undefined; // a zombie has done its work
    return Number(fields[19]); // field 22 of stat; fields[] starts at field 3
  } catch {
    return undefined;
  }
}

/** Whether any process of the group is left (ESRCH: none). */
function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Before a takeover acts again: makes sure the previous attempt's command is gone. Returns what was done, in words,
 * for the step record (undefined when nothing was left to do).
 */
export async function fencePrevious(p: RunningProcess, signal?: AbortSignal): Promise<string | undefined> {
  if (p.host !== thisHost()) {
    const wait = p.deadline + KILL_GRACE_MS - Date.now();
    if (wait <= 0) return undefined;
    await sleep(wait, undefined, signal ? { signal } : {});
    return `the previous attempt ran on ${p.host.split('/')[0]}: waited until its deadline had passed before acting again`;
  }
  const sameProcess = startTimeOf(p.pid) === p.startTime;
  if (!sameProcess && !groupAlive(p.pgid)) return undefined;
  const signalGroup = (sig: NodeJS.Signals) => {
    try {
      process.kill(-p.pgid, sig);
    } catch {
      // gone meanwhile
    }
  };
  signalGroup('SIGTERM');
  const until = Date.now() + KILL_GRACE_MS;
  while (groupAlive(p.pgid) && Date.now() < until) await sleep(50);
  const killed = groupAlive(p.pgid);
  if (killed) signalGroup('SIGKILL');
  while (groupAlive(p.pgid)) await sleep(20);
  return `the previous attempt's command (process group ${p.pgid}) was still running: stopped with ${killed ? 'SIGKILL' : 'SIGTERM'} before acting again`;
}

/**
 * The guard. Line 1 on stdin: {argv, cwd, env, timeoutMs, graceMs}; later lines: "term". Status lines on fd 3:
 * {pid, start} once the command runs (or {error}), then {exit, signal, timedOut}. stdout and stderr are the command's.
 */
export const GUARD_SOURCE = `
const { spawn } = require('child_process');
const fs = require('fs');
const say = (o) => { try { fs.writeSync(3, JSON.stringify(o) + '\\n'); } catch {} };
let spec, child, input = '', terminating = false, timedOut = false, killTimer;
const alive = () => child && child.exitCode === null && child.signalCode === null;
const group = (sig) => { if (!child || !child.pid) return; try { process.kill(-child.pid, sig); } catch { try { child.kill(sig); } catch {} } };
function terminate() {
  if (terminating) return;
  terminating = true;
  group('SIGTERM');
  killTimer = setTimeout(() => group('SIGKILL'), spec ? spec.graceMs : 2000);
}
function start() {
  try {
    child = spawn(spec.argv[0], spec.argv.slice(1), { cwd: spec.cwd, env: spec.env, stdio: ['ignore', 'inherit', 'inherit'], detached: true });
  } catch (e) { say({ error: e.code || String(e.message) }); process.exit(0); }
  child.once('error', (e) => { say({ error: e.code || String(e.message) }); process.exit(0); });
  child.once('spawn', () => {
    let start = 0;
    try { const s = fs.readFileSync('/proc/' + child.pid + '/stat', 'utf8'); start = Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[19]); } catch {}
    say({ pid: child.pid, start });
  });
  if (spec.timeoutMs > 0) setTimeout(() => { timedOut = true; terminate(); }, spec.timeoutMs).unref();
  child.once('exit', (code, signal) => {
    // Stopped on purpose: what is left of its group goes too, now.
    if (terminating) { clearTimeout(killTimer); group('SIGKILL'); }
    say({ exit: code, signal, timedOut });
    process.exit(0);
  });
}
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => {
  input += d;
  for (let i = input.indexOf('\\n'); i >= 0; i = input.indexOf('\\n')) {
    const line = input.slice(0, i);
    input = input.slice(i + 1);
    if (spec === undefined) { spec = JSON.parse(line); start(); }
    else if (line === 'term') terminate();
  }
});
// The worker is gone (the kernel closed its end): the command must not outlive it.
process.stdin.on('end', () => { if (child === undefined) process.exit(0); if (alive()) terminate(); });
process.on('SIGTERM', () => terminate());
process.on('SIGINT', () => {});
`;

export interface GuardedSpec {
  argv: string[];
  cwd?: string;
  env: NodeJS.ProcessEnv;
  /** Hard limit of the attempt, enforced by the guard (0: none). */
  timeoutMs: number;
}

export type GuardStatus =
  { pid: number; start: number } | { error: string } | { exit: number | null; signal: NodeJS.Signals | null; timedOut: boolean };

export interface GuardedChild {
  readonly guard: ChildProcess;
  readonly stdout: Readable;
  readonly stderr: Readable;
  /** The command runs (its pid and start time), or could not be started (the error code). */
  readonly started: Promise<{ pid: number; start: number } | { error: string }>;
  /** The command ended (or the guard died: then code null and no signal). */
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null; timedOut: boolean }>;
  /** SIGTERM to the command's group, SIGKILL after the grace: done by the guard. */
  terminate(): void;
}

const live = new Set<GuardedChild>();

/** Starts a command under a guard (see above). */
export function spawnGuarded(spec: GuardedSpec): GuardedChild {
  // The guard's own environment is empty (a NODE_OPTIONS meant for the command must not change the guard); it is in
  // its own process group, so a signal to the worker's group (Ctrl-C) reaches it only through the closed pipe.
  const guard = spawn(process.execPath, ['-e', GUARD_SOURCE], {
    stdio: ['pipe', 'pipe', 'pipe', 'pipe'],
    detached: true,
    env: {},
  });
  guard.stdin.on('error', () => {});
  guard.stdin.write(`${JSON.stringify({ ...spec, graceMs: KILL_GRACE_MS })}\n`);
  let resolveStarted!: (v: { pid: number; start: number } | { error: string }) => void;
  let resolveExited!: (v: { code: number | null; signal: NodeJS.Signals | null; timedOut: boolean }) => void;
  const started = new Promise<{ pid: number; start: number } | { error: string }>((r) => (resolveStarted = r));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; timedOut: boolean }>(
    (r) => (resolveExited = r),
  );
  let buffered = '';
  const status = guard.stdio[3] as Readable;
  status.setEncoding('utf8');
  status.on('data', (d: string) => {
    buffered += d;
    for (let i = buffered.indexOf('\n'); i >= 0; i = buffered.indexOf('\n')) {
      const line = JSON.parse(buffered.slice(0, i)) as GuardStatus;
      buffered = buffered.slice(i + 1);
      if ('pid' in line || 'error' in line) resolveStarted(line);
      if ('error' in line) resolveExited({ code: null, signal: null, timedOut: false });
      if ('exit' in line) resolveExited({ code: line.exit, signal: line.signal, timedOut: line.timedOut });
    }
  });
  const child: GuardedChild = {
    guard,
    stdout: guard.stdout,
    stderr: guard.stderr,
    started,
    exited,
    terminate: () => {
      if (guard.exitCode === null && guard.signalCode === null) guard.stdin.write('term\n');
    },
  };
  live.add(child);
  guard.once('exit', () => {
    live.delete(child);
    // The guard itself killed (OOM, a kill -9): the command may run on; the checkpoint's fence covers it.
    resolveStarted({ error: 'the process guard ended before the command started' });
    resolveExited({ code: null, signal: null, timedOut: false });
  });
  return child;
}

/**
 * Shutdown: every command still running is terminated (SIGTERM, SIGKILL after the grace) and waited for, so the
 * process exits only once its children are gone. Bounded: the grace plus a second.
 */
export async function stopChildren(): Promise<void> {
  const children = [...live];
  for (const c of children) c.terminate();
  await Promise.race([
    Promise.all(
      children.map((c) => new Promise<void>((r) => (c.guard.exitCode !== null ? r() : c.guard.once('exit', () => r())))),
    ),
    sleep(KILL_GRACE_MS + 1000),
  ]);
}
