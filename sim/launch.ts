/**
 * Start the simulated supervisor host and the relay stand-in as real processes, from a test, the e2e harness or a
 * demo script (no test helpers needed):
 *
 *   const relay = await startRelay({ dir });
 *   const sup = await startSupervisor({ dir, config: { children: [{ name: 'payment_loop' }] }, relay });
 *   ... sup.ipcPath, sup.adminPath, sup.pid ...
 *   await sup.stop(); await relay.stop();
 *
 * Each instance lives in its own directory (socket paths inside it), so parallel runs never collide.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { stringify as toYaml } from 'yaml';
import { createIpcClient } from '../src/supervisor/ipc-client.js';

export const SIM_BIN = fileURLToPath(new URL('./bin/', import.meta.url));

export interface SimProcess {
  pid: number;
  proc: ChildProcess;
  /** Everything written to stdout and stderr so far. */
  stdout(): string;
  stderr(): string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** SIGINT (a clean stop for both programs), then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  kill(signal?: NodeJS.Signals): void;
}

function launch(script: string, args: string[]): SimProcess {
  const file = fileURLToPath(new URL(script, import.meta.url));
  const proc = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), file, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  proc.stdout?.on('data', (c: Buffer) => (out += c.toString('utf8')));
  proc.stderr?.on('data', (c: Buffer) => (err += c.toString('utf8')));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    proc.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return {
    pid: proc.pid as number,
    proc,
    stdout: () => out,
    stderr: () => err,
    exited,
    async stop(graceMs = 10_000) {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill('SIGINT');
        const t = setTimeout(() => proc.kill('SIGKILL'), graceMs);
        const r = await exited;
        clearTimeout(t);
        return r;
      }
      return exited;
    },
    kill: (signal = 'SIGTERM') => void proc.kill(signal),
  };
}

async function until(what: string, check: () => boolean | Promise<boolean>, proc: SimProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let exited = false;
  void proc.exited.then(() => (exited = true));
  while (Date.now() < deadline) {
    if (await check()) return;
    if (exited) throw new Error(`${what}: the process exited\n${proc.stderr()}`);
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`${what}: not within ${timeoutMs} ms\n${proc.stderr()}`);
}

export interface RelayOptions {
  dir?: string;
  /** Default `<dir>/relay-registration.sock`. */
  listenPath?: string;
  /** Default: the instance dir (where the supervisor's socket is). */
  allowedPrefixes?: string[];
}

export interface RelayProcess extends SimProcess {
  dir: string;
  configFile: string;
  listenPath: string;
}

export async function startRelay(opts: RelayOptions = {}): Promise<RelayProcess> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'supsim-'));
  const listenPath = opts.listenPath ?? join(dir, 'relay-registration.sock');
  const configFile = join(dir, 'relay.yaml');
  writeFileSync(
    configFile,
    toYaml({
      listen: { bind: '127.0.0.1:9443', public_url: 'wss://localhost:9443/supervisor' },
      registration: {
        listen_path: listenPath,
        permissions: '0600',
        allowed_ipc_path_prefixes: opts.allowedPrefixes ?? [`${dir}/`],
        default_lease_seconds: 30,
        max_lease_seconds: 120,
      },
    }),
  );
  const p = launch('./relay/main.ts', ['--config', configFile]);
  await until('relay start', () => p.stdout().includes('relay listening on'), p, 30_000);
  return { ...p, dir, configFile, listenPath };
}

/** The sim config, as an object: the same keys as the YAML file (sim/README.md). */
export type SupervisorConfigInput = Record<string, unknown> & { ipc?: Record<string, unknown>; sim?: Record<string, unknown> };

export interface SupervisorOptions {
  dir?: string;
  config?: SupervisorConfigInput;
  /** Fill `ipc.registration` to register with this relay (heartbeat every `heartbeatSeconds`, default 1). */
  relay?: { listenPath: string };
  heartbeatSeconds?: number;
  /** Wait until the IPC socket answers hello (default) or only for the process to start. */
  wait?: 'hello' | 'none';
}

export interface SupervisorProcess extends SimProcess {
  dir: string;
  configFile: string;
  ipcPath: string;
  adminPath: string;
  targetId: string;
  /** POST a fault to the admin channel (not part of the contract). */
  fault(name: string, body?: Record<string, unknown>): Promise<void>;
}

export async function startSupervisor(opts: SupervisorOptions = {}): Promise<SupervisorProcess> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'supsim-'));
  const input = opts.config ?? {};
  const ipcIn = input.ipc ?? {};
  const ipcPath = (ipcIn.path as string | undefined) ?? join(dir, 'supervisor.sock');
  const targetId = (ipcIn.target_id as string | undefined) ?? 'payments-worker-a';
  const registration =
    ipcIn.registration ??
    (opts.relay !== undefined
      ? {
          enabled: true,
          relay_registration_path: opts.relay.listenPath,
          display_name: 'payments worker a',
          lease_seconds: 30,
          registration_heartbeat_interval_seconds: opts.heartbeatSeconds ?? 1,
        }
      : undefined);
  const config = {
    ...input,
    ipc: {
      enabled: true,
      target_id: targetId,
      path: ipcPath,
      bind_mode: 'create_new',
      ...ipcIn,
      ...(registration ? { registration } : {}),
    },
  };
  const adminPath = (input.sim?.admin_socket as string | undefined) ?? `${ipcPath}.admin`;
  const configFile = join(dir, `supervisor-${Date.now()}-${Math.random().toString(36).slice(2, 8)}.yaml`);
  writeFileSync(configFile, toYaml(config));
  const p = launch('./supervisor/main.ts', ['--config', configFile]);
  if (opts.wait !== 'none') {
    const client = createIpcClient({ path: ipcPath, timeoutMs: 1000 });
    await until(
      'supervisor IPC',
      async () => existsSync(ipcPath) && (await client.call('hello', {})).status === 'answered',
      p,
      30_000,
    );
    await until('admin channel', () => existsSync(adminPath), p, 10_000);
  }
  return {
    ...p,
    dir,
    configFile,
    ipcPath,
    adminPath,
    targetId,
    async fault(name, body = {}) {
      await postAdmin(adminPath, `/faults/${name}`, body);
    },
  };
}

/** POST JSON to the admin channel over its Unix socket. */
export function postAdmin(socketPath: string, path: string, body: Record<string, unknown>): Promise<void> {
  return import('node:http').then(
    ({ request }) =>
      new Promise<void>((resolve, reject) => {
        const data = JSON.stringify(body);
        const req = request({ socketPath, path, method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString('utf8')));
          res.on('end', () =>
            (res.statusCode ?? 500) < 300 ? resolve() : reject(new Error(`admin ${path}: ${res.statusCode} ${text}`)),
          );
        });
        req.once('error', reject);
        req.end(data);
      }),
  );
}
