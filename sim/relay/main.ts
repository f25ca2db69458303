/**
 * A stand-in for `rust-supervisor-relay` (developerworks/rust-supervisor-relay): only its registration side, which
 * is all a supervisor host and remediator ever meet. No TLS/wss listener (dashboard sessions are out of scope).
 *
 *   rust-supervisor-relay --config dashboard-relay.yaml [--check]
 *
 * What it reproduces (relay src/main.rs, registration.rs, registry.rs):
 * - `/proc/<pid>/comm` is `rust-supervisor` (the 15-character cut of the binary name) and the command line starts
 *   with `rust-supervisor-relay`, so `pgrep -x rust-supervisor-relay` finds nothing and `pgrep -f` does;
 * - it deletes an old registration socket file and binds a new one (mode from `registration.permissions`);
 * - each connection carries one registration line and gets one ack line, keys sorted as serde_json::json! writes
 *   them: `{"ok":true,"retryable":false,"status":"registered","target_id":…}`, or an error ack;
 * - THE PROBE TRAP: a connection whose line is not a valid registration (a bare connect-and-close too) ends the
 *   registration loop for good (`accept_registration().await?`, main.rs:171): the listener closes, the socket file
 *   stays, the process stays up, nothing is logged;
 * - registrations live in memory only; nothing restarts it; it prints `relay listening on <public_url>` at start,
 *   `{code} at {stage}: {message}` on stderr and exit 1 on a config error; Ctrl-C (SIGINT) exits 0; SIGTERM kills it.
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, type Socket } from 'node:net';
import { basename, dirname, isAbsolute, join } from 'node:path';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';
import { Registry, type RelayError } from './registry.js';

// Linux keeps 15 characters of the name: comm becomes "rust-supervisor".
const args = process.argv.slice(2);
process.title = ['rust-supervisor-relay', ...args].join(' ');

function fail(error: RelayError): never {
  process.stderr.write(`${error.code} at ${error.stage}: ${error.message}\n`);
  process.exit(1);
}

const { values } = parseArgs({ args, options: { config: { type: 'string' }, check: { type: 'boolean' } }, strict: false });
if (typeof values.config !== 'string')
  fail({ code: 'missing_config_arg', stage: 'args', message: '--config requires a path', retryable: false });

interface RelayConfig {
  listen?: { public_url?: string };
  registration?: {
    listen_path?: string;
    permissions?: string;
    allowed_ipc_path_prefixes?: string[];
    default_lease_seconds?: number;
    max_lease_seconds?: number;
  };
}
let config: RelayConfig;
try {
  config = (parseYaml(readFileSync(values.config, 'utf8')) ?? {}) as RelayConfig;
} catch (err) {
  fail({
    code: 'config_read_failed',
    stage: 'config',
    message: `relay config could not be read: ${(err as Error).message}`,
    retryable: false,
  });
}
const reg = config.registration ?? {};
if (typeof reg.listen_path !== 'string' || !isAbsolute(reg.listen_path)) {
  fail({
    code: 'invalid_registration_path',
    stage: 'config',
    message: 'registration.listen_path must be absolute',
    retryable: false,
  });
}
if (values.check === true) {
  process.stdout.write('relay config validated\n');
  process.exit(0);
}
const listenPath = reg.listen_path;
const registry = new Registry(reg.allowed_ipc_path_prefixes ?? [], reg.max_lease_seconds ?? 120);

if (existsSync(listenPath)) {
  try {
    unlinkSync(listenPath);
  } catch (err) {
    fail({
      code: 'registration_socket_remove_failed',
      stage: 'registration_bind',
      message: `old registration socket could not be removed: ${(err as Error).message}`,
      retryable: true,
    });
  }
}

const server = createServer({ pauseOnConnect: true });
let loopEnded = false;
// The real loop handles one connection at a time: accept, read a line, register, ack, next.
const pending: Socket[] = [];
let busy = false;
server.on('connection', (socket) => {
  pending.push(socket);
  void next();
});

async function next(): Promise<void> {
  if (busy || loopEnded) return;
  const socket = pending.shift();
  if (socket === undefined) return;
  busy = true;
  const ok = await handle(socket);
  busy = false;
  if (!ok) {
    endRegistrationLoop();
    return;
  }
  void next();
}

/** One registration: false ends the loop (the `?` in run_registration_loop). */
function handle(socket: Socket): Promise<boolean> {
  return new Promise((resolve) => {
    let buf = '';
    socket.on('error', () => undefined);
    const finish = (line: string) => {
      socket.removeAllListeners('data');
      const request = registry.decode(line.trim());
      if ('code' in request) {
        socket.destroy();
        resolve(false);
        return;
      }
      const result = registry.register(request);
      const ack =
        'target_id' in result
          ? { ok: true, retryable: false, status: 'registered', target_id: result.target_id }
          : { error: { code: result.code, message: result.message }, ok: false, retryable: result.retryable };
      socket.write(`${JSON.stringify(ack)}\n`, (err) => {
        socket.end();
        resolve(err === undefined || err === null);
      });
    };
    socket.on('data', (chunk: Buffer) => {
      buf += chunk.toString('utf8');
      const nl = buf.indexOf('\n');
      if (nl !== -1) finish(buf.slice(0, nl + 1));
    });
    socket.once('end', () => finish(buf));
    socket.resume();
  });
}

function endRegistrationLoop(): void {
  loopEnded = true;
  for (const s of pending.splice(0)) s.destroy();
  // The listener is dropped with the loop: new connections are refused and the socket file stays (Rust's
  // UnixListener never unlinks). libuv unlinks a pipe's path, as it was given to bind, when the listener closes:
  // the path was bound relative to its directory, so close it from an empty directory and nothing is unlinked.
  const cwd = process.cwd();
  process.chdir(mkdtempSync(join(tmpdir(), 'relay-close-')));
  server.close();
  process.chdir(cwd);
}

// Bound by its name inside its directory (see endRegistrationLoop).
const cwdAtBind = process.cwd();
process.chdir(dirname(listenPath));
server.listen(basename(listenPath), () => {
  if (typeof reg.permissions === 'string') {
    const mode = parseInt(reg.permissions.replace(/^0+/, '') || '0', 8);
    if (!Number.isNaN(mode)) chmodSync(listenPath, mode);
  }
  process.stdout.write(`relay listening on ${config.listen?.public_url ?? 'wss://localhost:9443/supervisor'}\n`);
});
process.chdir(cwdAtBind);
server.on('error', (err) =>
  fail({
    code: 'registration_bind_failed',
    stage: 'registration_bind',
    message: `registration socket could not be bound: ${err.message}`,
    retryable: true,
  }),
);

process.on('SIGINT', () => process.exit(0));
