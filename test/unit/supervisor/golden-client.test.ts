/**
 * Contract: the client against the golden transcripts. For every exchange, the client (through its own API, not
 * by copying the line) must write the golden request byte for byte, and must read the golden answer: envelope,
 * typed result, and every `*_unix_nanos` digit.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createIpcClient, type IpcAnswer, type IpcClient } from '../../../src/supervisor/ipc-client.js';
import { parseWireJson } from '../../../src/supervisor/json.js';
import { commandKindOf } from '../../../src/supervisor/protocol.js';
import { readCommandResult, readHello, readState } from '../../../src/supervisor/results.js';
import { IpcResult } from '../../../src/supervisor/schema.js';
import { goldenNames, loadGolden, type GoldenExchange } from '../../helpers/ipc-golden.js';
import { startLineServer, type LineServer } from '../../helpers/line-server.js';

let server: LineServer;
let expected: GoldenExchange | undefined;
let client: IpcClient;

beforeAll(async () => {
  // Answers the golden line only to the golden request (or to anything when the golden request is not JSON).
  server = await startLineServer((line) => {
    if (expected === undefined) return 'close';
    const isJson = expected.request.startsWith('{');
    return !isJson || line === expected.request ? `${expected.response}\n` : 'close';
  });
  client = createIpcClient({ path: server.path, timeoutMs: 2000 });
});
afterAll(() => server.close());

interface ParsedRequest {
  method: string;
  params: Record<string, unknown> & { target?: Record<string, unknown> };
  request_id: string;
}

/** Build the golden request with the client's API: typed helpers where one exists, else `request`. */
function send(ex: GoldenExchange): Promise<IpcAnswer> {
  if (!ex.request.startsWith('{')) return client.request('hello', {}); // the golden line is not JSON: any line will do
  const req = parseWireJson(ex.request) as ParsedRequest;
  const opts = { requestId: req.request_id };
  const kind = commandKindOf(req.method);
  const p = req.params;
  if (req.method === 'hello' && Object.keys(p).length === 0) return client.hello(opts);
  if (req.method === 'state' && Object.keys(p).length === 1 && typeof p.target_id === 'string')
    return client.state(p.target_id, opts);
  if (kind !== undefined && typeof p.command_id === 'string' && p.command === kind) {
    const target = p.target ?? {};
    return client
      .command(
        kind,
        {
          commandId: p.command_id,
          targetId: p.target_id as string,
          ...(typeof target.child_path === 'string' ? { childPath: target.child_path } : {}),
          ...(typeof target.child_manifest === 'string' ? { childManifest: target.child_manifest } : {}),
          reason: p.reason as string,
          requestedBy: p.requested_by as string,
          confirmed: p.confirmed as boolean,
          requestedAtUnixNanos: BigInt(p.requested_at_unix_nanos as number | string),
          correlationId: p.correlation_id as string | null,
        },
        opts,
      )
      .catch((err: unknown) => {
        // A golden that sends what the builder refuses (an empty reason, no child) goes out as a raw request.
        if ((err as Error).name === 'IpcRequestError')
          return client.request(req.method, { ...p, requested_at_unix_nanos: BigInt(String(p.requested_at_unix_nanos)) }, opts);
        throw err;
      });
  }
  return client.request(req.method, p, opts);
}

describe('supervisor/ipc-client against the golden transcripts', () => {
  const names = goldenNames();
  it('has the transcripts the contract lists', () => {
    expect(names.length).toBeGreaterThanOrEqual(15);
  });

  describe.each(names)('%s', (name) => {
    const golden = loadGolden(name);
    it('every golden file cites its sources', () => {
      expect(golden.header.join(' ')).toMatch(/\.rs:\d+/);
    });
    it.each(golden.exchanges.map((ex, i) => [i, ex] as const))('exchange %i', async (_i, ex) => {
      expected = ex;
      const answer = await send(ex);
      if (ex.request.startsWith('{')) expect(server.lines.at(-1)).toBe(ex.request);
      expect(answer.line).toBe(ex.response);

      const { response } = answer;
      if (response.ok) {
        const result = IpcResult.parse(response.result);
        if (result.type === 'hello') expect(readHello(response).protocol_version).toBe('dashboard-ipc.v1');
        if (result.type === 'state') expect(readState(response).state.state_generation).toBe(1);
        if (result.type === 'command_result') expect(readCommandResult(response).result.command_id).toBeTypeOf('string');
      } else {
        expect(response.error).toBeDefined();
      }
      // Lossless: every *_unix_nanos integer in the raw line reads back with all its digits.
      const raw = [...ex.response.matchAll(/"(\w+_unix_nanos)":(\d+)/g)].map((m) => m[2]);
      const read: string[] = [];
      JSON.stringify(response, (k, v: unknown) => {
        if (k.endsWith('_unix_nanos') && v !== null) read.push(String(v));
        return v;
      });
      expect(read).toEqual(raw);
    });
  });
});
