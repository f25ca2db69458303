import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { runIpcQuery } from '../../../src/supervisor/cli.js';
import { IpcError, IpcTimeoutError } from '../../../src/supervisor/errors.js';
import { createIpcClient } from '../../../src/supervisor/ipc-client.js';
import { parseWireJson, stringifyWireJson, toBigInt } from '../../../src/supervisor/json.js';
import { commandParams, IpcRequestError } from '../../../src/supervisor/protocol.js';
import { isAccepted, isRetryableAnswer, readState } from '../../../src/supervisor/results.js';
import { startLineServer, type LineServer } from '../../helpers/line-server.js';

const HELLO_OK = (id: string) =>
  `{"request_id":"${id}","ok":true,"result":{"type":"hello","protocol_version":"dashboard-ipc.v1","registration":{"target_id":"t","display_name":"t","ipc_path":"/x","lease_seconds":30,"supported_commands":[]}}}\n`;

let server: LineServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

function idOf(line: string): string {
  return (JSON.parse(line) as { request_id: string }).request_id;
}

describe('supervisor/ipc-client', () => {
  it('writes one request line with a UUID request id and reads one answer line', async () => {
    server = await startLineServer((line) => HELLO_OK(idOf(line)));
    const answer = await createIpcClient({ path: server.path }).hello();
    expect(server.lines).toHaveLength(1);
    const sent = JSON.parse(server.lines[0] ?? '') as Record<string, unknown>;
    expect(Object.keys(sent)).toEqual(['method', 'params', 'request_id']);
    expect(sent.request_id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(answer.response.ok).toBe(true);
    expect(answer.line).toBe(HELLO_OK(String(sent.request_id)).trimEnd());
  });

  it('times out as a typed IpcTimeoutError (request) or a timed_out outcome (call), and closes the connection', async () => {
    server = await startLineServer(() => undefined);
    const client = createIpcClient({ path: server.path, timeoutMs: 150 });
    const err = await client.state('t').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IpcTimeoutError);
    expect(err).toMatchObject({ timedOut: true, retryable: true, stage: 'response', kind: 'timeout', method: 'state' });
    const outcome = await client.call('state', { target_id: 't' }, { timeoutMs: 100 });
    expect(outcome.status).toBe('timed_out');
  });

  it('rejects with the abort reason as soon as the signal aborts', async () => {
    server = await startLineServer(() => undefined);
    const controller = new AbortController();
    const pending = createIpcClient({ path: server.path, timeoutMs: 30_000 }).hello({ signal: controller.signal });
    setTimeout(() => controller.abort(), 20);
    // Nobody answers and the timeout is 30 s: only the abort can settle it (an IpcTimeoutError would be the timeout).
    await expect(pending).rejects.toMatchObject({ name: 'AbortError' });
    await expect(createIpcClient({ path: server.path }).hello({ signal: AbortSignal.abort() })).rejects.toMatchObject({
      name: 'AbortError',
    });
  });

  it('caps the answer line (default 4 MiB, configurable) with a non-retryable error', async () => {
    server = await startLineServer(() => 'x'.repeat(2048));
    const err = await createIpcClient({ path: server.path, maxLineBytes: 1024 })
      .hello()
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(IpcError);
    expect(err).toMatchObject({ kind: 'too_large', retryable: false });
    expect((err as Error).message).toContain('1024 bytes');
  });

  it('accepts an invalid-request answer as the answer to our line, and refuses a foreign request id', async () => {
    const refusal =
      '{"request_id":"invalid-request","ok":false,"error":{"code":"unsupported_method","stage":"protocol_parse","target_id":null,"message":"unsupported dashboard IPC method health","retryable":false}}\n';
    server = await startLineServer((line) => (line.includes('"health"') ? refusal : HELLO_OK('someone-else')));
    const client = createIpcClient({ path: server.path });
    const { response } = await client.request('health', {});
    expect(response).toMatchObject({ ok: false, request_id: 'invalid-request', error: { code: 'unsupported_method' } });
    expect(isRetryableAnswer(response)).toBe(false);
    await expect(client.hello()).rejects.toMatchObject({ kind: 'invalid_response', retryable: false });
  });

  it('no socket file: ENOENT, retryable', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ipc-none-'));
    try {
      const outcome = await createIpcClient({ path: join(dir, 'missing.sock') }).call('hello', {});
      expect(outcome).toMatchObject({ status: 'failed', retryable: true, error: { kind: 'connect', code: 'ENOENT' } });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a stale socket file left by a killed process: ECONNREFUSED, retryable', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ipc-stale-'));
    const path = join(dir, 'stale.sock');
    try {
      const child = spawn(process.execPath, [
        '-e',
        `require('net').createServer().listen(${JSON.stringify(path)}, () => console.log('up'))`,
      ]);
      await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGKILL');
      await exited;
      expect(existsSync(path)).toBe(true);
      const outcome = await createIpcClient({ path }).call('hello', {});
      expect(outcome).toMatchObject({ status: 'failed', retryable: true, error: { kind: 'connect', code: 'ECONNREFUSED' } });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a connection closed before the answer line is a retryable failure', async () => {
    server = await startLineServer(() => 'close');
    const outcome = await createIpcClient({ path: server.path }).call('state', {});
    expect(outcome).toMatchObject({ status: 'failed', retryable: true, error: { kind: 'closed' } });
  });

  it('keeps numbers above 2^53 exact (decimal strings) and writes bigint nanos as bare integers', async () => {
    const big = '1747650000123456789';
    expect(Number(big).toString()).not.toBe(big); // JSON.parse would round it
    const parsed = parseWireJson(`{"a":${big},"b":9007199254740991,"c":-9007199254740993}`) as Record<string, unknown>;
    expect(parsed).toEqual({ a: big, b: 9007199254740991, c: '-9007199254740993' });
    expect(toBigInt(parsed.a as string)).toBe(1747650000123456789n);
    const params = commandParams('quarantine_child', {
      commandId: 'c',
      targetId: 't',
      childId: 'x',
      reason: 'r',
      requestedBy: 'remediator',
      confirmed: false,
      requestedAtUnixNanos: 1747650000123456789n,
    });
    expect(stringifyWireJson(params)).toContain(`"requested_at_unix_nanos":${big},`);
  });

  it('reads typed state results with lossless nanos', async () => {
    const line = `{"request_id":"ID","ok":true,"result":{"type":"state","target_id":"t","state":{"target":{"target_id":"t","display_name":"t","registration_state":"active","connection_state":"registered"},"topology":{"root":{"node_id":"/","child_id":null,"path":"/","name":"root supervisor","kind":"root_supervisor","tags":[],"criticality":"critical","state_summary":"root","diagnostics":{}},"nodes":[],"edges":[],"declaration_order":["/"]},"runtime_state":[],"child_runtime_records":[],"recent_events":[],"recent_logs":[],"dropped_event_count":0,"dropped_log_count":0,"config_version":"v","generated_at_unix_nanos":1747650000123456789,"state_generation":1}}}\n`;
    server = await startLineServer((l) => line.replace('ID', idOf(l)));
    const { response } = await createIpcClient({ path: server.path }).state('t');
    expect(readState(response).state.generated_at_unix_nanos).toBe('1747650000123456789');
    expect(isAccepted(response)).toBe(false);
  });

  it('commandParams fills every required field, derives command from the kind and refuses what cannot be sent', () => {
    const base = {
      commandId: 'c',
      targetId: 't',
      reason: 'r',
      requestedBy: 'remediator',
      confirmed: true,
      requestedAtUnixNanos: 1n,
    };
    expect(commandParams('remove_child', { ...base, childId: 'a' })).toEqual({
      command: 'remove_child',
      command_id: 'c',
      confirmed: true,
      correlation_id: null,
      reason: 'r',
      requested_at_unix_nanos: 1n,
      requested_by: 'remediator',
      target: { child_path: '/a' },
      target_id: 't',
    });
    expect(commandParams('shutdown_tree', base).target).toEqual({ child_path: null });
    expect(Object.keys(commandParams('add_child', { ...base, childManifest: 'name: a\n' }).target)).toEqual([
      'child_manifest',
      'child_path',
    ]);
    for (const bad of [
      () => commandParams('remove_child', { ...base, reason: ' ', childId: 'a' }),
      () => commandParams('remove_child', { ...base, childId: 'a/b' }),
      () => commandParams('remove_child', base),
      () => commandParams('add_child', base),
      () => commandParams('quarantine_child', { ...base, childId: 'a', childManifest: 'x' }),
      () => commandParams('quarantine_child', { ...base, childId: 'a', confirmed: undefined as unknown as boolean }),
    ]) {
      expect(bad).toThrow(IpcRequestError);
    }
  });

  it('runIpcQuery prints the raw answer line and maps outcomes to exit codes', async () => {
    server = await startLineServer((line) => (line.includes('"state"') ? undefined : HELLO_OK(idOf(line))));
    const hello = await runIpcQuery({ path: server.path, method: 'hello' });
    expect(hello.exitCode).toBe(0);
    expect(hello.output.startsWith('{"request_id":')).toBe(true);
    const state = await runIpcQuery({ path: server.path, method: 'state', params: { target_id: 't' }, timeoutMs: 100 });
    expect(state.exitCode).toBe(2);
    expect(JSON.parse(state.output)).toMatchObject({ error: { kind: 'timeout', timedOut: true, retryable: true } });
    const missing = await runIpcQuery({ path: `${server.path}.nope`, method: 'hello' });
    expect(missing.exitCode).toBe(3);
    expect(JSON.parse(missing.output)).toMatchObject({ error: { code: 'ENOENT', retryable: true } });
  });
});
