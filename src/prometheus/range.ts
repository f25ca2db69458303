/**
 * Prometheus range queries (`/api/v1/query_range`), for the console's charts of a run's expectations. Kept apart
 * from the instant-query client the engine verifies with: a chart is a view, it never decides anything.
 */
import type { AxiosInstance } from 'axios';
import { z } from 'zod';
import { loadAxios } from '../http/client.js';
import { parsePromValue } from './schema.js';

const RangeResponse = z.discriminatedUnion('status', [
  z.object({
    status: z.literal('success'),
    data: z.object({
      resultType: z.literal('matrix'),
      result: z.array(z.object({ metric: z.record(z.string(), z.string()), values: z.array(z.tuple([z.number(), z.string()])) })),
    }),
  }),
  z.object({ status: z.literal('error'), errorType: z.string().optional(), error: z.string().optional() }),
]);

export interface RangeSeries {
  labels: Record<string, string>;
  /** [unix ms, value]; +Inf, -Inf and NaN mapped to the JS numbers. */
  points: [number, number][];
}

export class RangeQueryError extends Error {
  override readonly name = 'RangeQueryError';
}

/** At most this many series and points per series are kept: a chart of a run's query, not an export. */
const MAX_SERIES = 20;

export function createRangeQuery({ url, timeoutMs = 5000 }: { url: string; timeoutMs?: number }) {
  let instance: AxiosInstance | undefined;
  return async function queryRange(promql: string, startMs: number, endMs: number, stepS: number): Promise<RangeSeries[]> {
    instance ??= (await loadAxios()).create({
      baseURL: url.replace(/\/+$/, ''),
      timeout: timeoutMs,
      validateStatus: () => true,
      maxRedirects: 0,
    });
    const http = instance;
    let res;
    try {
      res = await http.post(
        '/api/v1/query_range',
        new URLSearchParams({ query: promql, start: String(startMs / 1000), end: String(endMs / 1000), step: String(stepS) }),
      );
    } catch (err) {
      throw new RangeQueryError(`Prometheus query_range failed: ${(err as Error).message}`);
    }
    const parsed = RangeResponse.safeParse(res.data);
    if (!parsed.success) throw new RangeQueryError(`Prometheus query_range: unexpected answer (HTTP ${res.status})`);
    if (parsed.data.status === 'error')
      throw new RangeQueryError(`Prometheus query_range: ${parsed.data.errorType ?? 'error'}: ${parsed.data.error ?? ''}`);
    return parsed.data.data.result.slice(0, MAX_SERIES).map((s) => ({
      labels: s.metric,
      points: s.values.map(([t, v]) => [Math.round(t * 1000), parsePromValue(v)] as [number, number]),
    }));
  };
}
export type RangeQuery = ReturnType<typeof createRangeQuery>;
