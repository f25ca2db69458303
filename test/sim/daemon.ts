import { spawn } from 'node:child_process';
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { toArgv, type SupervisorOptions } from './args.js';
import { scriptArgs } from './node.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function commOf(pid: number): string | null {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return null;
  }
}

function readPid(file: string): number | null {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 1 ? pid : null;
  } catch {
    return null;
  }
}

async function health(o: SupervisorOptions): Promise<{ status: string; pid: number } | null> {
  try {
    const res = await fetch(`http://${o.host}:${o.adminPort}/health`, { signal: AbortSignal.timeout(1000) });
    if (!res.ok) return null;
    return (await res.json()) as { status: string; pid: number };
  } catch {
    return null;
  }
}

/** Stop the supervisor named in the pid file, if it is alive and really is one (comm matches). */
async function stopRecorded(o: SupervisorOptions, log: (m: string) => void): Promise<void> {
  const pid = readPid(o.pidFile);
  if (pid === null || !alive(pid)) return;
  if (commOf(pid) !== o.processName) {
    log(`pid file ${o.pidFile} names pid ${pid}, which is not "${o.processName}"; leaving it alone`);
    return;
  }
  log(`stopping supervisor pid ${pid} (SIGTERM)`);
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + 10_000;
  while (alive(pid) && Date.now() < deadline) await sleep(50);
  if (alive(pid)) {
    log(`pid ${pid} ignored SIGTERM for 10 s; SIGKILL`);
    process.kill(pid, 'SIGKILL');
    while (alive(pid)) await sleep(50);
  }
}

/**
 * `--daemonize` / `--restart`: start a detached supervisor (its output appended to --log-file), wait until its
 * /health says `ready` and the answering pid is the one started, and return 0; return non-zero with the log
 * tail when it exits first or does not become ready in --start-timeout-ms. With `--restart`, first stop the
 * supervisor recorded in --pid-file. Meant as the exec action of "restart supervisor": nobody at the keyboard.
 */
export async function daemonize(o: SupervisorOptions): Promise<number> {
  const log = (m: string) => process.stdout.write(`supervisor-launcher: ${m}\n`);
  if (o.restart) await stopRecorded(o, log);
  else {
    const pid = readPid(o.pidFile);
    if (pid !== null && alive(pid) && commOf(pid) === o.processName && (await health(o))?.pid === pid) {
      log(`already running (pid ${pid}); use --restart to replace it`);
      return 0;
    }
  }
  mkdirSync(dirname(o.logFile), { recursive: true });
  const fd = openSync(o.logFile, 'a');
  const child = spawn(process.execPath, [...scriptArgs('supervisor'), ...toArgv(o)], {
    detached: true,
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  let exit: string | null = null;
  child.once('exit', (code, signal) => {
    exit = signal ?? `exit code ${code}`;
  });
  child.once('error', (err) => {
    exit = err.message;
  });
  child.unref();
  const tail = () => {
    try {
      return readFileSync(o.logFile, 'utf8').split('\n').slice(-15).join('\n');
    } catch {
      return '';
    }
  };
  const deadline = Date.now() + o.startTimeoutMs;
  while (Date.now() < deadline) {
    if (exit !== null) {
      process.stderr.write(`supervisor-launcher: supervisor failed to start (${exit}); log ${o.logFile}:\n${tail()}\n`);
      return 1;
    }
    const h = await health(o);
    if (h !== null && h.pid === child.pid && h.status === 'ready') {
      log(
        `supervisor ready (pid ${child.pid}, admin http://${o.host}:${o.adminPort}, metrics http://${o.host}:${o.metricsPort}/metrics)`,
      );
      return 0;
    }
    await sleep(100);
  }
  process.stderr.write(
    `supervisor-launcher: supervisor pid ${child.pid} not ready within ${o.startTimeoutMs} ms (left running); log ${o.logFile}:\n${tail()}\n`,
  );
  return 1;
}
