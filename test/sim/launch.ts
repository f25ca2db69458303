/**
 * Start the supervisor simulator as a real child process from a test (or a demo script).
 *
 *   const sup = await startSupervisorProcess({ children: 3 });
 *   await fetch(`${sup.adminUrl}/faults/ipc/drop`, { method: 'POST' });
 *   ...
 *   await sup.stop();
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../helpers/ports.js';
import { spawnProcess, waitFor, type ExitInfo, type ManagedProcess } from '../helpers/processes.js';
import { scriptArgs } from './node.js';

export interface SupervisorProcessOptions {
  /** Default: a fresh temp dir. Holds the socket, journal, pid file, core files, the restart-fails marker. */
  dumpDir?: string;
  /** Default `<dumpDir>/supervisor.sock` (not /tmp/supervisor.sock, so parallel tests do not contend). */
  socket?: string;
  journal?: string;
  pidFile?: string;
  children?: number;
  /** Default: free loopback ports. */
  metricsPort?: number;
  adminPort?: number;
  /** process.title values; default `supervisor` and `relay`. */
  processName?: string;
  relayName?: string;
  /** More supervisor flags, e.g. ['--restart-budget', '3', '--crash-interval-ms', '100']. */
  extraArgs?: string[];
  env?: Record<string, string>;
  /** What to wait for: `/health` answering with this pid (`answering`), or status `ready` (default). */
  waitUntil?: 'answering' | 'ready';
  timeoutMs?: number;
}

export interface SupervisorProcess {
  pid: number;
  ports: { metrics: number; admin: number };
  adminUrl: string;
  metricsUrl: string;
  socket: string;
  dumpDir: string;
  journal: string;
  pidFile: string;
  /** The supervisor flags it was started with (without the node/script part). */
  args: string[];
  /**
   * An argv that restarts this supervisor with the same flags, detached, and exits 0 once it is ready
   * (non-zero if the start failed): what an `exec` action of a rule can run.
   */
  restartCommand: string[];
  proc: ManagedProcess;
  exited: Promise<ExitInfo>;
  /** Clean shutdown (SIGTERM), then SIGKILL of the group after a grace period. */
  stop(): Promise<ExitInfo>;
  kill(signal?: NodeJS.Signals): void;
  /** Remove the dump dir if startSupervisorProcess created it (call after stop, and after stopping any restarted copy). */
  cleanup(): void;
}

/** node + loader + script: the command that runs the simulator in the foreground. */
export function supervisorCommand(): { command: string; args: string[] } {
  return { command: process.execPath, args: scriptArgs('supervisor') };
}

/** The restart script (works from any cwd). */
export const SUPERVISOR_RESTART_SCRIPT = fileURLToPath(new URL('./bin/supervisor-restart', import.meta.url));

async function resolveOptions(opts: SupervisorProcessOptions) {
  const ownDir = opts.dumpDir === undefined;
  const dumpDir = opts.dumpDir ?? mkdtempSync(join(tmpdir(), 'supsim-'));
  const metricsPort = opts.metricsPort ?? (await freePort());
  let adminPort = opts.adminPort ?? (await freePort());
  while (adminPort === metricsPort) adminPort = await freePort();
  const socket = opts.socket ?? join(dumpDir, 'supervisor.sock');
  const journal = opts.journal ?? join(dumpDir, 'supervisor.journal');
  const pidFile = opts.pidFile ?? join(dumpDir, 'supervisor.pid');
  const args = [
    '--metrics-port',
    String(metricsPort),
    '--admin-port',
    String(adminPort),
    '--socket',
    socket,
    '--dump-dir',
    dumpDir,
    '--journal',
    journal,
    '--pid-file',
    pidFile,
    '--children',
    String(opts.children ?? 3),
    '--process-name',
    opts.processName ?? 'supervisor',
    '--relay-name',
    opts.relayName ?? 'relay',
    '--log-file',
    join(dumpDir, 'supervisor.log'),
    ...(opts.extraArgs ?? []),
  ];
  return { dumpDir, ownDir, metricsPort, adminPort, socket, journal, pidFile, args };
}

/** Spawn the simulator, wait until it answers /health (and, by default, is `ready`). */
export async function startSupervisorProcess(opts: SupervisorProcessOptions = {}): Promise<SupervisorProcess> {
  const r = await resolveOptions(opts);
  const cmd = supervisorCommand();
  const proc = spawnProcess('supervisor', cmd.command, [...cmd.args, ...r.args], {
    env: opts.env,
    logFile: join(r.dumpDir, `supervisor-foreground-${Date.now()}.log`),
  });
  const adminUrl = `http://127.0.0.1:${r.adminPort}`;
  const want = opts.waitUntil ?? 'ready';
  try {
    await waitFor(
      `supervisor /health at ${adminUrl} (${want})`,
      async () => {
        const res = await fetch(`${adminUrl}/health`, { signal: AbortSignal.timeout(1000) });
        const h = (await res.json()) as { pid: number; status: string };
        return h.pid === proc.pid && (want === 'answering' || h.status === 'ready');
      },
      { processes: [proc], timeoutMs: opts.timeoutMs ?? 30_000 },
    );
  } catch (err) {
    await proc.stop({ signal: 'SIGKILL' });
    throw err; // the dump dir stays, for its logs
  }
  return {
    pid: proc.pid,
    ports: { metrics: r.metricsPort, admin: r.adminPort },
    adminUrl,
    metricsUrl: `http://127.0.0.1:${r.metricsPort}/metrics`,
    socket: r.socket,
    dumpDir: r.dumpDir,
    journal: r.journal,
    pidFile: r.pidFile,
    args: r.args,
    restartCommand: [SUPERVISOR_RESTART_SCRIPT, ...r.args],
    proc,
    exited: proc.exited,
    stop: () => proc.stop(),
    kill: (signal = 'SIGTERM') => proc.kill(signal),
    cleanup: () => {
      if (r.ownDir) rmSync(r.dumpDir, { recursive: true, force: true });
    },
  };
}

/**
 * Run a supervisor that is expected to fail to start (e.g. socket contention); resolves with its exit and log.
 */
export async function runSupervisorToExit(opts: SupervisorProcessOptions = {}): Promise<ExitInfo & { log: string }> {
  const r = await resolveOptions(opts);
  const cmd = supervisorCommand();
  const proc = spawnProcess('supervisor', cmd.command, [...cmd.args, ...r.args], {
    env: opts.env,
    logFile: join(r.dumpDir, `supervisor-expected-exit-${Date.now()}.log`),
  });
  const timer = setTimeout(() => void proc.stop({ signal: 'SIGKILL' }), opts.timeoutMs ?? 30_000);
  const exit = await proc.exited;
  clearTimeout(timer);
  await proc.stop();
  const log = proc.logTail(200);
  if (r.ownDir) rmSync(r.dumpDir, { recursive: true, force: true });
  return { ...exit, log };
}
