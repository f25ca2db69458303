import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { http, HttpSpec } from '../../../src/actions/http.js';
import { ActionError, OUTPUT_LIMIT } from '../../../src/actions/types.js';
import { actionContext, describeActionContract } from './contract.js';

interface Seen {
  method: string;
  path: string;
  headers: IncomingMessage['headers'];
  body: string;
}

let server: Server;
let base: string;
let refused: string;
const seen: Seen[] = [];
const arrivals: ((s: Seen) => void)[] = [];

const routes: Record<string, (res: ServerResponse, req: Seen) => void> = {
  '/jobs/a/cancel': (res) => json(res, 200, { result: 'Accepted' }),
  '/rejected': (res) => json(res, 409, { result: 'Rejected', reason: 'child is running' }),
  '/text': (res) => text(res, 200, 'plain words\n'),
  '/looks-json': (res) => text(res, 200, '{"a":1}'),
  '/bad-json': (res) => json(res, 200, '{not json' as unknown as object, true),
  '/boom': (res) => text(res, 500, 'Internal Server Error'),
  '/accepted': (res) => text(res, 202, ''),
  '/big': (res) => text(res, 200, 'x'.repeat(OUTPUT_LIMIT * 3)),
  '/redirect': (res) => (res.writeHead(302, { Location: '/text' }), res.end()),
  '/echo': (res, req) => json(res, 200, { method: req.method, headers: req.headers, body: req.body }),
  '/hang': () => undefined,
};

beforeAll(async () => {
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const s: Seen = {
        method: req.method ?? '',
        path: url.pathname,
        headers: req.headers,
        body: Buffer.concat(chunks).toString(),
      };
      seen.push(s);
      arrivals.splice(0).forEach((f) => f(s));
      (routes[url.pathname] ?? ((r: ServerResponse) => text(r, 404, 'not found')))(res, s);
    });
  });
  base = await listen(server);
  const closed = createServer();
  refused = await listen(closed);
  await new Promise((r) => closed.close(r));
});
afterAll(() => {
  server.closeAllConnections();
  return new Promise((r) => server.close(r));
});
beforeEach(() => {
  seen.length = 0;
});

const nextRequest = (): Promise<Seen> => new Promise((r) => arrivals.push(r));
const spec = (s: Partial<HttpSpec> & { url: string }): HttpSpec => HttpSpec.parse(s);

describeActionContract(http, {
  valid: {
    method: 'POST',
    url: 'http://supervisor:8080/children/{{ labels.child }}/remove',
    headers: { Authorization: 'Bearer x' },
    timeout: '5s',
  },
  slow: () => spec({ method: 'GET', url: `${base}/hang` }),
  started: () => nextRequest().then(() => undefined),
  bigOutput: () => spec({ method: 'GET', url: `${base}/big` }),
  failing: (secret) =>
    spec({
      url: `http://user:${secret}@${refused.slice('http://'.length)}/hooks/${secret}?token=${secret}`,
      headers: { Authorization: `Bearer ${secret}`, 'X-Token': secret },
      body: { token: secret },
    }),
});

describe('actions/http', () => {
  it('POSTs a JSON body with headers; a 2xx JSON answer succeeds with the parsed body', async () => {
    const result = await http.run(
      spec({ url: `${base}/jobs/a/cancel`, headers: { 'X-Request-Id': 'r1' }, body: { reason: 'restart', n: 1 } }),
      actionContext(),
    );
    expect(result).toMatchObject({ status: 'succeeded', httpStatus: 200, body: { result: 'Accepted' } });
    expect(result.output).toBe('HTTP 200 OK\n{"result":"Accepted"}');
    expect(seen[0]).toMatchObject({ method: 'POST', path: '/jobs/a/cancel', body: '{"reason":"restart","n":1}' });
    expect(seen[0]!.headers['content-type']).toBe('application/json');
    expect(seen[0]!.headers['x-request-id']).toBe('r1');
  });

  it('a caller-given Content-Type wins', async () => {
    await http.run(
      spec({ url: `${base}/echo`, headers: { 'content-type': 'application/merge-patch+json' }, body: {} }),
      actionContext(),
    );
    expect(seen[0]!.headers['content-type']).toBe('application/merge-patch+json');
  });

  it('a non-2xx answer is a failed result, not an exception', async () => {
    const result = await http.run(spec({ url: `${base}/rejected` }), actionContext());
    expect(result).toMatchObject({ status: 'failed', httpStatus: 409, body: { result: 'Rejected', reason: 'child is running' } });
    await expect(http.run(spec({ url: `${base}/boom` }), actionContext())).resolves.toMatchObject({
      status: 'failed',
      httpStatus: 500,
      body: 'Internal Server Error',
      output: 'HTTP 500 Internal Server Error\nInternal Server Error',
    });
  });

  it('okStatus decides what succeeds', async () => {
    await expect(http.run(spec({ url: `${base}/rejected`, okStatus: [200, 409] }), actionContext())).resolves.toMatchObject({
      status: 'succeeded',
    });
    await expect(http.run(spec({ url: `${base}/jobs/a/cancel`, okStatus: [202] }), actionContext())).resolves.toMatchObject({
      status: 'failed',
    });
  });

  it('text stays text; JSON-looking text is parsed; broken JSON stays text; no body has no body', async () => {
    await expect(http.run(spec({ method: 'GET', url: `${base}/text` }), actionContext())).resolves.toMatchObject({
      body: 'plain words\n',
    });
    await expect(http.run(spec({ method: 'GET', url: `${base}/looks-json` }), actionContext())).resolves.toMatchObject({
      body: { a: 1 },
    });
    await expect(http.run(spec({ method: 'GET', url: `${base}/bad-json` }), actionContext())).resolves.toMatchObject({
      body: '{not json',
    });
    const empty = await http.run(spec({ url: `${base}/accepted` }), actionContext());
    expect(empty).toMatchObject({ status: 'succeeded', httpStatus: 202, output: 'HTTP 202 Accepted' });
    expect(empty).not.toHaveProperty('body');
  });

  it('a big text body is capped in body and output', async () => {
    const result = await http.run(spec({ method: 'GET', url: `${base}/big` }), actionContext());
    expect((result.body as string).length).toBeLessThan(OUTPUT_LIMIT + 100);
  });

  it('does not follow redirects (a 3xx is the answer)', async () => {
    await expect(http.run(spec({ method: 'GET', url: `${base}/redirect` }), actionContext())).resolves.toMatchObject({
      status: 'failed',
      httpStatus: 302,
    });
    expect(seen.map((s) => s.path)).toEqual(['/redirect']);
  });

  it.each(['GET', 'PUT', 'PATCH', 'DELETE', 'HEAD'] as const)('sends %s', async (method) => {
    const result = await http.run(spec({ method, url: `${base}/echo` }), actionContext());
    expect(result.httpStatus).toBe(200);
    expect(seen[0]!.method).toBe(method);
  });

  it('connection refused: a retryable ActionError naming the method and host', async () => {
    const err = await http.run(spec({ url: `${refused}/x` }), actionContext()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ActionError);
    expect(err).toMatchObject({ retryable: true });
    expect((err as Error).message).toBe(`POST ${refused}/… failed: ECONNREFUSED`);
  });

  it('timeout: a retryable ActionError', async () => {
    const err = await http
      .run(spec({ method: 'GET', url: `${base}/hang`, timeout: '100ms' }), actionContext())
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'ActionError', retryable: true });
    expect((err as Error).message).toContain('timed out after 100ms');
  });

  it('an invalid URL: a non-retryable ActionError', async () => {
    const err = await http.run(spec({ url: 'not a url' }), actionContext()).catch((e: unknown) => e);
    expect(err).toMatchObject({ name: 'ActionError', retryable: false });
  });

  it('render(): url → url sink, header values → header sink, body strings → data sink (recursively)', () => {
    const calls: [string, string][] = [];
    const rendered = http.render(
      spec({
        url: 'http://h/{{ labels.child }}',
        headers: { Authorization: 'Bearer {{ env.TOKEN }}' },
        body: { child: '{{ labels.child }}', nested: [{ why: 'x' }, 3, true, null] },
      }),
      (t, sink) => (calls.push([t, sink]), `<${t}>`),
    );
    expect(calls).toEqual([
      ['http://h/{{ labels.child }}', 'url'],
      ['Bearer {{ env.TOKEN }}', 'header'],
      ['{{ labels.child }}', 'data'],
      ['x', 'data'],
    ]);
    expect(rendered.body).toEqual({ child: '<{{ labels.child }}>', nested: [{ why: '<x>' }, 3, true, null] });
  });

  it('describe() leaves out user info and the query string', () => {
    expect(http.describe(spec({ url: 'https://u:p@h:1/a/b?token=t' }))).toBe('POST https://h:1/a/b?…');
  });
});

function listen(s: Server): Promise<string> {
  return new Promise((resolve) =>
    s.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(s.address() as AddressInfo).port}`)),
  );
}

function json(res: ServerResponse, status: number, body: object, raw = false): void {
  res.writeHead(status, { 'Content-Type': 'application/json' });
  res.end(raw ? body : JSON.stringify(body));
}

function text(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'Content-Type': 'text/plain' });
  res.end(body);
}
