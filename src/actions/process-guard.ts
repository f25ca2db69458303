/**
 * An exec child must not outlive the worker that started it, nor run twice (issue 9). Three parts:
 *
 * 1. A guard between the worker and the command: the worker's launcher (LAUNCHER_SOURCE, a small Node program run
 *    with `node -e`, one per worker process) starts every command in its own process group and holds a pipe from the
 *    worker. When the worker dies, however (SIGKILL, OOM), the kernel closes the pipe; the launcher sees end-of-file
 *    and kills every command's group (SIGTERM, SIGKILL after the grace), as PR_SET_PDEATHSIG would, but for whole
 *    groups. It also enforces each attempt's deadline by itself, so a command never runs past it even with no worker
 *    left to stop it.
 * 2. What is running is recorded in the run's checkpoint (host and boot, pid, process group, the process's start
 *    time, its deadline): a takeover fences it before acting again (fencePrevious): on the same host it stops the
 *    group and waits until it is gone; on another host it waits until the previous attempt's deadline has passed.
 * 3. Shutdown waits for its children (stopChildren): every guard is told to terminate and waited for.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
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
 * The launcher: one small Node program per worker process (LAUNCHER_SOURCE, run with `node -e`, its environment
 * empty) that starts every exec command for it, so that a process start (a fork, which blocks the caller's event loop
 * for milliseconds, more as its memory grows) never blocks the loop that renews leases and answers webhooks, and
 * forks a small process instead of a large one. It is the guard of every command it starts:
 *
 * - each command leads its own process group; a stop is SIGTERM to the group, SIGKILL after the grace;
 * - each command's deadline is enforced by the launcher itself (it needs no worker for that);
 * - when the worker dies, however (SIGKILL, OOM), the kernel closes the launcher's stdin: it stops every command's
 *   group (SIGTERM, SIGKILL after the grace) and exits, as PR_SET_PDEATHSIG would, but for whole groups;
 * - output is passed on up to a cap per command (CAP_BYTES), past which it is only counted.
 *
 * Worker → launcher, stdin, JSON lines: {op:'start', i, argv, cwd, env, timeoutMs, graceMs, cap} and {op:'term', i}.
 * Launcher → worker, stdout, JSON lines, in order per command: {i, o, e} output (base64; e: 1 for stderr), then
 * {i, pid, start} once the command runs (or {i, error}), then {i, exit, signal, timedOut, dropped} once it ended and
 * its output was read (or the pipes stayed open past STDIO_GRACE_MS after its end: a daemon it started holds them).
 */
export const LAUNCHER_SOURCE = `
const { spawn } = require('child_process');
const fs = require('fs');
const STDIO_GRACE_MS = 500;
const send = (o) => { process.stdout.write(JSON.stringify(o) + '\\n'); };
const running = new Map();
let input = '', closing = false;
function group(c, sig) { if (!c.child.pid) return; try { process.kill(-c.child.pid, sig); } catch { try { c.child.kill(sig); } catch {} } }
function terminate(c) {
  if (c.terminating) return;
  c.terminating = true;
  group(c, 'SIGTERM');
  c.killTimer = setTimeout(() => group(c, 'SIGKILL'), c.graceMs);
}
function done(c) {
  if (c.reported) return;
  c.reported = true;
  clearTimeout(c.grace);
  running.delete(c.i);
  send({ i: c.i, exit: c.code, signal: c.signal, timedOut: c.timedOut, dropped: c.dropped });
  if (closing && running.size === 0) process.exit(0);
}
function start(m) {
  const c = { i: m.i, graceMs: m.graceMs, cap: m.cap, sent: 0, dropped: 0, open: 2, terminating: false, timedOut: false };
  try {
    c.child = spawn(m.argv[0], m.argv.slice(1), { cwd: m.cwd, env: m.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  } catch (e) { send({ i: m.i, error: e.code || String(e.message) }); return; }
  running.set(m.i, c);
  c.child.on('error', (e) => {
    if (c.child.pid !== undefined || c.reported) return;
    clearTimeout(c.deadline); running.delete(c.i); c.reported = true;
    send({ i: c.i, error: e.code || String(e.message) });
    if (closing && running.size === 0) process.exit(0);
  });
  c.child.once('spawn', () => {
    let st = 0;
    try { const s = fs.readFileSync('/proc/' + c.child.pid + '/stat', 'utf8'); st = Number(s.slice(s.lastIndexOf(')') + 2).split(' ')[19]); } catch {}
    send({ i: c.i, pid: c.child.pid, start: st });
  });
  [c.child.stdout, c.child.stderr].forEach((stream, e) => {
    stream.on('data', (d) => {
      const room = c.cap - c.sent;
      if (room <= 0) { c.dropped += d.length; return; }
      const part = d.length > room ? d.subarray(0, room) : d;
      c.sent += part.length;
      c.dropped += d.length - part.length;
      send({ i: c.i, o: part.toString('base64'), e });
    });
    stream.on('error', () => {});
    stream.once('close', () => { if (--c.open === 0 && c.exited) done(c); });
  });
  if (m.timeoutMs > 0) c.deadline = setTimeout(() => { c.timedOut = true; terminate(c); }, m.timeoutMs);
  c.child.once('exit', (code, signal) => {
    clearTimeout(c.deadline);
    // Stopped on purpose: what is left of its group goes too, now.
    if (c.terminating) { clearTimeout(c.killTimer); group(c, 'SIGKILL'); }
    c.code = code; c.signal = signal; c.exited = true;
    if (c.open === 0) return done(c);
    c.grace = setTimeout(() => { c.child.stdout.destroy(); c.child.stderr.destroy(); done(c); }, STDIO_GRACE_MS);
  });
}
function closeAll() {
  closing = true;
  if (running.size === 0) process.exit(0);
  for (const c of running.values()) if (!c.exited) terminate(c);
}
process.stdin.setEncoding('utf8');
process.stdin.on('data', (d) => {
  input += d;
  for (let n = input.indexOf('\\n'); n >= 0; n = input.indexOf('\\n')) {
    const m = JSON.parse(input.slice(0, n));
    input = input.slice(n + 1);
    if (m.op === 'start') start(m);
    else if (m.op === 'term') { const c = running.get(m.i); if (c && !c.exited) terminate(c); }
  }
});
// The worker is gone (the kernel closed its end), or done with us: no command may outlive it.
process.stdin.on('end', closeAll);
process.stdout.on('error', () => {});
process.on('SIGTERM', closeAll);
process.on('SIGINT', () => {});
`;

/** Output passed on per command, in bytes; the rest is only counted (what is kept of it is OUTPUT_LIMIT characters). */
export const CAP_BYTES = 64 * 1024;

export interface GuardedSpec {
  argv: string[];
  cwd?: string;
  env: NodeJS.ProcessEnv;
  /** Hard limit of the attempt, enforced by the launcher (0: none). */
  timeoutMs: number;
}

export interface GuardedExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  /** Output bytes past CAP_BYTES, counted and not passed on. */
  dropped: number;
}

export interface GuardedChild {
  /** The launcher's pid (the process that stops the command if the worker dies). */
  readonly guardPid: number | undefined;
  /** Each chunk of output as it arrives, in order (1: stderr); only chunks after the call. */
  onOutput(listener: (chunk: Buffer, stream: 0 | 1) => void): void;
  /** The command runs (its pid and start time), or could not be started (the error code). */
  readonly started: Promise<{ pid: number; start: number } | { error: string }>;
  /** The command ended and its output was read (or the launcher died: then code null and no signal). */
  readonly exited: Promise<GuardedExit>;
  /** SIGTERM to the command's group, SIGKILL after the grace: done by the launcher. */
  terminate(): void;
}

type LauncherMessage =
  | { i: number; o: string; e: 0 | 1 }
  | { i: number; pid: number; start: number }
  | { i: number; error: string }
  | { i: number; exit: number | null; signal: NodeJS.Signals | null; timedOut: boolean; dropped: number };

interface Pending {
  /** The command, once the launcher said it runs: what to stop if the launcher dies first. */
  running?: { pid: number; start: number };
  output?: (chunk: Buffer, stream: 0 | 1) => void;
  started(v: { pid: number; start: number } | { error: string }): void;
  exited(v: GuardedExit): void;
}

class Launcher {
  readonly proc: ChildProcess;
  readonly pending = new Map<number, Pending>();
  private next = 1;
  private buffered = '';
  gone = false;

  constructor() {
    // Named by its last argument (ps, the bench's memory table). Its own environment is empty (a NODE_OPTIONS meant
    // for a command must not change it) and it is in its own process group, so a signal to the worker's group
    // (Ctrl-C) reaches it only through the closed pipe.
    this.proc = spawn(process.execPath, ['-e', LAUNCHER_SOURCE, 'remediator-launcher'], {
      stdio: ['pipe', 'pipe', 'inherit'],
      detached: true,
      env: {},
    });
    this.proc.stdin!.on('error', () => {});
    this.proc.stdout!.setEncoding('utf8');
    this.proc.stdout!.on('data', (d: string) => this.read(d));
    this.hold(false);
    // The launcher itself killed (OOM, a kill -9): its commands run on with nobody to stop them, so fail() does.
    this.proc.once('exit', () => this.fail('the process launcher ended before the command started'));
    // It could not be started at all (EAGAIN, ENOMEM under load): no 'exit' follows, so this must settle every
    // command sent to it, or their steps would wait forever.
    this.proc.once('error', (err: NodeJS.ErrnoException) =>
      this.fail(`the process launcher could not be started: ${err.code ?? err.message}`),
    );
  }

  private fail(why: string): void {
    this.gone = true;
    if (launcher === this) launcher = undefined;
    for (const p of this.pending.values()) {
      p.started({ error: why });
      const ended = () => p.exited({ code: null, signal: null, timedOut: false, dropped: 0 });
      if (p.running === undefined) ended();
      // A command it started runs on with no guard: its step ends only once its group is gone (stopped here, as a
      // takeover would), or the run would go on, even finish, while the command still acts.
      else {
        const { pid, start } = p.running;
        void fencePrevious({ host: thisHost(), pid, pgid: pid, startTime: start, deadline: 0 }).then(ended, ended);
      }
    }
    this.pending.clear();
  }

  /** Keeps this process alive only while a command runs: an idle launcher holds nothing open. */
  private hold(on: boolean): void {
    for (const h of [this.proc, this.proc.stdin, this.proc.stdout] as ({ ref(): void; unref(): void } | null)[])
      if (on) h?.ref();
      else h?.unref();
  }

  private read(d: string): void {
    this.buffered += d;
    for (let n = this.buffered.indexOf('\n'); n >= 0; n = this.buffered.indexOf('\n')) {
      const m = JSON.parse(this.buffered.slice(0, n)) as LauncherMessage;
      this.buffered = this.buffered.slice(n + 1);
      const p = this.pending.get(m.i);
      if (p === undefined) continue;
      if ('o' in m) p.output?.(Buffer.from(m.o, 'base64'), m.e);
      else if ('pid' in m) {
        p.running = { pid: m.pid, start: m.start };
        p.started(m);
      } else if ('error' in m) {
        this.pending.delete(m.i);
        p.started(m);
        p.exited({ code: null, signal: null, timedOut: false, dropped: 0 });
      } else {
        this.pending.delete(m.i);
        p.exited({ code: m.exit, signal: m.signal, timedOut: m.timedOut, dropped: m.dropped });
      }
    }
    if (this.pending.size === 0) this.hold(false);
  }

  send(message: object): void {
    if (!this.gone) this.proc.stdin!.write(`${JSON.stringify(message)}\n`);
  }

  start(spec: GuardedSpec): GuardedChild {
    const i = this.next++;
    let resolveStarted!: Pending['started'];
    let resolveExited!: Pending['exited'];
    const started = new Promise<{ pid: number; start: number } | { error: string }>((r) => (resolveStarted = r));
    const exited = new Promise<GuardedExit>((r) => (resolveExited = r));
    const pending: Pending = { started: resolveStarted, exited: resolveExited };
    this.pending.set(i, pending);
    this.hold(true);
    this.send({ op: 'start', i, ...spec, graceMs: KILL_GRACE_MS, cap: CAP_BYTES });
    const child: GuardedChild = {
      guardPid: this.proc.pid,
      onOutput: (listener) => void (pending.output = listener),
      started,
      exited,
      terminate: () => {
        if (this.pending.has(i)) this.send({ op: 'term', i });
      },
    };
    live.add(child);
    void exited.then(() => live.delete(child));
    return child;
  }
}

let launcher: Launcher | undefined;
const live = new Set<GuardedChild>();

/** Starts the launcher now (a worker does at start), so the first command does not wait for it. */
export function startLauncher(): void {
  launcher ??= new Launcher();
}

/** Starts a command through the launcher (see above); a new launcher if there is none (or it died). */
export function spawnGuarded(spec: GuardedSpec): GuardedChild {
  launcher ??= new Launcher();
  return launcher.start(spec);
}

/**
 * Shutdown: every command still running is terminated (SIGTERM, SIGKILL after the grace) and waited for, so the
 * process exits only once its children are gone; then the launcher is let go. Bounded: the grace plus a second.
 */
export async function stopChildren(): Promise<void> {
  const children = [...live];
  for (const c of children) c.terminate();
  await Promise.race([Promise.all(children.map((c) => c.exited)), sleep(KILL_GRACE_MS + 1000)]);
  const l = launcher;
  launcher = undefined;
  if (l !== undefined && !l.gone) l.proc.stdin!.end(); // it exits once it has nothing left to stop
}
