/**
 * Finding processes the way `pgrep` does, by reading Linux `/proc`: by exact name (`pgrep -x`, the name
 * `/proc/<pid>/comm` shows) and by a pattern over the whole command line (`pgrep -f`). Read-only: nothing here
 * signals, opens or connects to anything a process owns.
 *
 * Never matched: zombies (a dead process whose parent has not reaped it is not "up"), kernel threads (no command
 * line) and this process itself (its own command line may hold the pattern). A process that exits while it is
 * being read simply does not match.
 */
import { readdir, readFile } from 'node:fs/promises';
import { basename } from 'node:path';

/** Linux truncates /proc/<pid>/comm to 15 bytes (TASK_COMM_LEN − 1). */
export const COMM_LEN = 15;
/**
 * Clock ticks per second of /proc/<pid>/stat times (USER_HZ). Fixed at 100 by the kernel ABI on every
 * architecture Node.js runs on; Node has no sysconf(_SC_CLK_TCK) to ask.
 */
const USER_HZ = 100;

/** /proc could not be listed at all (not Linux, or hidepid without permission). */
export class ProcfsError extends Error {
  override readonly name = 'ProcfsError';
}

export interface ProcessInfo {
  pid: number;
  /** The name as /proc/<pid>/comm shows it (at most 15 characters). */
  comm: string;
  /** argv as the process set it (empty for kernel threads). */
  argv: string[];
  /** Start time as Unix seconds (from the boot time and the process's start in clock ticks). */
  startTimeSeconds: number | undefined;
}

export interface ProcfsOptions {
  /** Default `/proc`; tests may point elsewhere. */
  root?: string;
}

/** Pids (ascending) of live processes whose name is exactly `name`, as `pgrep -x` (see `commMatches`). */
export async function findByComm(name: string, options: ProcfsOptions = {}): Promise<ProcessInfo[]> {
  return find((p) => commMatches(p, name), options);
}

/**
 * Live processes whose command line (argv joined by spaces, as `pgrep -f` reads it) matches `pattern`.
 * Kernel threads (no command line) never match.
 */
export async function findByCmdline(pattern: RegExp, options: ProcfsOptions = {}): Promise<ProcessInfo[]> {
  return find((p) => p.argv.length > 0 && pattern.test(p.argv.join(' ')), options);
}

/**
 * `pgrep -x`: comm equals the name; or, for a name longer than comm holds, comm is its first 15 characters and
 * argv[0]'s basename is the whole name (so `rust-supervisor-relay` finds the relay, not every `rust-supervisor*`).
 */
export function commMatches(p: Pick<ProcessInfo, 'comm' | 'argv'>, name: string): boolean {
  if (p.comm === name) return true;
  if (name.length <= COMM_LEN || p.comm !== name.slice(0, COMM_LEN)) return false;
  return basename(p.argv[0] ?? '') === name;
}

async function find(test: (p: ProcessInfo) => boolean, options: ProcfsOptions): Promise<ProcessInfo[]> {
  const root = options.root ?? '/proc';
  let entries: string[];
  try {
    entries = await readdir(root);
  } catch (err) {
    throw new ProcfsError(`cannot list processes: ${root} is not readable (${(err as NodeJS.ErrnoException).code ?? 'error'})`, {
      cause: err,
    });
  }
  const bootTime = await readBootTime(root);
  const pids = entries.filter((e) => /^\d+$/.test(e)).map(Number);
  const found = await Promise.all(
    pids.map(async (pid) => {
      if (pid === process.pid) return undefined;
      const info = await readProcess(root, pid, bootTime);
      return info !== undefined && test(info) ? info : undefined;
    }),
  );
  return found.filter((p): p is ProcessInfo => p !== undefined).sort((a, b) => a.pid - b.pid);
}

/** One process, or undefined when it is a zombie or vanished (or is not ours to read). */
async function readProcess(root: string, pid: number, bootTime: number | undefined): Promise<ProcessInfo | undefined> {
  try {
    const stat = await readFile(`${root}/${pid}/stat`, 'utf8');
    // "(comm)" may itself hold ") ", so the fields after it start after the last ')'.
    const after = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const state = after[0];
    if (state === 'Z' || state === 'X') return undefined;
    const comm = (await readFile(`${root}/${pid}/comm`, 'utf8')).replace(/\n$/, '');
    const cmdline = await readFile(`${root}/${pid}/cmdline`, 'utf8');
    const argv = cmdline === '' ? [] : cmdline.replace(/\0$/, '').split('\0');
    // starttime is field 22 of stat; `after` starts at field 3 (state).
    const ticks = Number(after[19]);
    const startTimeSeconds = bootTime !== undefined && Number.isFinite(ticks) ? bootTime + ticks / USER_HZ : undefined;
    return { pid, comm, argv, startTimeSeconds };
  } catch {
    return undefined; // exited while we looked, or hidden from us
  }
}

async function readBootTime(root: string): Promise<number | undefined> {
  try {
    const m = /^btime (\d+)$/m.exec(await readFile(`${root}/stat`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}
