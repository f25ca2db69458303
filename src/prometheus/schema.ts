import { z } from 'zod';

/**
 * The `/api/v1/query` envelope (Prometheus 2.42 `web/api/v1/api.go` `response`), only the fields we use.
 * Other systems' data is permissive: unknown keys (`warnings`, `infos`, `stats`…) are accepted and dropped.
 */

/** `[<unix seconds>, "<value>"]`: the value is always a string ("1", "+Inf", "NaN", "1e-07"). */
export const SampleValue = z.tuple([z.number(), z.string()]);
export type SampleValue = z.infer<typeof SampleValue>;

const Metric = z.record(z.string(), z.string());

export const QueryData = z.discriminatedUnion('resultType', [
  z.object({ resultType: z.literal('vector'), result: z.array(z.object({ metric: Metric, value: SampleValue })) }),
  z.object({ resultType: z.literal('scalar'), result: SampleValue }),
  z.object({ resultType: z.literal('string'), result: SampleValue }),
  // Accepted so that a range query gets a precise error, not "unexpected response".
  z.object({ resultType: z.literal('matrix'), result: z.array(z.object({ metric: Metric })) }),
]);
export type QueryData = z.infer<typeof QueryData>;

export const QueryResponse = z.discriminatedUnion('status', [
  z.object({ status: z.literal('success'), data: QueryData }),
  z.object({
    status: z.literal('error'),
    errorType: z.string().optional(),
    error: z.string().optional(),
  }),
]);
export type QueryResponse = z.infer<typeof QueryResponse>;

/** Prometheus spells the specials its own way; `Number("+Inf")` would be NaN. */
export function parsePromValue(text: string): number {
  switch (text) {
    case '+Inf':
    case 'Inf':
      return Infinity;
    case '-Inf':
      return -Infinity;
    case 'NaN':
      return NaN;
    default:
      return Number(text);
  }
}

/** The inverse for records and JSON: numbers stay numbers, ±Infinity and NaN become Prometheus' strings. */
export function formatPromValue(value: number): number | '+Inf' | '-Inf' | 'NaN' {
  if (Number.isFinite(value)) return value;
  if (Number.isNaN(value)) return 'NaN';
  return value > 0 ? '+Inf' : '-Inf';
}
