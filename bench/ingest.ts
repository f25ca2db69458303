/**
 * Ingest: webhooks (and alerts) a receiver accepts per second, `IN_FLIGHT` requests outstanding, each answered 202
 * only once its runs are stored. The same bodies sent twice measure the duplicate path (Alertmanager's re-sends),
 * and the 202 bodies are checked: every alert enqueued the first time, every one a duplicate the second.
 */
import { closedLoop, type LoadResult } from './load.js';
import { percentile } from './stats.js';

export const IN_FLIGHT = 16;

export interface IngestRow {
  webhooksPerSec: number;
  alertsPerSec: number;
  p50: number;
  p99: number;
}

export function ingestRow(load: LoadResult, alertsPer: number): IngestRow {
  return {
    webhooksPerSec: load.replies.length / load.seconds,
    alertsPerSec: (load.replies.length * alertsPer) / load.seconds,
    p50: percentile(load.latencies, 50),
    p99: percentile(load.latencies, 99),
  };
}

/** Sends `bodies` and checks that each 202 says what was expected of its alerts. */
export async function ingest(
  url: string,
  bodies: readonly string[],
  alertsPer: number,
  expect: 'enqueued' | 'duplicate',
): Promise<LoadResult> {
  const load = await closedLoop(`${url}/webhook`, bodies, IN_FLIGHT);
  for (const reply of load.replies) {
    const counts = JSON.parse(reply.body) as Record<string, number>;
    if (counts[expect] !== alertsPer)
      throw new Error(`expected ${alertsPer} ${expect} in a 202, got ${reply.body.slice(0, 300)}`);
  }
  return load;
}

/** Several slices of one measurement as one: their times added, their answers and latencies together. */
export function merge(parts: readonly LoadResult[]): LoadResult {
  return {
    seconds: parts.reduce((s, r) => s + r.seconds, 0),
    latencies: parts.flatMap((r) => r.latencies),
    replies: parts.flatMap((r) => r.replies),
    sentAt: [],
  };
}

/** `items` cut into `n` slices of (nearly) equal length. */
export function slices<T>(items: readonly T[], n: number): T[][] {
  const size = Math.ceil(items.length / n);
  return Array.from({ length: n }, (_, i) => items.slice(i * size, (i + 1) * size)).filter((s) => s.length > 0);
}
