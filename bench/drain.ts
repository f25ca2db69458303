/**
 * The intake dispatcher's drain rate (docs/benchmark.md, "Intake"): a receiver alone stores BENCH_PAYLOADS (400)
 * 20-alert payloads, so their jobs wait in the intake stream; then a `worker` process starts (it dispatches and runs
 * the jobs at once, as deployed) and the stream's length is sampled until it is empty. Jobs/s from the first sample
 * below the total to the empty stream, beside redis-benchmark LPUSH ops/s on the same Redis just before.
 * `npm run build && tsx bench/drain.ts`; BENCH_ROUNDS (3). Passes or fails nothing; prints a Markdown table.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { redisKeys } from '../src/queue/keys.js';
import { redisLpush, startBenchRedis } from './ceilings.js';
import { deploy, writeBenchRules } from './deployment.js';
import { IN_FLIGHT } from './ingest.js';
import { closeAgents, closedLoop } from './load.js';
import { loadavg } from 'node:os';
import { payloads } from './payloads.js';

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const PAYLOADS = Number(process.env.BENCH_PAYLOADS ?? 400);

interface DrainRound {
  load: number;
  entries: number;
  jobsPerSec: number;
  lpush: number;
}

async function round(n: number, url: string, port: number, rulesDir: string, client: Redis): Promise<DrainRound> {
  const prefix = `bench-drain-${process.pid}-${n}`;
  const key = redisKeys(prefix).intake;
  const receiver = await deploy({ kind: 'split', workers: 0, redisUrl: url, prefix, rulesDir });
  await closedLoop(`${receiver.url}/webhook`, payloads(PAYLOADS, 20, 'BenchTrue'), IN_FLIGHT);
  await receiver.stop();
  const entries = await client.xlen(key);
  const lpush = await redisLpush(port, 25_000);
  const load = loadavg()[0]!;
  const withWorker = await deploy({ kind: 'split', workers: 1, redisUrl: url, prefix, rulesDir });
  let first: { at: number; left: number } | undefined;
  for (;;) {
    const left = await client.xlen(key);
    const at = performance.now();
    if (first === undefined && left < entries) first = { at, left };
    if (left === 0) {
      await withWorker.stop();
      return { load, entries, lpush, jobsPerSec: (first!.left / (at - first!.at)) * 1000 };
    }
    await sleep(5);
  }
}

async function main(): Promise<void> {
  const redis = await startBenchRedis();
  const client = new Redis(redis.url);
  const rulesDir = writeBenchRules();
  const rounds: DrainRound[] = [];
  try {
    for (let i = 0; i < ROUNDS; i++) {
      process.stderr.write(`bench: drain round ${i + 1} of ${ROUNDS}\n`);
      rounds.push(await round(i, redis.url, redis.port, rulesDir, client));
      await redis.flush();
    }
  } finally {
    client.disconnect();
    closeAgents();
    await redis.stop();
  }
  let out = `| round | 1-min load | intake entries | dispatched jobs/s | LPUSH ops/s | ratio |\n|---|---|---|---|---|---|\n`;
  rounds.forEach((r, i) => {
    out += `| ${i + 1} | ${r.load.toFixed(1)} | ${r.entries} | ${Math.round(r.jobsPerSec)} | ${Math.round(r.lpush)} | ${(r.jobsPerSec / r.lpush).toFixed(2)}× |\n`;
  });
  process.stdout.write(out);
}

await main();
