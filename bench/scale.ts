/**
 * The scale section of `npm run bench`: how remediator's throughput moves with more processes and another Redis
 * topology, all measured in one run on this machine so the ratios compare like with like.
 *
 * - Workers: actions completed per second for a burst of incidents, and webhook → first step latency on an idle
 *   system, with 1, 2 and 4 worker processes behind one receiver.
 * - Ingest: alerts accepted per second (202) with 1 and 2 receiver processes, no worker running.
 * - Each on one Redis primary (with a replica attached, as in production) and on a Redis Cluster (3 primaries,
 *   1 replica each); and the cost of REDIS_WAIT_REPLICAS=1 on both paths.
 *
 * Real processes (`node dist/cli.js receiver|worker`), a real redis-server per topology started here, a local HTTP
 * sink as the action's target. Prints a Markdown table; passes or fails nothing.
 */
import { cpus, loadavg } from 'node:os';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPrimaryWithReplica, startRedisCluster } from '../scripts/lib/redis-servers.js';
import { startRemediator, type RemediatorProcess } from '../scripts/lib/remediator.js';
import { startSink, type Sink } from '../scripts/lib/sink.js';
import { waitFor } from '../scripts/lib/wait.js';

const TOKEN = 'bench-token-0123456789';
const BURST = Number(process.env.BENCH_SCALE_INCIDENTS ?? 600);
const INGEST_PAYLOADS = Number(process.env.BENCH_SCALE_PAYLOADS ?? 300);
const ALERTS_PER_PAYLOAD = 20;
const IN_FLIGHT = 16;

interface Topology {
  name: string;
  env: Record<string, string>;
  stop(): Promise<void>;
}

let batch = 0;
/** One webhook payload with `alerts` distinct incidents (each its own target, so no lease waits). */
function payload(alerts: number, tag: string): { body: string; instances: string[] } {
  const b = batch++;
  const instances = Array.from({ length: alerts }, (_, i) => `${tag}-${b}-${i}`);
  const body = JSON.stringify({
    version: '4',
    groupKey: '{}:{alertname="ScaleBench"}',
    truncatedAlerts: 0,
    receiver: 'remediator',
    status: 'firing',
    groupLabels: {},
    commonLabels: {},
    commonAnnotations: {},
    externalURL: 'http://127.0.0.1:9093',
    alerts: instances.map((instance, i) => ({
      status: 'firing',
      labels: { alertname: 'ScaleBench', instance, severity: 'page' },
      annotations: {},
      startsAt: '2026-11-28T00:00:00.000Z',
      endsAt: '0001-01-01T00:00:00Z',
      generatorURL: 'http://127.0.0.1:9090/graph',
      fingerprint: (b * 1000 + i).toString(16).padStart(16, '0'),
    })),
  });
  return { body, instances };
}

async function post(url: string, body: string): Promise<number> {
  const res = await fetch(`${url}/webhook`, {
    method: 'POST',
    headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
    body,
  });
  await res.arrayBuffer();
  if (res.status !== 202) throw new Error(`webhook answered ${res.status}`);
  return res.status;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

/** Sends `bodies` over `urls` (round robin), IN_FLIGHT at a time; per body, when its POST started. */
async function send(urls: string[], bodies: string[]): Promise<{ startedAt: number[]; latencies: number[] }> {
  const startedAt: number[] = [];
  const latencies: number[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < bodies.length) {
        const i = next++;
        startedAt[i] = performance.now();
        await post(urls[i % urls.length]!, bodies[i]!);
        latencies.push(performance.now() - startedAt[i]);
      }
    }),
  );
  return { startedAt, latencies };
}

interface Env {
  rulesDir: string;
  sink: Sink;
}

function remediatorEnv(topology: Topology, prefix: string, env: Env, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ...topology.env,
    QUEUE_PREFIX: prefix,
    RULES_DIR: env.rulesDir,
    PROMETHEUS_URL: 'http://127.0.0.1:9',
    WEBHOOK_TOKEN: TOKEN,
    // The storm breaker would pause automation after 10 distinct targets; the bench fires hundreds on purpose.
    STORM_TARGETS: '1000000',
    // The payloads carry fixed dates: none is too old here (MAX_INCIDENT_AGE).
    RUN_RETENTION: '3650d',
    MAX_INCIDENT_AGE: '3649d',
    LOG_LEVEL: 'warn',
    ...extra,
  };
}

async function startAll(specs: { env: Record<string, string>; command: 'receiver' | 'worker'; name: string }[]) {
  const procs = await Promise.all(specs.map((s) => startRemediator(s.env, s.command, s.name)));
  // Workers serve /readyz too: wait until each has its queue connection.
  await Promise.all(
    procs.map((p) =>
      waitFor(`${p.process.name} ready`, async () => (await fetch(`${p.url}/readyz`).catch(() => undefined))?.status === 200, {
        timeoutMs: 20_000,
        processes: [p.process],
      }),
    ),
  );
  return procs;
}

const stopAll = (procs: RemediatorProcess[]) => Promise.all(procs.map((p) => p.process.stop({ signal: 'SIGKILL' })));

interface WorkerRow {
  actionsPerSec: number;
  firstStepP50: number;
  firstStepP95: number;
}

/** One receiver, `workers` worker processes: a burst for throughput, then single alerts on an idle system for latency. */
async function measureWorkers(
  topology: Topology,
  env: Env,
  workers: number,
  extra: Record<string, string> = {},
): Promise<WorkerRow> {
  const prefix = `bench-scale-${Date.now().toString(36)}-${batch}`;
  const e = remediatorEnv(topology, prefix, env, extra);
  const procs = await startAll([
    { env: e, command: 'receiver', name: 'bench-receiver' },
    ...Array.from({ length: workers }, (_, i) => ({ env: e, command: 'worker' as const, name: `bench-worker-${i + 1}` })),
  ]);
  try {
    const url = procs[0]!.url;
    const tag = `w${workers}-${batch}`;
    const before = env.sink.hits.length;
    const bodies = Array.from({ length: Math.ceil(BURST / ALERTS_PER_PAYLOAD) }, () => payload(ALERTS_PER_PAYLOAD, tag).body);
    const t0 = performance.now();
    const t0Epoch = Date.now();
    await send([url], bodies);
    const total = bodies.length * ALERTS_PER_PAYLOAD;
    await waitFor('every burst action at the sink', () => env.sink.hits.length - before >= total, {
      timeoutMs: 300_000,
      intervalMs: 20,
    });
    const lastAt = Math.max(...env.sink.hits.slice(before).map((h) => h.at));
    const seconds = (lastAt - t0Epoch) / 1000 || (performance.now() - t0) / 1000;
    // Idle latency: one alert at a time, each after the previous one's action arrived.
    const latencies: number[] = [];
    for (let i = 0; i < 20; i++) {
      const { body, instances } = payload(1, `${tag}-idle`);
      const sent = Date.now();
      await post(url, body);
      const hit = await env.sink.waitForHit((h) => h.path === `/act/${instances[0]}`, 10_000);
      latencies.push(hit.at - sent);
    }
    return { actionsPerSec: total / seconds, firstStepP50: percentile(latencies, 50), firstStepP95: percentile(latencies, 95) };
  } finally {
    await stopAll(procs);
  }
}

interface IngestRow {
  alertsPerSec: number;
  p50: number;
  p99: number;
  /** One alert at a time on an otherwise idle receiver: what a single 202 costs. */
  idleP50: number;
}

/** `receivers` receiver processes and no worker: alerts accepted per second. */
async function measureIngest(
  topology: Topology,
  env: Env,
  receivers: number,
  extra: Record<string, string> = {},
): Promise<IngestRow> {
  const prefix = `bench-ingest-${Date.now().toString(36)}-${batch}`;
  const e = remediatorEnv(topology, prefix, env, extra);
  const procs = await startAll(
    Array.from({ length: receivers }, (_, i) => ({ env: e, command: 'receiver' as const, name: `bench-receiver-${i + 1}` })),
  );
  try {
    const urls = procs.map((p) => p.url);
    const tag = `r${receivers}-${batch}`;
    await send(
      urls,
      Array.from({ length: 40 }, () => payload(ALERTS_PER_PAYLOAD, `${tag}-warm`).body),
    ); // JIT, connections
    const bodies = Array.from({ length: INGEST_PAYLOADS }, () => payload(ALERTS_PER_PAYLOAD, tag).body);
    const t0 = performance.now();
    const { latencies } = await send(urls, bodies);
    const seconds = (performance.now() - t0) / 1000;
    const idle: number[] = [];
    for (let i = 0; i < 100; i++) {
      const { body } = payload(1, `${tag}-idle`);
      const t = performance.now();
      await post(urls[0]!, body);
      idle.push(performance.now() - t);
    }
    return {
      alertsPerSec: (bodies.length * ALERTS_PER_PAYLOAD) / seconds,
      p50: percentile(latencies, 50),
      p99: percentile(latencies, 99),
      idleP50: percentile(idle, 50),
    };
  } finally {
    await stopAll(procs);
  }
}

const f0 = (n: number) => n.toFixed(0);
const f1 = (n: number) => n.toFixed(1);
const x = (n: number) => `${n.toFixed(2)}×`;
const median = (ns: number[]) => percentile(ns, 50);

/** One configuration the section measures; every round measures each once, interleaved, so drift hits all alike. */
interface Case {
  kind: 'workers' | 'ingest';
  topology: Topology;
  processes: number;
  wait: boolean;
  workers: WorkerRow[];
  ingest: IngestRow[];
}

const WAIT = { REDIS_WAIT_REPLICAS: '1', REDIS_WAIT_TIMEOUT: '500ms' };

/** Runs the whole scale section and writes its tables to `out`. */
export async function runScaleBench(out: (text: string) => void = (t) => process.stdout.write(t)): Promise<void> {
  const rounds = Number(process.env.BENCH_SCALE_ROUNDS ?? 3);
  const dir = mkdtempSync(join(tmpdir(), 'remediator-scale-'));
  const sink = await startSink();
  const rulesDir = join(dir, 'rules');
  mkdirSync(rulesDir);
  writeFileSync(
    join(rulesDir, 'scale.yaml'),
    `id: SCALE\ntitle: Scale bench\nmatch: ['alertname="ScaleBench"']\ntarget: "{{ labels.instance }}"\nsteps:\n  - name: act\n    action: { http: { method: POST, url: "${sink.url}/act/{{ labels.instance }}", timeout: 5s } }\n`,
  );
  const env: Env = { rulesDir, sink };
  const topologies: Topology[] = [];
  try {
    const single = await startPrimaryWithReplica();
    topologies.push({ name: 'one primary', env: single.env, stop: () => single.stop() });
    const cluster = await startRedisCluster({ primaries: 3, replicas: 1 });
    topologies.push({ name: 'Cluster 3+3', env: cluster.env, stop: () => cluster.stop() });
    const load = loadavg();

    const cases: Case[] = [];
    const add = (kind: Case['kind'], topology: Topology, processes: number, wait = false) =>
      cases.push({ kind, topology, processes, wait, workers: [], ingest: [] });
    for (const t of topologies) for (const n of [1, 2, 4]) add('workers', t, n);
    for (const t of topologies) for (const n of [1, 2]) add('ingest', t, n);
    for (const t of topologies) {
      add('workers', t, 2, true);
      add('ingest', t, 1, true);
    }
    for (let round = 0; round < rounds; round++)
      for (const c of cases) {
        const extra = c.wait ? WAIT : {};
        if (c.kind === 'workers') c.workers.push(await measureWorkers(c.topology, env, c.processes, extra));
        else c.ingest.push(await measureIngest(c.topology, env, c.processes, extra));
      }
    const find = (kind: Case['kind'], t: string, n: number, wait = false) =>
      cases.find((c) => c.kind === kind && c.topology.name === t && c.processes === n && c.wait === wait)!;
    const rate = (c: Case) =>
      median(c.kind === 'workers' ? c.workers.map((r) => r.actionsPerSec) : c.ingest.map((r) => r.alertsPerSec));
    const spread = (c: Case) => {
      const all = c.kind === 'workers' ? c.workers.map((r) => r.actionsPerSec) : c.ingest.map((r) => r.alertsPerSec);
      return `${f0(Math.min(...all))}–${f0(Math.max(...all))}`;
    };
    const singleName = topologies[0]!.name;

    out(
      `\n## Scale: worker and receiver processes, one Redis vs a Redis Cluster\n\n` +
        `${cpus().length} vCPU (${cpus()[0]?.model ?? 'unknown'}), load average ${load.map((l) => l.toFixed(1)).join(' ')} before ` +
        `the first round; every process (Redis nodes, receivers, workers, this load generator and the action's HTTP target) ` +
        `shares these cores. Medians of ${rounds} interleaved rounds (range in brackets). Burst: ${BURST} incidents in ` +
        `payloads of ${ALERTS_PER_PAYLOAD}, one http action per run, WORKER_CONCURRENCY 10, LOG_LEVEL warn. Ingest: ` +
        `${INGEST_PAYLOADS} payloads of ${ALERTS_PER_PAYLOAD}, ${IN_FLIGHT} in flight, no worker. Redis: one primary with a ` +
        `replica attached, and a Cluster of 3 primaries with 1 replica each.\n\n`,
    );
    out('| Redis | worker processes | actions/s | × 1 worker | × one primary | webhook → first step p50 / p95 ms (idle) |\n');
    out('|---|---|---|---|---|---|\n');
    for (const c of cases.filter((c) => c.kind === 'workers' && !c.wait)) {
      const vsOne = rate(c) / rate(find('workers', c.topology.name, 1));
      const vsSingle = rate(c) / rate(find('workers', singleName, c.processes));
      const p50 = median(c.workers.map((r) => r.firstStepP50));
      const p95 = median(c.workers.map((r) => r.firstStepP95));
      out(
        `| ${c.topology.name} | ${c.processes} | ${f0(rate(c))} (${spread(c)}) | ${x(vsOne)} | ${x(vsSingle)} | ${f1(p50)} / ${f1(p95)} |\n`,
      );
    }
    out('\n| Redis | receiver processes | alerts accepted/s | × 1 receiver | × one primary | 202 p50 / p99 ms |\n');
    out('|---|---|---|---|---|---|\n');
    for (const c of cases.filter((c) => c.kind === 'ingest' && !c.wait)) {
      const vsOne = rate(c) / rate(find('ingest', c.topology.name, 1));
      const vsSingle = rate(c) / rate(find('ingest', singleName, c.processes));
      const p50 = median(c.ingest.map((r) => r.p50));
      const p99 = median(c.ingest.map((r) => r.p99));
      out(
        `| ${c.topology.name} | ${c.processes} | ${f0(rate(c))} (${spread(c)}) | ${x(vsOne)} | ${x(vsSingle)} | ${f1(p50)} / ${f1(p99)} |\n`,
      );
    }
    // What REDIS_WAIT_REPLICAS=1 costs: every 202 and every checkpoint waits for the replica's acknowledgement.
    out(
      '\n| REDIS_WAIT_REPLICAS=1 on | Redis | without | with | × | p50 latency without → with (ms) |\n|---|---|---|---|---|---|\n',
    );
    const idle = (c: Case) => median(c.ingest.map((r) => r.idleP50));
    for (const t of topologies) {
      const [plainIn, waitIn] = [find('ingest', t.name, 1), find('ingest', t.name, 1, true)];
      const [plainRun, waitRun] = [find('workers', t.name, 2), find('workers', t.name, 2, true)];
      const lat = (c: Case) => median(c.kind === 'workers' ? c.workers.map((r) => r.firstStepP50) : c.ingest.map((r) => r.p50));
      out(
        `| ingest, 1 receiver (alerts/s) | ${t.name} | ${f0(rate(plainIn))} | ${f0(rate(waitIn))} | ${x(rate(waitIn) / rate(plainIn))} | 202 idle: ${f1(idle(plainIn))} → ${f1(idle(waitIn))}; under load: ${f1(lat(plainIn))} → ${f1(lat(waitIn))} |\n`,
      );
      out(
        `| runs, 2 workers (actions/s) | ${t.name} | ${f0(rate(plainRun))} | ${f0(rate(waitRun))} | ${x(rate(waitRun) / rate(plainRun))} | first step, idle: ${f1(lat(plainRun))} → ${f1(lat(waitRun))} |\n`,
      );
    }
    out(
      `\nThe limit of this machine: ${cpus().length} cores run everything above at once, so a process added beyond ` +
        `the cores only takes CPU time from the others, and other work on the machine moves every figure (hence the ` +
        `rounds). The ratios show what coordinating through Redis costs, not the speed-up that processes on separate ` +
        `machines would give. A Cluster adds availability, not throughput: every key of QUEUE_PREFIX lives in one hash ` +
        `slot on one primary (BullMQ and the fenced checkpoints need them together).\n`,
    );
  } finally {
    for (const t of topologies.reverse()) await t.stop();
    await sink.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
