import { createServer } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parsePromValue, PROM_VALUE } from '../../../src/prometheus/schema.js';
import { isRetryable } from '../../../src/http/retryable.js';
import { createPrometheusClient, PrometheusQueryError, type PrometheusClient } from '../../../src/prometheus/client.js';
import { causedBy } from '../../helpers/abort.js';
import {
  badData,
  emptyVector,
  execution,
  hang,
  internal,
  matrix,
  notReady,
  queryTimeout,
  scalar,
  startFakePrometheus,
  stringResult,
  vector,
  type FakePrometheus,
} from '../../helpers/fake-prometheus.js';

let prom: FakePrometheus;
let client: PrometheusClient;

beforeAll(async () => {
  prom = await startFakePrometheus();
  client = createPrometheusClient({ url: prom.url, timeoutMs: 2000 });
});
afterAll(() => prom.close());
beforeEach(() => {
  prom.requests.length = 0;
  prom.setReady(true);
});

async function queryError(q: string, c = client): Promise<PrometheusQueryError> {
  const err = await c.query(q).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(PrometheusQueryError);
  return err as PrometheusQueryError;
}

/** A port that refuses connections: bound, then closed. */
async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const { port } = srv.address() as { port: number };
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

describe('prometheus/client', () => {
  it('POSTs the query form-encoded to /api/v1/query', async () => {
    const q = 'supervisor_ipc_up{instance="a b&c=d"}';
    prom.script(q, vector([{ instance: 'a b&c=d' }, '1']));
    await client.query(q);
    expect(prom.requests).toHaveLength(1);
    const [req] = prom.requests;
    expect(req).toMatchObject({ method: 'POST', path: '/api/v1/query', query: q });
    expect(req!.contentType).toMatch(/^application\/x-www-form-urlencoded/);
    expect(new URLSearchParams(req!.body).get('query')).toBe(q);
  });

  it('keeps a path prefix of the base URL', async () => {
    const prefixed = createPrometheusClient({ url: `${prom.url}/prom/`, timeoutMs: 1000 });
    await prefixed.query('up').catch(() => undefined);
    expect(prom.requests[0]!.path).toBe('/prom/api/v1/query');
  });

  it('normalises a vector: labels, numeric values, evaluation time', async () => {
    prom.script(
      'up',
      vector([{ __name__: 'up', instance: 'a' }, '1'], [{ __name__: 'up', instance: 'b' }, '0.30000000000000004']),
    );
    const before = Date.now();
    const res = await client.query('up');
    expect(res.resultType).toBe('vector');
    if (res.resultType !== 'vector') return;
    expect(res.samples.map((s) => [s.labels, s.value])).toEqual([
      [{ __name__: 'up', instance: 'a' }, 1],
      [{ __name__: 'up', instance: 'b' }, 0.30000000000000004],
    ]);
    expect(Math.abs(Date.parse(res.samples[0]!.at) - before)).toBeLessThan(5000);
  });

  it.each`
    text       | value
    ${'+Inf'}  | ${Infinity}
    ${'-Inf'}  | ${-Infinity}
    ${'NaN'}   | ${NaN}
    ${'1e-07'} | ${1e-7}
    ${'1e+22'} | ${1e22}
    ${'-0'}    | ${-0}
  `('maps the sample value $text', async ({ text, value }: { text: string; value: number }) => {
    prom.script(`special_${text}`, vector([{}, text]));
    const res = await client.query(`special_${text}`);
    expect(res.resultType === 'vector' && res.samples[0]!.value).toBe(value);
  });

  // Issue 9: only values Prometheus really sends are numbers. JavaScript's Number() reads all of these as numbers
  // (0, 1, 1, 1000…), which made `== 1` checks pass on a value Prometheus never wrote.
  it.each([
    '',
    ' ',
    '0x1',
    ' 1',
    '1 ',
    '1_000',
    'Infinity',
    '-Infinity',
    'Inf',
    '.5',
    '+1',
    '1.',
    '0b1',
    '0o1',
    '1e5',
    '1E+05',
    'nan',
    'true',
  ])('refuses the sample value %j (vector and scalar): the query fails, it is never a number', async (text) => {
    prom.script(`odd_${JSON.stringify(text)}`, vector([{ instance: 'a' }, text]));
    const err = await client.query(`odd_${JSON.stringify(text)}`).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PrometheusQueryError);
    expect((err as Error).message).toMatch(/unexpected response .*not a sample value as Prometheus writes one/);
    prom.script(`scalar_${JSON.stringify(text)}`, scalar(text));
    await expect(client.query(`scalar_${JSON.stringify(text)}`)).rejects.toBeInstanceOf(PrometheusQueryError);
  });

  it('every float as Go writes it (strconv, shortest) is accepted and read back exactly (property)', () => {
    // Go's 'f'/'e' choice and shortest digits equal JavaScript's String(), except that Go pads the exponent to 2 digits.
    const goFormat = (v: number) => String(v).replace(/e([+-])(\d)$/, 'e$10$2');
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), (v) => {
        const text = Object.is(v, -0) ? '-0' : goFormat(v);
        expect(PROM_VALUE.test(text), text).toBe(true);
        expect(parsePromValue(text)).toBe(v);
      }),
      { numRuns: 2000 },
    );
    fc.assert(
      fc.property(fc.string(), (text) => {
        if (!PROM_VALUE.test(text)) expect(parsePromValue(text)).toBeNaN();
      }),
      { numRuns: 2000 },
    );
  });

  it('an empty vector is a result with no samples, not an error', async () => {
    prom.script('absent_metric', emptyVector());
    await expect(client.query('absent_metric')).resolves.toEqual({ resultType: 'vector', samples: [] });
  });

  it('a scalar becomes one sample without labels', async () => {
    prom.script('scalar(up)', scalar('+Inf'));
    const res = await client.query('scalar(up)');
    expect(res).toMatchObject({ resultType: 'scalar', samples: [{ labels: {}, value: Infinity }] });
  });

  it('a string keeps its text', async () => {
    prom.script('"hello"', stringResult('hello'));
    await expect(client.query('"hello"')).resolves.toMatchObject({ resultType: 'string', text: 'hello' });
  });

  it('a range vector is a non-retryable error naming the query', async () => {
    prom.script('up[5m]', matrix([{ instance: 'a' }, ['1', '1']]));
    const err = await queryError('up[5m]');
    expect(err.retryable).toBe(false);
    expect(err.message).toContain('"up[5m]"');
    expect(err.message).toContain('matrix');
  });

  it.each`
    name                    | response          | httpStatus | errorType      | retryable
    ${'400 bad_data'}       | ${badData()}      | ${400}     | ${'bad_data'}  | ${false}
    ${'422 execution'}      | ${execution()}    | ${422}     | ${'execution'} | ${false}
    ${'503 timeout (JSON)'} | ${queryTimeout()} | ${503}     | ${'timeout'}   | ${true}
    ${'500 internal'}       | ${internal()}     | ${500}     | ${'internal'}  | ${true}
    ${'503 plain text'}     | ${notReady()}     | ${503}     | ${undefined}   | ${true}
  `('$name → PrometheusQueryError retryable=$retryable', async ({ name, response, httpStatus, errorType, retryable }) => {
    const q = `failing{case="${name as string}"}`;
    prom.script(q, response);
    const err = await queryError(q);
    expect(err).toMatchObject({ retryable, httpStatus, errorType });
    expect(err.message).toContain(JSON.stringify(q));
  });

  it('puts Prometheus error text and type into the message', async () => {
    prom.script('up{', badData('invalid parameter "query": 1:4: parse error: unexpected end of input inside braces'));
    const err = await queryError('up{');
    expect(err.message).toBe(
      'Prometheus query "up{" failed: bad_data: invalid parameter "query": 1:4: parse error: unexpected end of input inside braces (HTTP 400)',
    );
  });

  it('handles the non-JSON 503 before Prometheus is ready', async () => {
    prom.setReady(false);
    const err = await queryError('up');
    expect(err).toMatchObject({ retryable: true, httpStatus: 503 });
    expect(err.message).toBe('Prometheus query "up" failed: HTTP 503 Service Unavailable');
  });

  it('a scripted sequence: failure, then recovery', async () => {
    prom.script('flappy', queryTimeout(), vector([{}, '1']));
    await queryError('flappy');
    await expect(client.query('flappy')).resolves.toMatchObject({ resultType: 'vector' });
  });

  it('connection refused is retryable and names the query and where, without credentials', async () => {
    const port = await closedPort();
    const c = createPrometheusClient({ url: `http://user:s3cret-pw@127.0.0.1:${port}/?token=s3cret-tok`, timeoutMs: 1000 });
    const err = await queryError('up', c);
    expect(err.retryable).toBe(true);
    expect(err.httpStatus).toBeUndefined();
    expect(err.message).toContain('"up"');
    expect(err.message).toContain(`127.0.0.1:${port}`);
    expect(err.message).not.toMatch(/s3cret/);
    expect(JSON.stringify(err.cause, Object.getOwnPropertyNames(err.cause))).not.toMatch(/s3cret/);
  });

  it('a client timeout is retryable', async () => {
    prom.script('slow', hang());
    const c = createPrometheusClient({ url: prom.url, timeoutMs: 100 });
    const err = await queryError('slow', c);
    expect(err.retryable).toBe(true);
    expect(err.message).toMatch(/timed out after 100 ms/);
  });

  it('honours an AbortSignal: the abort, not an answer or the timeout, ends a hanging query', async () => {
    prom.script('slow', hang());
    const ac = new AbortController();
    const pending = client.query('slow', ac.signal);
    await prom.waitForRequest((r) => r.query === 'slow');
    const reason = new Error('test abort');
    ac.abort(reason);
    const err = await pending.catch((e: unknown) => e);
    expect(causedBy(err, reason), String(err)).toBe(true);
    expect(err).toBeInstanceOf(PrometheusQueryError);
    expect((err as PrometheusQueryError).retryable).toBe(false);
  });

  it('ready() follows /-/ready and is false when unreachable', async () => {
    await expect(client.ready()).resolves.toBe(true);
    prom.setReady(false);
    await expect(client.ready()).resolves.toBe(false);
    expect(prom.requests.at(-1)).toMatchObject({ method: 'GET', path: '/-/ready' });
    const port = await closedPort();
    await expect(createPrometheusClient({ url: `http://127.0.0.1:${port}` }).ready()).resolves.toBe(false);
  });
});

describe('retryable', () => {
  it.each`
    input                                                          | expected
    ${500}                                                         | ${true}
    ${503}                                                         | ${true}
    ${429}                                                         | ${true}
    ${400}                                                         | ${false}
    ${401}                                                         | ${false}
    ${404}                                                         | ${false}
    ${422}                                                         | ${false}
    ${200}                                                         | ${false}
    ${Object.assign(new Error('x'), { code: 'ECONNREFUSED' })}     | ${true}
    ${Object.assign(new Error('x'), { code: 'ECONNRESET' })}       | ${true}
    ${Object.assign(new Error('x'), { code: 'ECONNABORTED' })}     | ${true}
    ${Object.assign(new Error('x'), { code: 'ERR_CANCELED' })}     | ${false}
    ${{ response: { status: 502 } }}                               | ${true}
    ${{ response: { status: 403 }, code: 'ERR_BAD_REQUEST' }}      | ${false}
    ${new Error('fetch failed', { cause: { code: 'ETIMEDOUT' } })} | ${true}
    ${new TypeError('Invalid URL')}                                | ${false}
    ${undefined}                                                   | ${false}
  `('isRetryable($input) is $expected', ({ input, expected }: { input: unknown; expected: boolean }) => {
    expect(isRetryable(input)).toBe(expected);
  });
});
