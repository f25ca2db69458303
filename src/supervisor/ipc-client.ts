/**
 * THE client of rust-tokio-supervisor's dashboard IPC (`dashboard-ipc.v1`). The `ipc` action, the `ipc` check,
 * the exporter and `remediator ipc` all talk to the socket through this module and nothing else.
 *
 * One exchange = connect to the Unix socket, write one request line, read one answer line, close: what the
 * relay does (rust-supervisor-relay `src/ipc_client.rs:181-237`). The server would keep the connection open for
 * more lines (`src/dashboard/runtime.rs:153`), but a fresh connection per request means a hung answer never
 * holds up the next one.
 *
 *   const client = createIpcClient({ path: '/run/rust-supervisor/payments-worker-a.sock' });
 *   const { response } = await client.state('payments-worker-a', { timeoutMs: 2000, signal });
 *   const state = readState(response);                                  // ./results.ts
 *
 * - `request*` throw `IpcError` when no answer came (`IpcTimeoutError` for a timeout: see `./errors.ts` for
 *   what is retryable). `call` never throws for those and returns an `IpcOutcome` instead, because a timeout
 *   is a result a procedure branches on (P1-004: `state` times out while `hello` answers).
 * - An aborted `signal` rejects with `signal.reason` (an `AbortError` by default) and closes the connection.
 * - An answer whose `request_id` is `invalid-request` is the server's answer to our line (it could not parse it or
 *   did not know the method, so it had no id to copy); any other foreign id is an invalid answer.
 * - Numbers above 2^53 come back as decimal strings (`./json.ts`).
 */
import { randomUUID } from 'node:crypto';
import { createConnection } from 'node:net';
import { closedError, connectError, invalidResponseError, ioError, IpcError, IpcTimeoutError, tooLargeError } from './errors.js';
import { parseWireJson, stringifyWireJson } from './json.js';
import {
  commandMethod,
  commandParams,
  helloParams,
  INVALID_REQUEST_ID,
  stateParams,
  type CommandInput,
  type CommandKind,
  type IpcRequest,
} from './protocol.js';
import { IpcResponse } from './schema.js';

export const DEFAULT_TIMEOUT_MS = 5_000;
export const DEFAULT_MAX_LINE_BYTES = 4 * 1024 * 1024;

export interface IpcClientOptions {
  /** The supervisor's `ipc.path`. */
  path: string;
  /** For the whole exchange (connect, write, read). Default 5 s; per request overridable. */
  timeoutMs?: number;
  /** The longest answer line accepted, newline excluded. Default 4 MiB. */
  maxLineBytes?: number;
}

export interface RequestOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
  /** Default: a fresh UUID. */
  requestId?: string;
}

/** An answer: the parsed envelope and the raw line (without its newline), exactly as the server wrote it. */
export interface IpcAnswer {
  request: IpcRequest;
  response: IpcResponse;
  line: string;
  elapsedMs: number;
}

export type IpcOutcome =
  | ({ status: 'answered' } & IpcAnswer)
  | { status: 'timed_out'; error: IpcTimeoutError; elapsedMs: number }
  | { status: 'failed'; error: IpcError; retryable: boolean; elapsedMs: number };

export interface IpcClient {
  readonly path: string;
  /** Any method name (an unknown one is answered `unsupported_method`, which is itself useful to see). */
  request(method: string, params: unknown, options?: RequestOptions): Promise<IpcAnswer>;
  hello(options?: RequestOptions): Promise<IpcAnswer>;
  state(targetId: string, options?: RequestOptions): Promise<IpcAnswer>;
  /** `command.<kind>` with every required field filled (`commandParams`). */
  command(kind: CommandKind, input: CommandInput, options?: RequestOptions): Promise<IpcAnswer>;
  /** Like `request`, but a missing answer is an outcome, not an exception. Still rejects on abort. */
  call(method: string, params: unknown, options?: RequestOptions): Promise<IpcOutcome>;
}

export function createIpcClient(options: IpcClientOptions): IpcClient {
  const base = {
    path: options.path,
    timeoutMs: options.timeoutMs ?? DEFAULT_TIMEOUT_MS,
    maxLineBytes: options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES,
  };
  const request = (method: string, params: unknown, opts: RequestOptions = {}) => exchange(base, method, params, opts);
  return {
    path: options.path,
    request,
    hello: (opts) => request('hello', helloParams(), opts),
    state: (targetId, opts) => request('state', stateParams(targetId), opts),
    command: async (kind, input, opts) => request(commandMethod(kind), commandParams(kind, input), opts),
    async call(method, params, opts = {}) {
      const started = performance.now();
      try {
        return { status: 'answered', ...(await request(method, params, opts)) };
      } catch (err) {
        const elapsedMs = performance.now() - started;
        if (err instanceof IpcTimeoutError) return { status: 'timed_out', error: err, elapsedMs };
        if (err instanceof IpcError) return { status: 'failed', error: err, retryable: err.retryable, elapsedMs };
        throw err;
      }
    },
  };
}

interface Settings {
  path: string;
  timeoutMs: number;
  maxLineBytes: number;
}

function exchange(settings: Settings, method: string, params: unknown, opts: RequestOptions): Promise<IpcAnswer> {
  const { path, maxLineBytes } = settings;
  const timeoutMs = opts.timeoutMs ?? settings.timeoutMs;
  const request: IpcRequest = { method, params, request_id: opts.requestId ?? randomUUID() };
  const line = `${stringifyWireJson(request)}\n`;
  const signal = opts.signal;
  if (signal?.aborted) return Promise.reject(signal.reason);
  const started = performance.now();

  return new Promise<IpcAnswer>((resolve, reject) => {
    const socket = createConnection({ path });
    const chunks: Buffer[] = [];
    let received = 0;
    let connected = false;
    let done = false;

    const finish = (err: unknown, answer?: IpcAnswer) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      if (answer !== undefined) resolve(answer);
      else reject(err);
    };
    const onAbort = () => finish(signal?.reason);
    const timer = setTimeout(
      () => finish(new IpcTimeoutError(path, method, timeoutMs, connected ? 'response' : 'connect')),
      timeoutMs,
    );
    signal?.addEventListener('abort', onAbort, { once: true });

    socket.once('connect', () => {
      connected = true;
      socket.write(line);
    });
    socket.on('error', (err: NodeJS.ErrnoException) =>
      finish(connected ? ioError(path, method, err) : connectError(path, method, err)),
    );
    socket.on('end', () => finish(closedError(path, method, received)));
    socket.on('close', () => finish(closedError(path, method, received)));
    socket.on('data', (chunk: Buffer) => {
      const newline = chunk.indexOf(0x0a);
      const take = newline === -1 ? chunk : chunk.subarray(0, newline);
      received += take.length;
      if (received > maxLineBytes) return finish(tooLargeError(path, method, maxLineBytes));
      chunks.push(take);
      if (newline === -1) return;
      const text = Buffer.concat(chunks).toString('utf8');
      try {
        const response = readEnvelope(text, request.request_id, path, method);
        finish(undefined, { request, response, line: text, elapsedMs: performance.now() - started });
      } catch (err) {
        finish(err);
      }
    });
  });
}

function readEnvelope(text: string, requestId: string, path: string, method: string): IpcResponse {
  let raw: unknown;
  try {
    raw = parseWireJson(text);
  } catch (err) {
    throw invalidResponseError(path, method, `not JSON: ${(err as Error).message}`, err);
  }
  const parsed = IpcResponse.safeParse(raw);
  if (!parsed.success) {
    throw invalidResponseError(path, method, parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
  }
  const response = parsed.data;
  if (response.request_id !== requestId && response.request_id !== INVALID_REQUEST_ID) {
    throw invalidResponseError(path, method, `request_id ${JSON.stringify(response.request_id)} is not ours (${requestId})`);
  }
  if (response.ok && response.result === undefined) throw invalidResponseError(path, method, 'ok: true without result');
  if (!response.ok && response.error === undefined) throw invalidResponseError(path, method, 'ok: false without error');
  return response;
}

/** What a bare connect to a Unix socket says about its listener. */
export type SocketProbe = 'refused' | 'live' | 'gone';

/**
 * Connect and close at once, sending nothing: refused (a stale socket file nobody listens on), accepted or no
 * answer within `timeoutMs` (live: a full backlog is a live process too), or the file went away. For the
 * supervisor's OWN IPC socket only (it serves until EOF); never the relay's registration socket, where a
 * connection without a registration ends the relay's registration loop.
 */
export function probeSocketListener(path: string, signal: AbortSignal, timeoutMs: number): Promise<SocketProbe> {
  return new Promise((resolve, reject) => {
    const conn = createConnection(path);
    const done = (p: SocketProbe | Error) => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      conn.destroy();
      if (p instanceof Error) reject(p);
      else resolve(p);
    };
    const onAbort = () => done(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
    const timer = setTimeout(() => done('live'), timeoutMs);
    signal.addEventListener('abort', onAbort, { once: true });
    conn.once('connect', () => done('live'));
    conn.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'ECONNREFUSED') done('refused');
      else if (err.code === 'ENOENT') done('gone');
      else done(err);
    });
  });
}
