import { PrometheusQueryError, type Sample } from '../prometheus/client.js';
import { formatPromValue, parsePromValue } from '../prometheus/schema.js';
import { z } from 'zod';
import { promqlSyntaxErrors } from './promql-syntax.js';
import { CheckUnavailableError, type Check, type CheckOutcome, type Observation } from './types.js';

/** The comparison of a promql expectation. Prometheus values are floats; `+Inf`, `-Inf`, `NaN` spelled as Prometheus does. */
export const Op = z.enum(['==', '!=', '>', '>=', '<', '<=']);
export type Op = z.infer<typeof Op>;
export const PromValue = z.union([z.number(), z.enum(['+Inf', '-Inf', 'NaN'])]);
export type PromValue = z.infer<typeof PromValue>;

/**
 * `promql` with `op`/`value`: every returned series must compare true, and "no data" never holds.
 * `empty: true`: holds only when the query returns no series. The query's syntax (with Prometheus' own grammar)
 * and where its templates sit are checked at load.
 */
export const PromqlSpec = z
  .strictObject({
    promql: z
      .string()
      .min(1)
      .superRefine((query, ctx) => {
        for (const message of promqlSyntaxErrors(query)) ctx.addIssue({ code: 'custom', message });
      }),
    op: Op.optional(),
    value: PromValue.optional(),
    empty: z.boolean().optional(),
  })
  .superRefine((s, ctx) => {
    if (s.empty === true && (s.op !== undefined || s.value !== undefined)) {
      ctx.addIssue({ code: 'custom', message: 'empty: true cannot be combined with op/value', path: ['empty'] });
    }
    if (s.empty !== true && (s.op === undefined) !== (s.value === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'op and value go together', path: [s.op === undefined ? 'op' : 'value'] });
    }
    if (s.op === undefined && s.empty === undefined) {
      ctx.addIssue({ code: 'custom', path: ['op'], message: 'a promql check needs op and value, or empty: true' });
    }
  });
export type PromqlSpec = z.infer<typeof PromqlSpec>;

/**
 * One instant query against Prometheus, now.
 *
 * - `op`/`value`: holds iff at least one series came back and every one compares true.
 *   No series is "no data", which never holds (it is not 0).
 * - `empty: true`: holds iff no series came back.
 * - neither: holds iff at least one series came back (like an alerting rule's expression).
 *
 * Comparisons follow IEEE floats as Prometheus does, except that `value: "NaN"` with `==` matches NaN samples
 * (and `!=` everything else): otherwise "NaN" could never be asked for.
 */
export const promql: Check<PromqlSpec> = {
  kind: 'promql',
  key: 'promql',
  spec: PromqlSpec,
  describe(s) {
    const q = oneLine(s.promql);
    if (s.empty === true) return `${q} is empty`;
    if (s.op !== undefined && s.value !== undefined) return `${q} ${s.op} ${s.value}`;
    return `${q} returns data`;
  },
  explain: (s) =>
    s.empty === true ? `${s.promql} returns no series` : `${s.promql} ${s.op ?? ''} ${String(s.value ?? '')}`.trim(),
  render: (s, r) => ({ ...s, promql: r(s.promql, 'promql') }),
  async evaluate(s, ctx) {
    let samples: Sample[];
    try {
      const res = await ctx.prometheus.query(s.promql, ctx.signal);
      if (res.resultType === 'string') {
        return {
          holds: false,
          observed: [{ labels: {}, value: res.text, at: res.at }],
          reason: 'the query returned a string; a check needs an instant vector or a scalar',
        };
      }
      samples = res.samples;
    } catch (err) {
      if (ctx.signal.aborted) throw ctx.signal.reason ?? err;
      if (err instanceof PrometheusQueryError)
        throw new CheckUnavailableError(err.message, { cause: err, retryable: err.retryable });
      const message = err instanceof Error ? err.message : String(err);
      throw new CheckUnavailableError(`Prometheus query ${JSON.stringify(s.promql)} failed: ${message}`, { cause: err });
    }
    return judge(s, samples);
  },
};

/** The decision on a query's samples; exported for tests of the comparison table. */
export function judge(s: PromqlSpec, samples: Sample[]): CheckOutcome {
  const observed: Observation[] = samples.map((x) => ({ labels: x.labels, value: formatPromValue(x.value), at: x.at }));

  if (s.empty === true) {
    if (samples.length === 0) return { holds: true, observed, reason: 'no series, as expected' };
    return { holds: false, observed, reason: `expected no series, got ${samples.length}: ${list(samples)}` };
  }
  if (samples.length === 0) return { holds: false, observed, reason: 'no data' };
  if (s.op === undefined || s.value === undefined) {
    return { holds: true, observed, reason: `${samples.length} series: ${list(samples)}` };
  }

  const { op, value } = s;
  const failing = samples.filter((x) => !compare(x.value, op, value));
  if (failing.length === 0) {
    const reason =
      samples.length === 1
        ? `value ${show(samples[0]!.value)} for ${series(samples[0]!.labels)} ${op} ${value}`
        : `all ${samples.length} series ${op} ${value}`;
    return { holds: true, observed, reason };
  }
  const first = failing[0]!;
  const more = failing.length > 1 ? ` (and ${failing.length - 1} more of ${samples.length} series)` : '';
  return {
    holds: false,
    observed,
    reason: `value ${show(first.value)} for ${series(first.labels)}, expected ${op} ${value}${more}`,
  };
}

/** `sample op value`. NaN never compares true, except when the expected value is itself "NaN" (see above). */
export function compare(sample: number, op: Op, value: PromValue): boolean {
  const target = typeof value === 'number' ? value : parsePromValue(value);
  if (Number.isNaN(target)) {
    if (op === '==') return Number.isNaN(sample);
    if (op === '!=') return !Number.isNaN(sample);
    return false;
  }
  switch (op) {
    case '==':
      return sample === target;
    case '!=':
      return sample !== target;
    case '>':
      return sample > target;
    case '>=':
      return sample >= target;
    case '<':
      return sample < target;
    case '<=':
      return sample <= target;
  }
}

function show(value: number): string {
  return String(formatPromValue(value));
}

/** `up{instance="a", job="b"}` the way Prometheus prints a series; `{}` for a scalar. */
function series(labels: Record<string, string>): string {
  const { __name__: name = '', ...rest } = labels;
  const pairs = Object.keys(rest)
    .sort()
    .map((k) => `${k}=${JSON.stringify(rest[k])}`);
  return `${name}{${pairs.join(', ')}}`;
}

function list(samples: Sample[], max = 3): string {
  const shown = samples.slice(0, max).map((x) => `${series(x.labels)} = ${show(x.value)}`);
  return samples.length > max ? `${shown.join(', ')}, …` : shown.join(', ');
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}
