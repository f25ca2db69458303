/**
 * Runs to their end: completed /bin/true actions per second for a burst of incidents, and webhook → first step
 * latency (the step's command is /bin/date +%s%N, whose output is the moment it ran) idle and under an open-loop load.
 * Completion times are BullMQ's own (the score of each job in its `completed` set), read after the fact, so the bench
 * does not sample them.
 */
import type { Redis } from 'ioredis';
import { closedLoop, openLoop, post, BENCH_TOKEN, type LoadResult } from './load.js';
import { payload, payloads } from './payloads.js';
import { percentile } from './stats.js';

const IN_FLIGHT = 16;

/** Waits until `count` jobs of the prefix have completed (or throws on a failed job or after `timeoutMs`); their finish times, ms. */
export async function completions(redis: Redis, prefix: string, count: number, timeoutMs = 300_000): Promise<number[]> {
  const completed = `{${prefix}}:remediations:completed`;
  const failed = `{${prefix}}:remediations:failed`;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const [done, bad] = await Promise.all([redis.zcard(completed), redis.zcard(failed)]);
    if (bad > 0) throw new Error(`${bad} run job(s) failed under prefix ${prefix}`);
    if (done >= count) break;
    if (Date.now() > deadline) throw new Error(`only ${done} of ${count} runs completed within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const flat = await redis.zrange(completed, 0, -1, 'WITHSCORES');
  const times: number[] = [];
  for (let i = 1; i < flat.length; i += 2) times.push(Number(flat[i]));
  return times.sort((a, b) => a - b);
}

export interface ActionsRow {
  /** 1-alert webhooks accepted per second while the burst was sent. */
  webhooksPerSec: number;
  /** All the burst's actions / (last finished − first sent). */
  actionsPerSec: number;
  /** Actions finished while webhooks were still arriving, per second of intake. */
  duringIntake: number;
  /** Actions finished after the last webhook was answered, per second until the last one. */
  afterIntake: number;
}

/** A burst of `incidents` 1-alert webhooks (BenchTrue: exec /bin/true), `IN_FLIGHT` at a time; then waits for every run. */
export async function burst(
  url: string,
  redis: Redis,
  prefix: string,
  incidents: number,
  doneBefore: number,
): Promise<ActionsRow> {
  const bodies = payloads(incidents, 1, 'BenchTrue');
  const t0 = Date.now();
  const load = await closedLoop(`${url}/webhook`, bodies, IN_FLIGHT);
  const intakeEnd = Date.now();
  const finished = (await completions(redis, prefix, doneBefore + incidents)).slice(doneBefore);
  const last = finished.at(-1)!;
  const during = finished.filter((t) => t <= intakeEnd).length;
  return {
    webhooksPerSec: incidents / load.seconds,
    actionsPerSec: incidents / (Math.max(1, last - t0) / 1000),
    duringIntake: during / (Math.max(1, intakeEnd - t0) / 1000),
    afterIntake: last > intakeEnd ? (incidents - during) / ((last - intakeEnd) / 1000) : Number.NaN,
  };
}

interface RunView {
  state: string;
  steps: { result?: { output?: string } }[];
}

async function getRun(url: string, id: string): Promise<RunView> {
  const res = await fetch(`${url}/api/remediations/${id}`, { headers: { authorization: `Bearer ${BENCH_TOKEN}` } });
  if (res.status !== 200) throw new Error(`GET run ${id}: ${res.status}`);
  return (await res.json()) as RunView;
}

/** ms from the POST's start to the moment /bin/date ran in the run's first step. */
function firstStepMs(run: RunView, sentEpochMs: number): number {
  const out = run.steps[0]?.result?.output?.trim() ?? '';
  if (!/^\d{19}$/.test(out)) throw new Error(`first step of a BenchDate run did not print a time: ${JSON.stringify(run)}`);
  return Number(BigInt(out) / 1000n) / 1000 - sentEpochMs;
}

const runIdOf = (reply: { body: string }) => (JSON.parse(reply.body) as { alerts: { runId: string }[] }).alerts[0]!.runId;

export interface LatencyRow {
  /** Webhooks per second sent (open loop); 0 for idle (one at a time). */
  rate: number;
  count: number;
  p50: number;
  p99: number;
}

/** One webhook at a time on an idle deployment, each after the previous run completed. */
export async function idleLatency(
  url: string,
  redis: Redis,
  prefix: string,
  count: number,
  doneBefore: number,
): Promise<LatencyRow> {
  const latencies: number[] = [];
  for (let i = 0; i < count; i++) {
    const sent = performance.timeOrigin + performance.now();
    const reply = await post(`${url}/webhook`, payload(1, 'BenchDate').body);
    if (reply.status !== 202) throw new Error(`webhook answered ${reply.status}`);
    await completions(redis, prefix, doneBefore + i + 1, 30_000);
    latencies.push(firstStepMs(await getRun(url, runIdOf(reply)), sent));
  }
  return { rate: 0, count, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}

/** `seconds` of 1-alert webhooks at `rate` per second (open loop); latency of each run's first step. */
export async function loadedLatency(
  url: string,
  redis: Redis,
  prefix: string,
  rate: number,
  seconds: number,
  doneBefore: number,
): Promise<LatencyRow> {
  const count = Math.max(20, Math.min(3000, Math.round(rate * seconds)));
  const bodies = payloads(count, 1, 'BenchDate');
  const load: LoadResult = await openLoop(`${url}/webhook`, bodies, rate);
  await completions(redis, prefix, doneBefore + count);
  const latencies: number[] = [];
  const ids = load.replies.map(runIdOf);
  let next = 0;
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      while (next < ids.length) {
        const i = next++;
        latencies.push(firstStepMs(await getRun(url, ids[i]!), performance.timeOrigin + load.sentAt[i]!));
      }
    }),
  );
  return { rate, count, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}
