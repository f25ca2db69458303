import { parseArgs } from 'node:util';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

/** Everything the simulated supervisor can be told on its command line. */
export interface SupervisorOptions {
  metricsPort: number;
  adminPort: number;
  /** Host for both HTTP listeners; loopback only. */
  host: string;
  /** The dashboard IPC Unix socket (the runbook's `/tmp/supervisor.sock`). */
  socket: string;
  /** Where core files, the restart-fails marker and (by default) the journal and pid file go. */
  dumpDir: string;
  journal: string;
  pidFile: string;
  children: number;
  /** process.title of the supervisor (what `pgrep -x` matches; at most 15 characters). */
  processName: string;
  /** process.title of the relay child. */
  relayName: string;
  /** Control loop period. */
  tickMs: number;
  /** Restart budget per child: capacity, and seconds to refill one token. */
  restartBudget: number;
  budgetRefillSecs: number;
  /** Crash loop: how long a crash-looping child runs before it panics again. */
  crashIntervalMs: number;
  /** How long a failed child stays `failed` before the supervisor restarts it. */
  restartBackoffMs: number;
  /** Delay before the supervisor restarts an exited relay. */
  relayRestartMs: number;
  /** `--daemonize`: start a detached supervisor, wait until healthy, exit 0 (non-zero if it failed). */
  daemonize: boolean;
  /** `--restart`: stop the supervisor named in the pid file (if alive), then `--daemonize`. */
  restart: boolean;
  /** With --daemonize/--restart: how long to wait for /health. */
  startTimeoutMs: number;
  /** With --daemonize/--restart: where the detached supervisor's stdout/stderr go. */
  logFile: string;
}

const SPEC = {
  'metrics-port': { type: 'string', default: '9100' },
  'admin-port': { type: 'string', default: '9101' },
  host: { type: 'string', default: '127.0.0.1' },
  socket: { type: 'string', default: '/tmp/supervisor.sock' },
  'dump-dir': { type: 'string', default: tmpdir() },
  journal: { type: 'string' },
  'pid-file': { type: 'string' },
  children: { type: 'string', default: '3' },
  'process-name': { type: 'string', default: 'supervisor' },
  'relay-name': { type: 'string', default: 'relay' },
  'tick-ms': { type: 'string', default: '100' },
  'restart-budget': { type: 'string', default: '5' },
  'budget-refill-secs': { type: 'string', default: '60' },
  'crash-interval-ms': { type: 'string', default: '300' },
  'restart-backoff-ms': { type: 'string', default: '400' },
  'relay-restart-ms': { type: 'string', default: '300' },
  daemonize: { type: 'boolean', default: false },
  restart: { type: 'boolean', default: false },
  'start-timeout-ms': { type: 'string', default: '30000' },
  'log-file': { type: 'string' },
} as const;

export class UsageError extends Error {
  override name = 'UsageError';
}

function int(name: string, raw: string, min: number, max: number): number {
  if (!/^\d+$/.test(raw)) throw new UsageError(`--${name}: expected an integer, got ${JSON.stringify(raw)}`);
  const n = Number(raw);
  if (n < min || n > max) throw new UsageError(`--${name}: ${n} is outside ${min}..${max}`);
  return n;
}

function name(flag: string, raw: string): string {
  // Linux keeps 15 bytes of comm; pgrep -x compares against that.
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(raw))
    throw new UsageError(`--${flag}: expected 1-15 of [A-Za-z0-9_.-], got ${JSON.stringify(raw)}`);
  return raw;
}

export function parseSupervisorArgs(argv: readonly string[]): SupervisorOptions {
  let values;
  try {
    ({ values } = parseArgs({ args: [...argv], options: SPEC, strict: true, allowPositionals: false }));
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  const dumpDir = resolve(values['dump-dir']);
  const socket = resolve(values.socket);
  if (Buffer.byteLength(socket) > 107) throw new UsageError(`--socket: path is longer than 107 bytes: ${socket}`);
  const host = values.host;
  if (!['127.0.0.1', '::1', 'localhost'].includes(host)) throw new UsageError(`--host: loopback only, got ${host}`);
  return {
    metricsPort: int('metrics-port', values['metrics-port'], 0, 65535),
    adminPort: int('admin-port', values['admin-port'], 0, 65535),
    host,
    socket,
    dumpDir,
    journal: resolve(values.journal ?? join(dumpDir, 'supervisor.journal')),
    pidFile: resolve(values['pid-file'] ?? join(dumpDir, 'supervisor.pid')),
    children: int('children', values.children, 0, 1000),
    processName: name('process-name', values['process-name']),
    relayName: name('relay-name', values['relay-name']),
    tickMs: int('tick-ms', values['tick-ms'], 10, 10_000),
    restartBudget: int('restart-budget', values['restart-budget'], 0, 1000),
    budgetRefillSecs: int('budget-refill-secs', values['budget-refill-secs'], 1, 86_400),
    crashIntervalMs: int('crash-interval-ms', values['crash-interval-ms'], 0, 600_000),
    restartBackoffMs: int('restart-backoff-ms', values['restart-backoff-ms'], 0, 600_000),
    relayRestartMs: int('relay-restart-ms', values['relay-restart-ms'], 0, 600_000),
    daemonize: values.daemonize,
    restart: values.restart,
    startTimeoutMs: int('start-timeout-ms', values['start-timeout-ms'], 100, 600_000),
    logFile: resolve(values['log-file'] ?? join(dumpDir, 'supervisor.log')),
  };
}

/** The argv (after the script path) that reproduces `o` for a foreground supervisor. */
export function toArgv(o: SupervisorOptions): string[] {
  return [
    '--metrics-port',
    String(o.metricsPort),
    '--admin-port',
    String(o.adminPort),
    '--host',
    o.host,
    '--socket',
    o.socket,
    '--dump-dir',
    o.dumpDir,
    '--journal',
    o.journal,
    '--pid-file',
    o.pidFile,
    '--children',
    String(o.children),
    '--process-name',
    o.processName,
    '--relay-name',
    o.relayName,
    '--tick-ms',
    String(o.tickMs),
    '--restart-budget',
    String(o.restartBudget),
    '--budget-refill-secs',
    String(o.budgetRefillSecs),
    '--crash-interval-ms',
    String(o.crashIntervalMs),
    '--restart-backoff-ms',
    String(o.restartBackoffMs),
    '--relay-restart-ms',
    String(o.relayRestartMs),
    '--start-timeout-ms',
    String(o.startTimeoutMs),
    '--log-file',
    o.logFile,
  ];
}
