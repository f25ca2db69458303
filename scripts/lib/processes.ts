import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { appendFileSync, closeSync, mkdtempSync, openSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ManagedProcess {
  readonly name: string;
  readonly pid: number;
  /** stdout and stderr, interleaved. */
  readonly logFile: string;
  readonly child: ChildProcess;
  /** Settles when the process exits (never rejects). */
  readonly exited: Promise<ExitInfo>;
  /** null while running. */
  exitInfo(): ExitInfo | null;
  /** The last `lines` lines of its log. */
  logTail(lines?: number): string;
  /** Send a signal to the process itself (not its group). */
  kill(signal?: NodeJS.Signals): void;
  /**
   * Stop it: `signal` (default SIGTERM) to the process, wait up to `graceMs` (default 5 s), then SIGKILL the
   * whole process group; finally SIGKILL whatever is left of the group (its children). Idempotent.
   */
  stop(opts?: { signal?: NodeJS.Signals; graceMs?: number }): Promise<ExitInfo>;
}

export interface SpawnOptions {
  cwd?: string;
  /** Added to (and overriding) process.env. */
  env?: Record<string, string | undefined>;
  /** Where to write the log; default a fresh temp dir. */
  logFile?: string;
}

/** Process groups still to be killed if the test process exits without stopping them. */
const liveGroups = new Set<number>();
process.once('exit', () => {
  for (const pgid of liveGroups) killGroup(pgid, 'SIGKILL');
});

function killGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    /* group already gone */
  }
}

function appendLog(file: string, text: string): void {
  try {
    appendFileSync(file, text);
  } catch {
    /* best effort */
  }
}

function tail(file: string, lines: number): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

/**
 * Spawn `command args` in its own process group with stdout+stderr captured to a log file. Stop it with
 * `stop()`; a test process that exits without doing so SIGKILLs the group on the way out.
 */
export function spawnProcess(name: string, command: string, args: readonly string[], opts: SpawnOptions = {}): ManagedProcess {
  const logFile =
    opts.logFile ??
    join(mkdtempSync(join(tmpdir(), `${name.replace(/[^\w.-]/g, '_')}-log-`)), `${name.replace(/[^\w.-]/g, '_')}.log`);
  const fd = openSync(logFile, 'a');
  let child: ChildProcess;
  try {
    child = spawn(command, [...args], {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env },
      stdio: ['ignore', fd, fd],
      detached: true,
    });
  } finally {
    closeSync(fd);
  }
  let info: ExitInfo | null = null;
  const exited = new Promise<ExitInfo>((resolve) => {
    child.once('exit', (code, signal) => {
      info = { code, signal };
      resolve(info);
    });
    child.once('error', (err) => {
      info ??= { code: -1, signal: null };
      appendLog(logFile, `spawn error: ${err.message}\n`);
      resolve(info);
    });
  });
  if (child.pid === undefined) {
    // No pid: the spawn itself failed (ENOENT, EACCES); the 'error' event says why.
    child.on('error', () => {});
    throw new Error(`${name}: cannot spawn ${command} (not found or not executable)`);
  }
  const pid = child.pid;
  liveGroups.add(pid);
  let stopping: Promise<ExitInfo> | null = null;
  return {
    name,
    pid,
    logFile,
    child,
    exited,
    exitInfo: () => info,
    logTail: (lines = 30) => tail(logFile, lines),
    kill(signal = 'SIGTERM') {
      if (info === null) child.kill(signal);
    },
    stop({ signal = 'SIGTERM', graceMs = 5000 } = {}) {
      stopping ??= (async () => {
        if (info === null) {
          child.kill(signal);
          const timer = setTimeout(() => killGroup(pid, 'SIGKILL'), graceMs);
          await exited;
          clearTimeout(timer);
        }
        killGroup(pid, 'SIGKILL');
        liveGroups.delete(pid);
        return info ?? (await exited);
      })();
      return stopping;
    },
  };
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run a command to completion (no shell), with a timeout; never throws on a non-zero exit. */
export function runCommand(
  command: string,
  args: readonly string[],
  opts: { timeoutMs?: number; cwd?: string } = {},
): Promise<CommandResult> {
  return new Promise((resolve) => {
    execFile(
      command,
      [...args],
      { timeout: opts.timeoutMs ?? 30_000, cwd: opts.cwd, maxBuffer: 10 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : -1;
        resolve({ code, stdout, stderr: err !== null && typeof err.code !== 'number' ? `${stderr}${err.message}` : stderr });
      },
    );
  });
}

/** Is `pid` alive and not a zombie? (kill(pid, 0) also succeeds on zombies not yet reaped.) */
export function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

/** The pids `pgrep -x name` lists (running ones only; see isRunning). Empty when none. */
export async function pgrepExact(name: string): Promise<number[]> {
  const r = await runCommand('pgrep', ['-x', name]);
  if (r.code !== 0 && r.code !== 1) throw new Error(`pgrep -x ${name} failed (${r.code}): ${r.stderr}`);
  return r.stdout
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map(Number)
    .filter(isRunning);
}
