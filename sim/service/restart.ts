/**
 * A service-manager stand-in (what `systemctl restart <unit>` does for a unit with a main PID), so procedures and
 * demos can restart the simulated supervisor or relay hands-off:
 *
 *   sim/bin/restart-supervisor --config sup.yaml --pid-file sup.pid [--log sup.log]
 *   sim/bin/restart-relay      --config relay.yaml --pid-file relay.pid [--log relay.log]
 *
 * 1. Stop: if the pid file names a live process whose /proc/<pid>/comm is the expected one, SIGTERM it and wait
 *    (`--stop-timeout-ms`, default 10 s, like TimeoutStopSec), then SIGKILL. A SIGKILL leaves the supervisor's
 *    socket file behind: with `bind_mode: create_new` the start below then fails, as it would under systemd.
 * 2. Start it detached (own session, output appended to `--log` after a `-- service manager: starting … --` line),
 *    write the pid file.
 * 3. Wait until it is up — the supervisor: its IPC socket answers `hello` (any answer); the relay: a new
 *    registration socket is bound — and exit 0. Exit 1 with the log's tail on stderr if the process exited or
 *    did not come up within `--start-timeout-ms` (default 30 s).
 * Arguments are passed as argv, never through a shell.
 */
import { spawn } from 'node:child_process';
import { appendFileSync, closeSync, existsSync, openSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { createIpcClient } from '../../src/supervisor/ipc-client.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    config: { type: 'string' },
    'pid-file': { type: 'string' },
    log: { type: 'string' },
    'stop-timeout-ms': { type: 'string', default: '10000' },
    'start-timeout-ms': { type: 'string', default: '30000' },
  },
});
const kind = positionals[0];
if ((kind !== 'supervisor' && kind !== 'relay') || values.config === undefined || values['pid-file'] === undefined) {
  process.stderr.write('usage: restart supervisor|relay --config FILE --pid-file FILE [--log FILE]\n');
  process.exit(2);
}
const configFile = values.config;
const pidFile = values['pid-file'];
const logFile = values.log ?? `${pidFile}.log`;
const stopTimeout = Number(values['stop-timeout-ms']);
const startTimeout = Number(values['start-timeout-ms']);
const yaml = (parseYaml(readFileSync(configFile, 'utf8')) ?? {}) as Record<string, Record<string, unknown> | undefined>;
const comm = kind === 'relay' ? 'rust-supervisor' : String(yaml.sim?.process_name ?? 'payments-worker').slice(0, 15);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function alive(pid: number): boolean {
  try {
    return (
      readFileSync(`/proc/${pid}/comm`, 'utf8').trim() === comm && !readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ')
    );
  } catch {
    return false;
  }
}

async function stop(): Promise<void> {
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').trim());
  if (!Number.isInteger(pid) || pid <= 0 || !alive(pid)) return;
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + stopTimeout;
  while (alive(pid) && Date.now() < deadline) await sleep(50);
  if (alive(pid)) process.kill(pid, 'SIGKILL');
  while (alive(pid)) await sleep(20);
}

/** The file's identity: its inode and change time (a deleted and re-created socket may get the same inode number back). */
function inode(path: string | undefined): string | undefined {
  try {
    if (path === undefined) return undefined;
    const st = statSync(path, { bigint: true });
    return `${st.ino}:${st.ctimeNs}`;
  } catch {
    return undefined;
  }
}

async function start(): Promise<void> {
  const script = fileURLToPath(new URL(kind === 'relay' ? '../relay/main.ts' : '../supervisor/main.ts', import.meta.url));
  const relayPath = kind === 'relay' ? (yaml.registration?.listen_path as string | undefined) : undefined;
  const before = inode(relayPath);
  // A journal shows where each start begins (systemd: "Started <unit>."): a log read after a crash ends with that
  // start's output, never with an earlier process's last words.
  appendFileSync(logFile, `-- service manager: starting ${kind} ${comm} --\n`);
  const out = openSync(logFile, 'a');
  const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), script, '--config', configFile], {
    detached: true,
    stdio: ['ignore', out, out],
  });
  closeSync(out);
  let exited: number | null | undefined;
  child.once('exit', (code, signal) => (exited = code ?? (signal ? 128 : null)));
  writeFileSync(pidFile, `${child.pid}\n`);
  child.unref();
  const deadline = Date.now() + startTimeout;
  const ipcPath = (yaml.ipc?.path as string | undefined) ?? '';
  while (Date.now() < deadline && exited === undefined) {
    if (kind === 'relay') {
      const now = inode(relayPath);
      if (now !== undefined && now !== before) return;
    } else if (
      ipcPath !== '' &&
      (await createIpcClient({ path: ipcPath, timeoutMs: 1000 }).call('hello', {})).status === 'answered'
    ) {
      return;
    }
    await sleep(50);
  }
  const tail = existsSync(logFile) ? readFileSync(logFile, 'utf8').split('\n').slice(-15).join('\n') : '';
  process.stderr.write(`${kind} ${exited !== undefined ? `exited (${exited})` : 'not up in time'}; log ${logFile}:\n${tail}\n`);
  process.exit(1);
}

await stop();
await start();
process.exit(0);
