/**
 * Receiver CPU per webhook and per alert, without a profiler and beside no ceiling: a receiver alone (no worker) on
 * the bench's own Redis, warmed, then BENCH_WEBHOOKS 1-alert and BENCH_PAYLOADS 20-alert payloads, each new and then
 * re-sent, 16 in flight. Per case: the receiver's CPU time (/proc utime + stime) per webhook and per alert, Redis's
 * EVALSHA CPU per alert and the Redis commands run per alert (INFO commandstats), webhooks/s. A CPU time per webhook
 * moves less with the load of others than a rate does, so two builds can be compared on a busy machine: VARIANTS
 * (`name=/path/to/dist/cli.js,…`, default this checkout's) are deployed in turn, RECEIVER_CPU_ROUNDS (6) times each,
 * medians and ranges. `npx tsx bench/receiver-cpu.ts` after `npm run build` (of each build compared).
 */
import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { startBenchRedis } from './ceilings.js';
import { deploy, writeBenchRules } from './deployment.js';
import { ingest } from './ingest.js';
import { payloads } from './payloads.js';
import { median } from './stats.js';

const env = process.env;
const ROUNDS = Number(env.RECEIVER_CPU_ROUNDS ?? 6);
const ONES = Number(env.BENCH_WEBHOOKS ?? 3000);
const TWENTIES = Number(env.BENCH_PAYLOADS ?? 400);
const VARIANTS = (env.VARIANTS ?? 'this=').split(',').map((v) => {
  const [name, cli] = v.split('=');
  return { name: name!, cli: cli === '' ? undefined : cli };
});

/** User + system CPU of a process so far, µs. */
function cpuUs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) / 100) * 1e6;
}

/** EVALSHA CPU (µs, the calls inside included) and every command but EVAL/EVALSHA/INFO, counted so far. */
async function redisStats(client: Redis): Promise<{ evalUs: number; commands: number }> {
  const info = await client.info('commandstats');
  let commands = 0;
  for (const m of info.matchAll(/cmdstat_(\w+):calls=(\d+)/g))
    if (!['evalsha', 'eval', 'info'].includes(m[1]!)) commands += Number(m[2]);
  return { evalUs: Number(/cmdstat_evalsha:calls=\d+,usec=(\d+)/.exec(info)?.[1] ?? 0), commands };
}

const redis = await startBenchRedis();
const client = new Redis(redis.url);
const rules = writeBenchRules();
const rows = new Map<string, number[]>();
const add = (key: string, value: number) => rows.set(key, [...(rows.get(key) ?? []), value]);
try {
  for (let round = 0; round < ROUNDS; round++)
    for (const variant of VARIANTS) {
      const prefix = `cpu-${process.pid}-${round}-${variant.name}`;
      const d = await deploy({
        kind: 'split',
        workers: 0,
        redisUrl: redis.url,
        prefix,
        rulesDir: rules,
        ...(variant.cli !== undefined ? { cli: variant.cli } : {}),
      });
      try {
        const pid = d.processes[0]!.pid;
        await ingest(d.url, payloads(500, 1, 'BenchTrue'), 1, 'enqueued'); // JIT and sockets
        await ingest(d.url, payloads(50, 20, 'BenchTrue'), 20, 'enqueued');
        for (const [size, count, alerts] of [
          ['1-alert', ONES, 1],
          ['20-alert', TWENTIES, 20],
        ] as const) {
          const bodies = payloads(count, alerts, 'BenchTrue');
          for (const expect of ['enqueued', 'duplicate'] as const) {
            const [c0, r0, t0] = [cpuUs(pid), await redisStats(client), performance.now()];
            await ingest(d.url, bodies, alerts, expect);
            const seconds = (performance.now() - t0) / 1000;
            const [c1, r1] = [cpuUs(pid), await redisStats(client)];
            const key = `${size}${expect === 'duplicate' ? ' re-sent' : ''}`;
            const perAlert = (v: number) => v / count / alerts;
            add(`${key}: receiver CPU µs per webhook|${variant.name}`, (c1 - c0) / count);
            add(`${key}: receiver CPU µs per alert|${variant.name}`, perAlert(c1 - c0));
            add(`${key}: Redis EVALSHA CPU µs per alert|${variant.name}`, perAlert(r1.evalUs - r0.evalUs));
            add(`${key}: Redis commands per alert|${variant.name}`, perAlert(r1.commands - r0.commands));
            add(`${key}: webhooks/s|${variant.name}`, count / seconds);
          }
        }
      } finally {
        await d.stop();
        await redis.flush();
      }
    }
  const figures = [...new Set([...rows.keys()].map((k) => k.split('|')[0]!))];
  const fmt = (v: number[]) => `${median(v).toFixed(1)} (${Math.min(...v).toFixed(1)}–${Math.max(...v).toFixed(1)})`;
  let out = `| figure | ${VARIANTS.map((v) => v.name).join(' | ')} |\n|---|${VARIANTS.map(() => '---|').join('')}\n`;
  for (const figure of figures)
    out += `| ${figure} | ${VARIANTS.map((v) => fmt(rows.get(`${figure}|${v.name}`) ?? [])).join(' | ')} |\n`;
  process.stdout.write(
    `${ROUNDS} rounds, ${ONES} 1-alert and ${TWENTIES} 20-alert webhooks per case, medians (ranges)\n\n${out}`,
  );
} finally {
  client.disconnect();
  await redis.stop();
}
