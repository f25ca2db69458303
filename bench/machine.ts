/**
 * What the machine did while the bench ran: how busy its cores were, and how much of that was the bench's own
 * processes (remediator, Redis, the load generator, the ceilings) versus everything else on a shared machine. Also
 * resident memory per process, from /proc. Linux only.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';

const TICK = 100; // USER_HZ on Linux

interface CpuTimes {
  busy: number;
  total: number;
}

function cpuTimes(): CpuTimes {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  const idle = (v[3] ?? 0) + (v[4] ?? 0); // idle + iowait
  const total = v.slice(0, 8).reduce((a, b) => a + b, 0); // user … steal
  return { busy: total - idle, total };
}

/** CPU seconds (user + system) a process and its reaped children have used so far; 0 when it is gone. */
function processCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / TICK; // utime stime cutime cstime
  } catch {
    return 0;
  }
}

/** The pid and every descendant (children first found through /proc/<pid>/stat's ppid). */
export function processTree(root: number): number[] {
  const parent = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      parent.set(Number(entry), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      /* gone */
    }
  }
  const tree = [root];
  for (let i = 0; i < tree.length; i++) for (const [pid, ppid] of parent) if (ppid === tree[i]) tree.push(pid);
  return tree;
}

export interface Memory {
  pid: number;
  /** The command's last argument: `serve`, `receiver`, `worker`, … */
  name: string;
  /** Resident now and the high-water mark, MiB. */
  rssMiB: number;
  peakMiB: number;
}

/** VmRSS and VmHWM of a Node process, or undefined when it is gone or not Node. */
export function memory(pid: number): Memory | undefined {
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
    if (!/(^|\/)node$/.test(cmdline[0] ?? '')) return undefined;
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0);
    return { pid, name: cmdline.at(-1) ?? String(pid), rssMiB: kib('VmRSS') / 1024, peakMiB: kib('VmHWM') / 1024 };
  } catch {
    return undefined;
  }
}

/**
 * CPU seconds used by the bench process and every process it started, so far: its own times plus those of its reaped
 * children (the kernel adds a child's times to its parent's when the parent reaps it), plus every live descendant's.
 */
function ownCpuSeconds(): number {
  return processTree(process.pid).reduce((sum, pid) => sum + processCpuSeconds(pid), 0);
}

/** A window of machine activity: end() tells how busy the cores were and how much of it was not the bench. */
export class CpuWindow {
  private readonly t0 = cpuTimes();
  private readonly own0 = ownCpuSeconds();
  private readonly wall0 = performance.now();
  /** busy: share of all cores busy (0..1); others: share of all cores used by processes that are not the bench's. */
  end(): { busy: number; others: number; seconds: number } {
    const t1 = cpuTimes();
    const seconds = (performance.now() - this.wall0) / 1000;
    const cores = cpus().length;
    const busy = (t1.busy - this.t0.busy) / Math.max(1, t1.total - this.t0.total);
    const ownShare = (ownCpuSeconds() - this.own0) / Math.max(0.001, seconds * cores);
    return { busy, others: Math.max(0, busy - ownShare), seconds };
  }
}

export function machineLine(): string {
  const c = cpus();
  return `${c.length} vCPU (${c[0]?.model ?? 'unknown'}), load average ${loadavg()
    .map((l) => l.toFixed(1))
    .join(' ')}, Node ${process.version}`;
}
