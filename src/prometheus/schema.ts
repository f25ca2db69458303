import { z } from 'zod';

/**
 * The `/api/v1/query` envelope (Prometheus 2.42 `web/api/v1/api.go` `response`), only the fields we use.
 * Other systems' data is permissive: unknown keys (`warnings`, `infos`, `stats`…) are accepted and dropped.
 */

/**
 * A sample value exactly as Prometheus writes one: Go's strconv.AppendFloat(v, 'f' or 'e', -1, 64)
 * (util/jsonutil/marshal.go), so `1`, `-0.5`, `0.30000000000000004`, `1e-07`, `1e+22`, or `+Inf`, `-Inf`, `NaN`.
 * Nothing else is a number here: `""`, `"0x1"`, `" 1"`, `"1_000"`, `"Infinity"` or `".5"`, which JavaScript's Number()
 * would read as numbers, make the response invalid (the check is unknown, never passes on them).
 */
export const PROM_VALUE = /^(?:-?(?:0|[1-9]\d*)(?:\.\d+)?(?:e[+-]\d{2,3})?|\+Inf|-Inf|NaN)$/;
const PromValueText = z.string().regex(PROM_VALUE, 'not a sample value as Prometheus writes one');

/** `[<unix seconds>, "<value>"]`: the value is always a string ("1", "+Inf", "NaN", "1e-07"). */
export const SampleValue = z.tuple([z.number(), PromValueText]);
export type SampleValue = z.infer<typeof SampleValue>;

const Metric = z.record(z.string(), z.string());

export const QueryData = z.discriminatedUnion('resultType', [
  z.object({ resultType: z.literal('vector'), result: z.array(z.object({ metric: Metric, value: SampleValue })) }),
  z.object({ resultType: z.literal('scalar'), result: SampleValue }),
  z.object({ resultType: z.literal('string'), result: z.tuple([z.number(), z.string()]) }),
  // A string result is text, not a number.
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

/**
 * Prometheus spells the specials its own way; `Number("+Inf")` would be NaN. Anything that is not a value as
 * Prometheus writes one (PROM_VALUE) is NaN here, never a number that could make a comparison hold.
 */
export function parsePromValue(text: string): number {
  if (!PROM_VALUE.test(text)) return NaN;
  switch (text) {
    case '+Inf':
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
