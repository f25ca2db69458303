/**
 * npm run bench: accepted alerts/s and webhook latency (p50/p99) for 1-alert and 20-alert payloads, with a bare
 * node:http server answering the same payloads in the same run as the baseline. Real Redis, receiver only, a
 * queue prefix of its own that is deleted afterwards. Prints numbers; passes or fails nothing.
 * Then the scale section (bench/scale.ts), which needs the build (`npm run bench` builds first).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { loadConfig } from '../src/config.js';
import { silentLogger } from '../src/log.js';
import { loadRulesOrThrow } from '../src/rules/load.js';
import { startService } from '../src/serve.js';
import { runScaleBench } from './scale.js';

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const REQUESTS = Number(process.env.BENCH_REQUESTS ?? 2000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 16);

let seq = 0;
function payload(alerts: number): string {
  const batch = seq++;
  return JSON.stringify({
    version: '4',
    groupKey: '{}:{alertname="BenchAlert"}',
    truncatedAlerts: 0,
    receiver: 'remediator',
    status: 'firing',
    alerts: Array.from({ length: alerts }, (_, i) => ({
      status: 'firing',
      labels: { alertname: 'BenchAlert', instance: `host-${batch}-${i}:9100`, severity: 'page' },
      annotations: { summary: 'bench' },
      startsAt: new Date(Date.UTC(2026, 10, 28, 0, 0, 0, batch)).toISOString(),
      endsAt: '0001-01-01T00:00:00Z',
      generatorURL: 'http://127.0.0.1:9090/graph',
      fingerprint: (batch * 1000 + i).toString(16).padStart(16, '0'),
    })),
    groupLabels: { alertname: 'BenchAlert' },
    commonLabels: { alertname: 'BenchAlert' },
    commonAnnotations: {},
    externalURL: 'http://127.0.0.1:9093',
  });
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function load(url: string, alertsPer: number): Promise<{ alertsPerSec: number; p50: number; p99: number }> {
  const bodies = Array.from({ length: REQUESTS }, () => payload(alertsPer));
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < bodies.length) {
        const body = bodies[next++]!;
        const t0 = performance.now();
        const res = await fetch(url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: 'Bearer bench-token-0123456789' },
          body,
        });
        await res.arrayBuffer();
        if (res.status !== 202) throw new Error(`${url} answered ${res.status}`);
        latencies.push(performance.now() - t0);
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return { alertsPerSec: (REQUESTS * alertsPer) / seconds, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}

async function bareServer(): Promise<Server> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { alerts: unknown[] };
      res.writeHead(202, { 'content-type': 'application/json' }).end(JSON.stringify({ enqueued: parsed.alerts.length }));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return server;
}

async function main(): Promise<void> {
  const prefix = `bench-${randomUUID().slice(0, 8)}`;
  const rules = mkdtempSync(join(tmpdir(), 'remediator-bench-'));
  writeFileSync(
    join(rules, 'bench.yaml'),
    `id: BENCH\ntitle: Bench\nmatch: ['alertname="BenchAlert"']\ntarget: "{{ labels.instance }}"\nsteps:\n  - name: wait\n    action: { wait: { duration: 1s } }\n`,
  );
  const config = loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    REDIS_URL,
    QUEUE_PREFIX: prefix,
    RULES_DIR: rules,
    WEBHOOK_TOKEN: 'bench-token-0123456789',
    LOG_LEVEL: 'silent',
  });
  const running = await startService(config, loadRulesOrThrow(rules), silentLogger, { receiver: true, worker: false });
  const bare = await bareServer();
  const remediatorUrl = `http://127.0.0.1:${running.port}/webhook`;
  const bareUrl = `http://127.0.0.1:${(bare.address() as AddressInfo).port}/webhook`;

  process.stdout.write(
    `webhook bench: ${REQUESTS} requests per row, ${CONCURRENCY} in flight, real Redis at ${REDIS_URL}, node ${process.version}\n\n`,
  );
  process.stdout.write('| alerts/payload | server | accepted alerts/s | p50 ms | p99 ms |\n|---|---|---|---|---|\n');
  for (const alertsPer of [1, 20]) {
    await load(bareUrl, alertsPer); // warm-up both, so JIT and connection setup are not measured
    await load(remediatorUrl, alertsPer);
    const base = await load(bareUrl, alertsPer);
    const ours = await load(remediatorUrl, alertsPer);
    const row = (name: string, r: typeof ours) =>
      `| ${alertsPer} | ${name} | ${r.alertsPerSec.toFixed(0)} | ${r.p50.toFixed(2)} | ${r.p99.toFixed(2)} |\n`;
    process.stdout.write(row('bare node:http', base));
    process.stdout.write(row('remediator', ours));
    process.stdout.write(
      `| ${alertsPer} | ratio remediator/bare | ${(ours.alertsPerSec / base.alertsPerSec).toFixed(3)}× throughput | ${(ours.p50 / base.p50).toFixed(1)}× | ${(ours.p99 / base.p99).toFixed(1)}× |\n`,
    );
  }
  await running.stop();
  bare.close();
  const redis = new Redis(REDIS_URL);
  let cursor = '0';
  do {
    const [nextCursor, keys] = await redis.scan(cursor, 'MATCH', `{${prefix}}*`, 'COUNT', 1000);
    cursor = nextCursor;
    if (keys.length) await redis.del(...keys);
  } while (cursor !== '0');
  redis.disconnect();
  // The scale section (bench/scale.ts): worker and receiver processes, one Redis vs a Cluster. BENCH_SCALE=0 skips it.
  if (process.env.BENCH_SCALE !== '0') await runScaleBench();
}

main()
  .then(() => process.exit(0))
  .catch((err: Error) => {
    process.stderr.write(`bench failed: ${err.message}\n`);
    process.exit(1);
  });
