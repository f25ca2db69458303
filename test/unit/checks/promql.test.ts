import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compare, promql } from '../../../src/checks/promql.js';
import type { Op, PromqlSpec, PromValue } from '../../../src/checks/promql.js';
import { CheckUnavailableError, type CheckContext } from '../../../src/checks/types.js';
import { silentLogger } from '../../../src/log.js';
import { createPrometheusClient, PrometheusQueryError } from '../../../src/prometheus/client.js';
import {
  badData,
  emptyVector,
  execution,
  hang,
  notReady,
  queryTimeout,
  scalar,
  startFakePrometheus,
  stringResult,
  vector,
  type FakePrometheus,
} from '../../helpers/fake-prometheus.js';
import { freePort } from '../../helpers/ports.js';
import { describeCheckContract } from './contract.js';

let prom: FakePrometheus;
let ctx: CheckContext;

beforeAll(async () => {
  prom = await startFakePrometheus();
  ctx = {
    signal: new AbortController().signal,
    log: silentLogger,
    steps: new Map(),
    currentStep: 'restart-relay',
    prometheus: createPrometheusClient({ url: prom.url, timeoutMs: 2000 }),
  };
});
afterAll(() => prom.close());

let n = 0;
/** Scripts a fresh query and evaluates the spec against it. */
async function evaluate(spec: Omit<PromqlSpec, 'promql'>, ...responses: Parameters<FakePrometheus['script']>[1][]) {
  const q = `test_metric_${++n}`;
  prom.script(q, ...responses);
  return promql.evaluate({ promql: q, ...spec }, ctx);
}

describe('checks/promql', () => {
  it('== 1 holds when every series is 1', async () => {
    const out = await evaluate({ op: '==', value: 1 }, vector([{ instance: 'a' }, '1'], [{ instance: 'b' }, '1']));
    expect(out.holds).toBe(true);
    expect(out.observed.map((o) => [o.labels, o.value])).toEqual([
      [{ instance: 'a' }, 1],
      [{ instance: 'b' }, 1],
    ]);
    expect(out.reason).toBe('all 2 series == 1');
  });

  it('does not hold when one series compares false, and names it', async () => {
    const out = await evaluate({ op: '==', value: 1 }, vector([{ instance: 'a' }, '1'], [{ instance: 'x' }, '0']));
    expect(out).toMatchObject({ holds: false, reason: 'value 0 for {instance="x"}, expected == 1' });
  });

  it('counts further failing series', async () => {
    const out = await evaluate(
      { op: '>', value: 5 },
      vector([{ __name__: 'm', i: '1' }, '1'], [{ __name__: 'm', i: '2' }, '2'], [{ i: '3' }, '9']),
    );
    expect(out.reason).toBe('value 1 for m{i="1"}, expected > 5 (and 1 more of 3 series)');
  });

  it('no data never holds, and is not 0', async () => {
    for (const [op, value] of [
      ['==', 0],
      ['<', 1],
      ['!=', 1],
    ] as const) {
      const out = await evaluate({ op, value }, emptyVector());
      expect(out).toEqual({ holds: false, observed: [], reason: 'no data' });
    }
  });

  it('empty: true holds only for no series', async () => {
    await expect(evaluate({ empty: true }, emptyVector())).resolves.toMatchObject({ holds: true, observed: [] });
    const out = await evaluate({ empty: true }, vector([{ instance: 'a' }, '0']));
    expect(out).toMatchObject({ holds: false, reason: 'expected no series, got 1: {instance="a"} = 0' });
  });

  it('a scalar is one series without labels', async () => {
    await expect(evaluate({ op: '>=', value: 3 }, scalar('3'))).resolves.toMatchObject({
      holds: true,
      observed: [{ labels: {}, value: 3 }],
    });
  });

  it('neither op nor empty: holds iff there is data', async () => {
    await expect(evaluate({}, vector([{}, '0']))).resolves.toMatchObject({ holds: true });
    await expect(evaluate({}, emptyVector())).resolves.toMatchObject({ holds: false, reason: 'no data' });
  });

  it('a string result does not hold', async () => {
    await expect(evaluate({ op: '==', value: 1 }, stringResult('1'))).resolves.toMatchObject({
      holds: false,
      observed: [{ value: '1' }],
    });
  });

  it('keeps +Inf, -Inf and NaN as strings in observations, so JSON keeps them', async () => {
    const out = await evaluate({ op: '!=', value: 0 }, vector([{ s: 'p' }, '+Inf'], [{ s: 'n' }, '-Inf'], [{ s: 'nan' }, 'NaN']));
    expect(out.observed.map((o) => o.value)).toEqual(['+Inf', '-Inf', 'NaN']);
    expect(JSON.parse(JSON.stringify(out.observed)).map((o: { value: unknown }) => o.value)).toEqual(['+Inf', '-Inf', 'NaN']);
    expect(out.holds).toBe(true);
  });

  it('NaN == "NaN" holds; NaN == 0 does not', async () => {
    await expect(evaluate({ op: '==', value: 'NaN' }, vector([{}, 'NaN']))).resolves.toMatchObject({ holds: true });
    await expect(evaluate({ op: '==', value: 0 }, vector([{}, 'NaN']))).resolves.toMatchObject({
      holds: false,
      reason: 'value NaN for {}, expected == 0',
    });
  });

  it.each`
    sample       | op      | value     | holds
    ${1}         | ${'=='} | ${1}      | ${true}
    ${0}         | ${'=='} | ${1}      | ${false}
    ${0}         | ${'!='} | ${1}      | ${true}
    ${2}         | ${'>'}  | ${1}      | ${true}
    ${1}         | ${'>'}  | ${1}      | ${false}
    ${1}         | ${'>='} | ${1}      | ${true}
    ${0}         | ${'<'}  | ${1}      | ${true}
    ${1}         | ${'<='} | ${1}      | ${true}
    ${Infinity}  | ${'=='} | ${'+Inf'} | ${true}
    ${Infinity}  | ${'>'}  | ${1e308}  | ${true}
    ${Infinity}  | ${'>'}  | ${'+Inf'} | ${false}
    ${Infinity}  | ${'>='} | ${'+Inf'} | ${true}
    ${-Infinity} | ${'<'}  | ${-1e308} | ${true}
    ${-Infinity} | ${'=='} | ${'-Inf'} | ${true}
    ${-Infinity} | ${'<'}  | ${'+Inf'} | ${true}
    ${1}         | ${'<'}  | ${'+Inf'} | ${true}
    ${NaN}       | ${'=='} | ${'NaN'}  | ${true}
    ${1}         | ${'=='} | ${'NaN'}  | ${false}
    ${NaN}       | ${'!='} | ${'NaN'}  | ${false}
    ${1}         | ${'!='} | ${'NaN'}  | ${true}
    ${NaN}       | ${'=='} | ${0}      | ${false}
    ${NaN}       | ${'!='} | ${0}      | ${true}
    ${NaN}       | ${'>'}  | ${0}      | ${false}
    ${NaN}       | ${'<='} | ${0}      | ${false}
    ${NaN}       | ${'>='} | ${'NaN'}  | ${false}
    ${0.1 + 0.2} | ${'=='} | ${0.3}    | ${false}
  `(
    'compare($sample $op $value) is $holds',
    ({ sample, op, value, holds }: { sample: number; op: Op; value: PromValue; holds: boolean }) => {
      expect(compare(sample, op, value)).toBe(holds);
    },
  );

  it.each`
    name                | response          | retryable
    ${'400 bad_data'}   | ${badData()}      | ${false}
    ${'422 execution'}  | ${execution()}    | ${false}
    ${'503 timeout'}    | ${queryTimeout()} | ${true}
    ${'503 plain text'} | ${notReady()}     | ${true}
  `('Prometheus $name → CheckUnavailableError (retryable $retryable) with the cause', async ({ response, retryable }) => {
    const err = await evaluate({ op: '==', value: 1 }, response).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CheckUnavailableError);
    expect((err as CheckUnavailableError).retryable).toBe(retryable);
    expect((err as Error).cause).toBeInstanceOf(PrometheusQueryError);
    expect((err as Error).message).toMatch(/^Prometheus query "test_metric_\d+" failed/);
  });

  it('aborting rejects with the signal reason, not CheckUnavailableError', async () => {
    const ac = new AbortController();
    prom.script('hanging_metric', hang());
    const pending = promql
      .evaluate({ promql: 'hanging_metric', op: '==', value: 1 }, { ...ctx, signal: ac.signal })
      .catch((e: unknown) => e);
    await prom.waitForRequest((r) => r.query === 'hanging_metric');
    const reason = new Error('step cancelled');
    ac.abort(reason);
    expect(await pending).toBe(reason);
  });

  it('describe() is one line', () => {
    expect(promql.describe({ promql: 'up{job="s"}\n  == 1', op: '==', value: 1 })).toBe('up{job="s"} == 1 == 1');
    expect(promql.describe({ promql: 'ALERTS{alertname="X"}', empty: true })).toBe('ALERTS{alertname="X"} is empty');
  });

  it('render() sends the query through the promql sink', () => {
    const sinks: string[] = [];
    const out = promql.render(
      { promql: 'up{instance="{{ labels.instance }}"}', op: '==', value: 1 },
      (t, sink) => (sinks.push(sink), t.replace('{{ labels.instance }}', 'a\\"b')),
    );
    expect(sinks).toEqual(['promql']);
    expect(out).toEqual({ promql: 'up{instance="a\\"b"}', op: '==', value: 1 });
  });
});

describeCheckContract(promql, {
  valid: { promql: 'up{job="supervisor"}', op: '==', value: 1 },
  slow: () => {
    prom.script('contract_hanging', hang());
    return { spec: { promql: 'contract_hanging', op: '==', value: 1 }, context: { prometheus: ctx.prometheus } };
  },
  started: () => prom.waitForRequest((r) => r.query === 'contract_hanging').then(() => undefined),
  failing: async (secret) => {
    // Nothing listens on the port: the query fails, and the URL's user info and query string hold the secret.
    const port = await freePort();
    const url = `http://user:${secret}@127.0.0.1:${port}/?token=${secret}`;
    return {
      spec: { promql: 'up', op: '==', value: 1 },
      context: { prometheus: createPrometheusClient({ url, timeoutMs: 500 }) },
    };
  },
});
