/**
 * A fake Prometheus 2.42 on 127.0.0.1 (node:http, like Go's httptest): answers `/api/v1/query` and `/-/ready`
 * byte for byte as Prometheus' HTTP API answers (see src/prometheus/client.ts), with scripted responses per query,
 * and records every request.
 *
 *   const prom = await startFakePrometheus();
 *   prom.script('up', vector([{ instance: 'a' }, '1']), badData('…'));   // first call, then the last repeats
 *   …
 *   await prom.close();
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export type FakeResponse =
  | { kind: 'vector'; samples: [Record<string, string>, string][] }
  | { kind: 'scalar'; value: string }
  | { kind: 'string'; value: string }
  | { kind: 'matrix'; series: [Record<string, string>, string[]][] }
  | { kind: 'error'; status: number; errorType: string; error: string }
  | { kind: 'text'; status: number; text: string }
  | { kind: 'hang' };

/** An instant vector; values are strings as Prometheus writes them ("1", "+Inf", "NaN", "1e-07"). */
export const vector = (...samples: [Record<string, string>, string][]): FakeResponse => ({ kind: 'vector', samples });
export const emptyVector = (): FakeResponse => ({ kind: 'vector', samples: [] });
export const scalar = (value: string): FakeResponse => ({ kind: 'scalar', value });
export const stringResult = (value: string): FakeResponse => ({ kind: 'string', value });
export const matrix = (...series: [Record<string, string>, string[]][]): FakeResponse => ({ kind: 'matrix', series });
/** 400 bad_data, e.g. a parse error. */
export const badData = (
  error = 'invalid parameter "query": 1:4: parse error: unexpected end of input inside braces',
): FakeResponse => ({
  kind: 'error',
  status: 400,
  errorType: 'bad_data',
  error,
});
/** 422 execution: a runtime error of the query. */
export const execution = (
  error = 'found duplicate series for the match group {instance="a"} on the right hand-side of the operation',
): FakeResponse => ({
  kind: 'error',
  status: 422,
  errorType: 'execution',
  error,
});
/** 503 timeout (JSON): the query ran out of time on the server. */
export const queryTimeout = (): FakeResponse => ({
  kind: 'error',
  status: 503,
  errorType: 'timeout',
  error: 'query timed out in query execution',
});
/** 500 internal: storage errors. */
export const internal = (error = 'unexpected error: storage closed'): FakeResponse => ({
  kind: 'error',
  status: 500,
  errorType: 'internal',
  error,
});
/** The plain-text 503 every /api/v1 call gets before Prometheus is ready. */
export const notReady = (): FakeResponse => ({ kind: 'text', status: 503, text: 'Service Unavailable' });
/** Accepts the request and never answers (for client timeouts and aborts). */
export const hang = (): FakeResponse => ({ kind: 'hang' });

export interface RecordedRequest {
  method: string;
  path: string;
  contentType: string | undefined;
  /** The raw request body. */
  body: string;
  /** The `query` parameter as Prometheus reads it (`r.FormValue`: URL query, then form body). */
  query: string | undefined;
}

export interface FakePrometheus {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  readonly requests: RecordedRequest[];
  /** Responses for one query, in order; the last one repeats. Unscripted queries get an empty vector. */
  script(query: string, ...responses: FakeResponse[]): void;
  /** Not ready: `/-/ready` and every `/api/v1/*` call answer a plain-text 503 (default: ready). */
  setReady(ready: boolean): void;
  /** Queries made so far (in order), optionally only those of one query. */
  queries(query?: string): string[];
  /** Resolves when a request matching `match` has arrived (already recorded ones count). */
  waitForRequest(match: (r: RecordedRequest) => boolean): Promise<RecordedRequest>;
  close(): Promise<void>;
}

export async function startFakePrometheus(): Promise<FakePrometheus> {
  const scripts = new Map<string, FakeResponse[]>();
  const requests: RecordedRequest[] = [];
  let ready = true;
  const waiters: { match: (r: RecordedRequest) => boolean; resolve: (r: RecordedRequest) => void }[] = [];

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => handle(req, Buffer.concat(chunks).toString('utf8'), res));
  });

  function handle(req: IncomingMessage, body: string, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const contentType = req.headers['content-type'];
    // Go's r.FormValue: URL query first, then a form-encoded POST body; any other body is ignored.
    let query = url.searchParams.get('query') ?? undefined;
    if (query === undefined && req.method === 'POST' && contentType?.startsWith('application/x-www-form-urlencoded')) {
      query = new URLSearchParams(body).get('query') ?? undefined;
    }
    const recorded: RecordedRequest = { method: req.method ?? '', path: url.pathname, contentType, body, query };
    requests.push(recorded);
    for (const w of waiters.filter((w) => w.match(recorded))) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve(recorded);
    }

    if (url.pathname === '/-/ready' && (req.method === 'GET' || req.method === 'HEAD')) {
      return ready ? text(res, 200, 'Prometheus Server is Ready.\n') : text(res, 503, 'Service Unavailable');
    }
    if (url.pathname !== '/api/v1/query') return text(res, 404, '404 page not found\n');
    if (req.method !== 'GET' && req.method !== 'POST') return text(res, 405, 'Method Not Allowed');
    if (!ready) return text(res, 503, 'Service Unavailable');
    if (query === undefined || query === '') {
      return answer(res, {
        kind: 'error',
        status: 400,
        errorType: 'bad_data',
        error: 'invalid parameter "query": 1:1: parse error: no expression found in input',
      });
    }
    const script = scripts.get(query);
    const next = script && script.length > 1 ? script.shift() : script?.[0];
    answer(res, next ?? emptyVector());
  }

  function answer(res: ServerResponse, r: FakeResponse): void {
    const now = Math.round(Date.now()) / 1000; // Unix seconds, millisecond precision, as Prometheus writes them
    switch (r.kind) {
      case 'hang':
        return;
      case 'text':
        return text(res, r.status, r.text);
      case 'error':
        return json(res, r.status, { status: 'error', errorType: r.errorType, error: r.error });
      case 'vector':
        return json(res, 200, {
          status: 'success',
          data: { resultType: 'vector', result: r.samples.map(([metric, v]) => ({ metric, value: [now, v] })) },
        });
      case 'scalar':
        return json(res, 200, { status: 'success', data: { resultType: 'scalar', result: [now, r.value] } });
      case 'string':
        return json(res, 200, { status: 'success', data: { resultType: 'string', result: [now, r.value] } });
      case 'matrix':
        return json(res, 200, {
          status: 'success',
          data: {
            resultType: 'matrix',
            result: r.series.map(([metric, vs]) => ({ metric, values: vs.map((v, i) => [now - vs.length + i + 1, v]) })),
          },
        });
    }
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    script(query, ...responses) {
      if (responses.length === 0) throw new Error('script needs at least one response');
      scripts.set(query, [...responses]);
    },
    setReady(value) {
      ready = value;
    },
    queries(query) {
      return requests.flatMap((r) =>
        r.path === '/api/v1/query' && r.query !== undefined && (query === undefined || r.query === query) ? [r.query] : [],
      );
    },
    waitForRequest(match) {
      const seen = requests.find(match);
      return seen ? Promise.resolve(seen) : new Promise((resolve) => waiters.push({ match, resolve }));
    },
    close() {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

function text(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain; charset=utf-8', 'X-Content-Type-Options': 'nosniff' });
  res.end(body);
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(JSON.stringify(body));
}
