/**
 * npm run bench: remediator's published benchmark. Every figure stands beside its ceiling measured in the same run
 * on the same machine, and is reported as a ratio to it:
 *
 * - ingest (receiver process, no worker): 1 and 20 alerts per payload, new incidents and re-sent ones, against a
 *   bare node:http server (webhooks/s) and Redis LPUSH (redis-benchmark, ops/s); 20-alert payloads also beside a
 *   durable-ingest floor (bench/durable-floor.ts: node:http plus one script storing each alert; what the least
 *   receiver that answers after a durable write reaches on the same Redis);
 * - completed actions (exec /bin/true) per second for a burst of incidents, on `serve` and on a receiver with 1 and
 *   2 worker processes, against a minimal child_process.spawn loop (spawns/s);
 * - webhook → first step latency (when the step's command ran) idle and at half and full the sustainable rate;
 * - resident memory per process, idle and peak;
 * - a CPU profile pass (receiver under ingest, worker under a burst): where the time goes;
 * - the scale section (bench/scale.ts): 1, 2, 4 workers and 1, 2 receivers, one Redis primary vs a Redis Cluster.
 *
 * remediator's processes run with NODE_OPTIONS=NODE_FLAGS (bench/deployment.ts) as deployed; BENCH_NODE_OPTIONS replaces it.
 * BENCH_ROUNDS (3) interleaved rounds, medians with ranges; every count bounded; loopback only; its own redis-server.
 * Writes the Markdown report to BENCH_REPORT (bench-report.md) and prints it. Passes or fails nothing.
 * BENCH_PROFILE=0 skips the profile pass; BENCH_SCALE=0 skips the scale section, BENCH_SCALE=only runs only it.
 * BENCH_LATENCY=only runs only the webhook → first step section: per round, `serve` with its warm-up, the burst that
 * sets the sustainable rate, then idle, half and full rate (the same steps as in a full round), and the load average.
 * BENCH_ONLY=ingest runs only the ingest section (receiver and its ceilings, no runs, no scale section) and, unless
 * BENCH_PROFILE=0, a CPU profile of one receiver per payload size: a quick loop for work on the receiver.
 * BENCH_ONLY=rss runs only the memory rows: per round `serve` and a receiver + 1 worker, each process's RSS right after
 * readiness (as in a full round), again after BENCH_RSS_SETTLE (30) idle seconds (start-up settled: V8's memory
 * reducer frees start-up garbage 8-20 s after the last start-up GC), and its peak after a burst of BENCH_RSS_INCIDENTS
 * (500) runs.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { burst, completions, idleLatency, loadedLatency, type ActionsRow, type LatencyRow } from './actions.js';
import { redisLpush, spawnLoop, startBareHttp, startBenchRedis, startDurableFloor, type BenchRedis } from './ceilings.js';
import { deploy, NODE_FLAGS, writeBenchRules, type DeploymentSpec } from './deployment.js';
import { IN_FLIGHT, ingest, ingestRow, merge, slices, type IngestRow } from './ingest.js';
import { closeAgents, closedLoop, type LoadResult } from './load.js';
import { CpuWindow, machineLine, type Memory } from './machine.js';
import { payloads } from './payloads.js';
import { profileMarkdown, profilesIn, summariseProfile } from './profile.js';
import { runScaleBench } from './scale.js';
import { median } from './stats.js';

const env = process.env;
const ROUNDS = Number(env.BENCH_ROUNDS ?? 3);
const WEBHOOKS = Number(env.BENCH_WEBHOOKS ?? 3000); // 1-alert payloads per ingest case
const PAYLOADS = Number(env.BENCH_PAYLOADS ?? 400); // 20-alert payloads per ingest case
const INCIDENTS = Number(env.BENCH_INCIDENTS ?? 2000); // runs per burst
const LOADED_SECONDS = Number(env.BENCH_LOADED_SECONDS ?? 4);
const REPORT = env.BENCH_REPORT ?? 'bench-report.md';
const WARM = 100;
const LPUSH_SLICE = Number(env.BENCH_LPUSH ?? 25_000); // redis-benchmark requests per slice
const SPAWNS = Number(env.BENCH_SPAWNS ?? 1000); // spawn loop before and after each burst

interface Round {
  /** Each ceiling as measured in the slices alternating with the figure it stands beside. */
  bare1: IngestRow;
  bare1Dup: IngestRow;
  bare20: IngestRow;
  /** The durable-ingest floor, 20-alert payloads (bench/durable-floor.ts). */
  floor20: IngestRow;
  lpush: number;
  lpushDup: number;
  /** The spawn loop right before and right after each burst, averaged. */
  spawn: { serve: number; one: number; two: number };
  ingest: { one: IngestRow; oneDup: IngestRow; twenty: IngestRow; twentyDup: IngestRow };
  actions: { serve: ActionsRow; one: ActionsRow; two: ActionsRow };
  latency: { idle: LatencyRow; half: LatencyRow; full: LatencyRow };
  memory: { role: string; idle: number; peak: number }[];
  cpu: { busy: number; others: number; load: number };
}

let prefixes = 0;
const newPrefix = () => `bench-${process.pid}-${prefixes++}`;

function memoryRows(idle: Memory[], peak: Memory[], label: string): Round['memory'] {
  return idle.map((m) => ({
    role: `${label}: ${m.name}`,
    idle: m.rssMiB,
    peak: peak.find((p) => p.pid === m.pid)?.peakMiB ?? m.peakMiB,
  }));
}

async function runDeployment(
  redis: BenchRedis,
  client: Redis,
  rulesDir: string,
  kind: DeploymentSpec['kind'],
  workers: number,
  latency: boolean,
): Promise<{ actions: ActionsRow; spawn: number; memory: Round['memory']; latency?: Round['latency'] }> {
  const prefix = newPrefix();
  const d = await deploy({ kind, workers, redisUrl: redis.url, prefix, rulesDir });
  try {
    const idle = d.memory();
    await closedLoop(`${d.url}/webhook`, payloads(WARM, 1, 'BenchTrue'), IN_FLIGHT); // JIT, connections, pools
    await completions(client, prefix, WARM);
    const spawnBefore = await spawnLoop(SPAWNS);
    const actions = await burst(d.url, client, prefix, INCIDENTS, WARM);
    const spawn = (spawnBefore + (await spawnLoop(SPAWNS))) / 2;
    let done = WARM + INCIDENTS;
    let lat: Round['latency'] | undefined;
    if (latency) {
      const idleLat = await idleLatency(d.url, client, prefix, 30, done);
      done += idleLat.count;
      const half = await loadedLatency(d.url, client, prefix, actions.actionsPerSec / 2, LOADED_SECONDS, done);
      done += half.count;
      const full = await loadedLatency(d.url, client, prefix, actions.actionsPerSec, LOADED_SECONDS, done);
      lat = { idle: idleLat, half, full };
    }
    const label = kind === 'serve' ? 'serve' : `receiver + ${workers} worker${workers > 1 ? 's' : ''}`;
    return { actions, spawn, memory: memoryRows(idle, d.memory(), label), ...(lat ? { latency: lat } : {}) };
  } finally {
    await d.stop();
    await redis.flush();
  }
}

/**
 * The machine is shared and its load moves within seconds: each figure and its ceiling are measured in alternating
 * slices (SLICES of each, ceiling first), so both meet the same load, and each rate is taken over all its slices.
 */
const SLICES = 4;

type IngestRound = Pick<Round, 'bare1' | 'bare1Dup' | 'bare20' | 'floor20' | 'lpush' | 'lpushDup' | 'ingest' | 'memory' | 'cpu'>;

async function round(redis: BenchRedis, client: Redis, rulesDir: string): Promise<Round> {
  const cpu = new CpuWindow();
  const load = loadavg()[0]!;
  const { ingest: ingestRows, memory, ...ceilings } = await ingestRound(redis, rulesDir);
  // Runs: the default deployment (serve), then a receiver with 1 and 2 worker processes.
  const serve = await runDeployment(redis, client, rulesDir, 'serve', 0, true);
  const one = await runDeployment(redis, client, rulesDir, 'split', 1, false);
  const two = await runDeployment(redis, client, rulesDir, 'split', 2, false);
  const window = cpu.end();
  return {
    ...ceilings,
    ingest: ingestRows,
    actions: { serve: serve.actions, one: one.actions, two: two.actions },
    spawn: { serve: serve.spawn, one: one.spawn, two: two.spawn },
    latency: serve.latency!,
    memory: [...memory, ...serve.memory, ...one.memory, ...two.memory],
    cpu: { busy: window.busy, others: window.others, load },
  };
}

/** The ingest section of a round: a receiver (no worker) and its ceilings, in alternating slices. */
async function ingestRound(redis: BenchRedis, rulesDir: string): Promise<IngestRound> {
  const cpu = new CpuWindow();
  const load = loadavg()[0]!;
  const bare = await startBareHttp();
  const floor = await startDurableFloor(redis.port);
  const prefix = newPrefix();
  const receiver = await deploy({ kind: 'split', workers: 0, redisUrl: redis.url, prefix, rulesDir });
  let ingestRows: Round['ingest'];
  let ceilings: Pick<Round, 'bare1' | 'bare1Dup' | 'bare20' | 'floor20' | 'lpush' | 'lpushDup'>;
  let memory: Round['memory'];
  try {
    const idle = receiver.memory();
    await closedLoop(bare.url, payloads(300, 1, 'BenchTrue'), IN_FLIGHT); // JIT and sockets, both sides
    await closedLoop(floor.url, payloads(30, 20, 'BenchTrue'), IN_FLIGHT);
    await closedLoop(`${receiver.url}/webhook`, payloads(300, 1, 'BenchTrue'), IN_FLIGHT);
    const ones = slices(payloads(WEBHOOKS, 1, 'BenchTrue'), SLICES);
    const twenties = slices(payloads(PAYLOADS, 20, 'BenchTrue'), SLICES);
    const [bare1, one, bare1Dup, oneDup, bare20, twenty, twentyDup, floor20] = Array.from(
      { length: 8 },
      () => [] as LoadResult[],
    );
    const lpushRates: number[] = [];
    const lpushDupRates: number[] = [];
    const bareSlice = async (into: LoadResult[], alerts: number, n: number) =>
      into.push(await closedLoop(bare.url, payloads(n, alerts, 'BenchTrue'), IN_FLIGHT));
    for (const s of ones) {
      await bareSlice(bare1!, 1, s.length);
      one!.push(await ingest(receiver.url, s, 1, 'enqueued'));
    }
    for (const s of ones) {
      await bareSlice(bare1Dup!, 1, s.length);
      oneDup!.push(await ingest(receiver.url, s, 1, 'duplicate'));
    }
    for (const s of twenties) {
      await bareSlice(bare20!, 20, s.length);
      lpushRates.push(await redisLpush(redis.port, LPUSH_SLICE));
      floor20!.push(await closedLoop(floor.url, payloads(s.length, 20, 'BenchTrue'), IN_FLIGHT));
      twenty!.push(await ingest(receiver.url, s, 20, 'enqueued'));
    }
    for (const s of twenties) {
      lpushDupRates.push(await redisLpush(redis.port, LPUSH_SLICE));
      twentyDup!.push(await ingest(receiver.url, s, 20, 'duplicate'));
    }
    ingestRows = {
      one: ingestRow(merge(one!), 1),
      oneDup: ingestRow(merge(oneDup!), 1),
      twenty: ingestRow(merge(twenty!), 20),
      twentyDup: ingestRow(merge(twentyDup!), 20),
    };
    // redis-benchmark reports a rate per slice; slices are of equal size, so the harmonic mean is the overall rate.
    const overall = (rates: number[]) => rates.length / rates.reduce((s, r) => s + 1 / r, 0);
    ceilings = {
      bare1: ingestRow(merge(bare1!), 1),
      bare1Dup: ingestRow(merge(bare1Dup!), 1),
      bare20: ingestRow(merge(bare20!), 20),
      floor20: ingestRow(merge(floor20!), 20),
      lpush: overall(lpushRates),
      lpushDup: overall(lpushDupRates),
    };
    memory = memoryRows(idle, receiver.memory(), 'receiver, ingest only');
  } finally {
    await receiver.stop();
    await bare.proc.stop();
    await floor.proc.stop();
    await redis.flush();
  }
  const window = cpu.end();
  return { ...ceilings, ingest: ingestRows, memory, cpu: { busy: window.busy, others: window.others, load } };
}

async function profilePass(redis: BenchRedis, client: Redis, rulesDir: string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'remediator-bench-prof-'));
  try {
    const ingestOnly = await deploy({
      kind: 'split',
      workers: 0,
      redisUrl: redis.url,
      prefix: newPrefix(),
      rulesDir,
      cpuProfDir: dir,
    });
    const ingestFrom = ingestOnly.readyAtUs;
    await closedLoop(`${ingestOnly.url}/webhook`, payloads(WEBHOOKS, 1, 'BenchTrue'), IN_FLIGHT);
    await closedLoop(`${ingestOnly.url}/webhook`, payloads(PAYLOADS, 20, 'BenchTrue'), IN_FLIGHT);
    await ingestOnly.stop();
    await redis.flush();
    const prefix = newPrefix();
    const runs = await deploy({
      kind: 'split',
      workers: 1,
      redisUrl: redis.url,
      prefix,
      rulesDir,
      cpuProfDir: join(dir, 'runs'),
    });
    const runsFrom = runs.readyAtUs;
    await closedLoop(`${runs.url}/webhook`, payloads(INCIDENTS, 1, 'BenchTrue'), IN_FLIGHT);
    await completions(client, prefix, INCIDENTS);
    await runs.stop();
    await redis.flush();
    let out = '';
    const sections: [string, string, number][] = [
      ['receiver: 1-alert then 20-alert ingest', join(dir, 'receiver'), ingestFrom],
      ['worker: a burst of exec /bin/true runs', join(dir, 'runs', 'worker-1'), runsFrom],
    ];
    for (const [title, sub, from] of sections) {
      const files = profilesIn(sub);
      if (files.length === 0) out += `#### ${title}\n\n(no profile written)\n\n`;
      // A process that started children of its own (a launcher) leaves one profile per Node process.
      for (const f of files)
        out += profileMarkdown(`${title}${files.length > 1 ? ` — ${f.replace(/^.*\//, '')}` : ''}`, summariseProfile(f, from));
    }
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** BENCH_ONLY=ingest: one receiver per payload size under --cpu-prof, so each size's profile stands alone. */
async function ingestProfilePass(redis: BenchRedis, rulesDir: string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'remediator-bench-prof-'));
  try {
    let out = '';
    for (const [title, count, alerts] of [
      [`receiver: ${WEBHOOKS} 1-alert webhooks`, WEBHOOKS, 1],
      [`receiver: ${PAYLOADS} 20-alert webhooks`, PAYLOADS, 20],
    ] as const) {
      const sub = join(dir, String(alerts));
      const d = await deploy({ kind: 'split', workers: 0, redisUrl: redis.url, prefix: newPrefix(), rulesDir, cpuProfDir: sub });
      const from = d.readyAtUs;
      await closedLoop(`${d.url}/webhook`, payloads(count, alerts, 'BenchTrue'), IN_FLIGHT);
      await d.stop();
      await redis.flush();
      const files = profilesIn(join(sub, 'receiver'));
      out +=
        files.length === 0
          ? `#### ${title}\n\n(no profile written)\n\n`
          : profileMarkdown(title, summariseProfile(files[0]!, from, 25));
    }
    return out;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const f0 = (n: number) => (Number.isFinite(n) ? Math.round(n).toLocaleString('en-US') : '–');
const f1 = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : '–');
const x2 = (n: number) => (Number.isFinite(n) ? `${n.toFixed(2)}×` : '–');

/** Median over rounds, with the range when there is more than one round. */
function med<R>(rounds: readonly R[], pick: (r: R) => number, fmt = f0): string {
  const v = rounds.map(pick);
  const m = fmt(median(v));
  return v.length > 1 ? `${m} (${fmt(Math.min(...v))}–${fmt(Math.max(...v))})` : m;
}

/**
 * The 20-alert figures beside the durable-ingest floor: how far remediator's receiver is from the least a receiver
 * can do before a durable 202, and how far that floor itself is from LPUSH (what the 0.4× target asks of any design).
 */
function floorRows<R extends IngestRound>(): [string, (r: R) => number, string, (r: R) => number, string][] {
  return [
    [
      'receiver, 20-alert payloads, alerts/s',
      (r) => r.ingest.twenty.alertsPerSec,
      'durable-ingest floor alerts/s',
      (r) => r.floor20.alertsPerSec,
      '',
    ],
    ['durable-ingest floor, 20-alert payloads, alerts/s', (r) => r.floor20.alertsPerSec, 'Redis LPUSH ops/s', (r) => r.lpush, ''],
  ];
}

/** BENCH_ONLY=ingest: the ingest rows, their ceilings and answer latencies, per round and as medians. */
function ingestReport(rounds: IngestRound[], profiles: string, started: string, machine: string): string {
  const m = (pick: (r: IngestRound) => number, fmt = f0) => med(rounds, pick, fmt);
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    /* not a git checkout */
  }
  let out = `# remediator benchmark: ingest section only (BENCH_ONLY=ingest)\n\nCommit ${commit}, ${machine}, ${started}. ${rounds.length} rounds; `;
  out += `${WEBHOOKS} 1-alert and ${PAYLOADS} 20-alert webhooks per case, ${IN_FLIGHT} in flight, ${SLICES} alternating slices. LOG_LEVEL info.\n\n`;
  out += `Machine load per round (share of all cores busy / of which not the bench's processes; 1-min load average at the start): ${rounds
    .map((r) => `${(r.cpu.busy * 100).toFixed(0)}% / ${(r.cpu.others * 100).toFixed(0)}%, ${r.cpu.load.toFixed(1)}`)
    .join('; ')}.\n\n`;
  out += '| figure | remediator | ceiling, same run | ratio | target |\n|---|---|---|---|---|\n';
  const rows: [string, (r: IngestRound) => number, string, (r: IngestRound) => number, string][] = [
    [
      'receiver, 1-alert webhooks/s',
      (r) => r.ingest.one.webhooksPerSec,
      'bare node:http',
      (r) => r.bare1.webhooksPerSec,
      '≥ 0.5×',
    ],
    [
      'receiver, 1-alert re-sent webhooks/s',
      (r) => r.ingest.oneDup.webhooksPerSec,
      'bare node:http',
      (r) => r.bare1Dup.webhooksPerSec,
      '',
    ],
    ['receiver, 20-alert payloads, alerts/s', (r) => r.ingest.twenty.alertsPerSec, 'Redis LPUSH ops/s', (r) => r.lpush, '≥ 0.4×'],
    ...floorRows<IngestRound>(),
    ['receiver, 20-alert re-sent, alerts/s', (r) => r.ingest.twentyDup.alertsPerSec, 'Redis LPUSH ops/s', (r) => r.lpushDup, ''],
    [
      'receiver, 20-alert payloads/s',
      (r) => r.ingest.twenty.webhooksPerSec,
      'bare node:http (20-alert)',
      (r) => r.bare20.webhooksPerSec,
      '',
    ],
  ];
  for (const [fig, ours, name, ceil, target] of rows)
    out += `| ${fig} | ${m(ours)} | ${name} ${m(ceil)} | ${m((r) => ours(r) / ceil(r), x2)} | ${target} |\n`;
  out += '\n| case | p50 ms | p99 ms |\n|---|---|---|\n';
  for (const [name, pick] of [
    ['1-alert', (r: IngestRound) => r.ingest.one],
    ['1-alert re-sent', (r: IngestRound) => r.ingest.oneDup],
    ['20-alert', (r: IngestRound) => r.ingest.twenty],
    ['20-alert re-sent', (r: IngestRound) => r.ingest.twentyDup],
    ['bare node:http, 1-alert', (r: IngestRound) => r.bare1],
  ] as const)
    out += `| ${name} | ${m((r) => pick(r).p50, f1)} | ${m((r) => pick(r).p99, f1)} |\n`;
  out +=
    '\n| round | bare 1-alert/s | ingest 1/s | ratio | LPUSH/s | ingest 20 alerts/s | ratio |\n|---|---|---|---|---|---|---|\n';
  rounds.forEach((r, i) => {
    out += `| ${i + 1} | ${f0(r.bare1.webhooksPerSec)} | ${f0(r.ingest.one.webhooksPerSec)} | ${x2(r.ingest.one.webhooksPerSec / r.bare1.webhooksPerSec)} | ${f0(r.lpush)} | ${f0(r.ingest.twenty.alertsPerSec)} | ${x2(r.ingest.twenty.alertsPerSec / r.lpush)} |\n`;
  });
  if (profiles)
    out += `\n## CPU profiles (node --cpu-prof, from readiness to exit): self time, share of busy time\n\n${profiles}`;
  return out;
}

function report(rounds: Round[], profiles: string, started: string, machine: string): string {
  const commit = (() => {
    try {
      return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    } catch {
      return 'unknown';
    }
  })();
  let out = `# remediator benchmark\n\n`;
  out +=
    `Commit ${commit}, ${started}. ${machine}. A redis-server of its own (no persistence), every process on loopback. ` +
    `${rounds.length} rounds, medians (range over rounds in brackets); each ratio is taken within a round, then the ` +
    `median. The machine is shared: each receiver figure and its ceiling are measured in ${SLICES} alternating slices, ` +
    `and the spawn loop (${SPAWNS} spawns) right before and after each burst, so both meet the same load. Sizes: ${WEBHOOKS} 1-alert and ${PAYLOADS} 20-alert webhooks per ingest case, ${IN_FLIGHT} in flight; ` +
    `bursts of ${INCIDENTS} incidents (1-alert webhooks, exec /bin/true) after ${WARM} warm-up runs; latency: 30 ` +
    `webhooks one at a time, then ${LOADED_SECONDS} s open loop at half and at the full burst rate. LOG_LEVEL info.\n\n`;
  out += `Machine load per round (share of all cores busy / of which not the bench's processes; 1-min load average at the start): ${rounds
    .map((r) => `${(r.cpu.busy * 100).toFixed(0)}% / ${(r.cpu.others * 100).toFixed(0)}%, ${r.cpu.load.toFixed(1)}`)
    .join('; ')}.\n\n`;
  out += '## Against the ceilings\n\n| figure | remediator | ceiling, same run | ratio | target |\n|---|---|---|---|---|\n';
  const row = (fig: string, ours: (r: Round) => number, ceilName: string, ceil: (r: Round) => number, target = '') =>
    `| ${fig} | ${med(rounds, ours)} | ${ceilName} ${med(rounds, ceil)} | ${med(rounds, (r) => ours(r) / ceil(r), x2)} | ${target} |\n`;
  const rows: [string, (r: Round) => number, string, (r: Round) => number, string?][] = [
    [
      'receiver, 1-alert webhooks/s',
      (r) => r.ingest.one.webhooksPerSec,
      'bare node:http',
      (r) => r.bare1.webhooksPerSec,
      '≥ 0.5×',
    ],
    [
      'receiver, 1-alert re-sent (duplicate) webhooks/s',
      (r) => r.ingest.oneDup.webhooksPerSec,
      'bare node:http',
      (r) => r.bare1Dup.webhooksPerSec,
    ],
    ['receiver, 20-alert payloads, alerts/s', (r) => r.ingest.twenty.alertsPerSec, 'Redis LPUSH ops/s', (r) => r.lpush, '≥ 0.4×'],
    ...floorRows<Round>(),
    [
      'receiver, 20-alert re-sent (duplicate), alerts/s',
      (r) => r.ingest.twentyDup.alertsPerSec,
      'Redis LPUSH ops/s',
      (r) => r.lpushDup,
    ],
    [
      'receiver, 20-alert payloads/s',
      (r) => r.ingest.twenty.webhooksPerSec,
      'bare node:http (20-alert)',
      (r) => r.bare20.webhooksPerSec,
    ],
    [
      'serve: completed /bin/true actions/s (burst: first webhook → last run)',
      (r) => r.actions.serve.actionsPerSec,
      'spawn loop /s',
      (r) => r.spawn.serve,
      '≥ 0.5× and > 1,000/s',
    ],
    ['serve: … while webhooks arrive', (r) => r.actions.serve.duringIntake, 'spawn loop /s', (r) => r.spawn.serve],
    ['serve: … after intake stops', (r) => r.actions.serve.afterIntake, 'spawn loop /s', (r) => r.spawn.serve],
    [
      'serve: 1-alert webhooks/s while runs execute',
      (r) => r.actions.serve.webhooksPerSec,
      'bare node:http',
      (r) => r.bare1.webhooksPerSec,
    ],
    ['receiver + 1 worker: actions/s', (r) => r.actions.one.actionsPerSec, 'spawn loop /s', (r) => r.spawn.one],
    ['receiver + 2 workers: actions/s', (r) => r.actions.two.actionsPerSec, 'spawn loop /s', (r) => r.spawn.two],
    [
      'receiver + 2 workers: actions/s',
      (r) => r.actions.two.actionsPerSec,
      'receiver + 1 worker',
      (r) => r.actions.one.actionsPerSec,
    ],
  ];
  for (const [fig, ours, ceilName, ceil, target] of rows) out += row(fig, ours, ceilName, ceil, target);
  out +=
    "\n## Webhook → first step (the step's command running), serve\n\n| load | webhooks/s | p50 ms | p99 ms | target |\n|---|---|---|---|---|\n";
  out += `| idle (one at a time) | – | ${med(rounds, (r) => r.latency.idle.p50, f1)} | ${med(rounds, (r) => r.latency.idle.p99, f1)} | p50 ≤ 10 ms |\n`;
  out += `| half the burst rate | ${med(rounds, (r) => r.latency.half.rate)} | ${med(rounds, (r) => r.latency.half.p50, f1)} | ${med(rounds, (r) => r.latency.half.p99, f1)} | p99 ≤ 100 ms |\n`;
  out += `| the burst rate | ${med(rounds, (r) => r.latency.full.rate)} | ${med(rounds, (r) => r.latency.full.p50, f1)} | ${med(rounds, (r) => r.latency.full.p99, f1)} | |\n`;
  out += '\n## Webhook answer latency (202), receiver\n\n| case | p50 ms | p99 ms |\n|---|---|---|\n';
  for (const [name, pick] of [
    ['1-alert', (r: Round) => r.ingest.one],
    ['1-alert re-sent', (r: Round) => r.ingest.oneDup],
    ['20-alert', (r: Round) => r.ingest.twenty],
    ['20-alert re-sent', (r: Round) => r.ingest.twentyDup],
    ['bare node:http, 1-alert', (r: Round) => r.bare1],
  ] as const)
    out += `| ${name} | ${med(rounds, (r) => pick(r).p50, f1)} | ${med(rounds, (r) => pick(r).p99, f1)} |\n`;
  out +=
    '\n## Resident memory (RSS) per process, MiB\n\n| deployment: process | idle (after start) | peak | target |\n|---|---|---|---|\n';
  for (const m of rounds[0]!.memory) {
    const pick = (r: Round) => r.memory.find((x) => x.role === m.role);
    out += `| ${m.role} | ${med(rounds, (r) => pick(r)?.idle ?? Number.NaN)} | ${med(rounds, (r) => pick(r)?.peak ?? Number.NaN)} | idle ≤ 80 |\n`;
  }
  out +=
    '\n## Per round\n\n| round | bare 1-alert/s | LPUSH/s | spawn/s | ingest 1/s | ingest 20 alerts/s | serve actions/s | 1 worker | 2 workers |\n|---|---|---|---|---|---|---|---|---|\n';
  rounds.forEach((r, i) => {
    out += `| ${i + 1} | ${f0(r.bare1.webhooksPerSec)} | ${f0(r.lpush)} | ${f0(r.spawn.serve)} | ${f0(r.ingest.one.webhooksPerSec)} | ${f0(r.ingest.twenty.alertsPerSec)} | ${f0(r.actions.serve.actionsPerSec)} | ${f0(r.actions.one.actionsPerSec)} | ${f0(r.actions.two.actionsPerSec)} |\n`;
  });
  if (profiles)
    out += `\n## CPU profiles (node --cpu-prof, one pass after the rounds, from readiness to exit): self time, share of busy time\n\n${profiles}`;
  return out;
}

/** BENCH_LATENCY=only: the webhook → first step rows of `serve`, per round and as medians. */
async function latencyOnly(machine: string, started: string): Promise<string> {
  const redis = await startBenchRedis();
  const client = new Redis(redis.url);
  const rulesDir = writeBenchRules();
  const rows: { load: number; cpu: { busy: number; others: number }; actions: ActionsRow; latency: Round['latency'] }[] = [];
  try {
    for (let i = 0; i < ROUNDS; i++) {
      process.stderr.write(`bench: latency round ${i + 1} of ${ROUNDS}\n`);
      const load = loadavg()[0]!;
      const cpu = new CpuWindow();
      const serve = await runDeployment(redis, client, rulesDir, 'serve', 0, true);
      rows.push({ load, cpu: cpu.end(), actions: serve.actions, latency: serve.latency! });
    }
  } finally {
    client.disconnect();
    closeAgents();
    await redis.stop();
    rmSync(rulesDir, { recursive: true, force: true });
  }
  const commit = (() => {
    try {
      return execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    } catch {
      return 'unknown';
    }
  })();
  let out = `# remediator benchmark: webhook → first step only (BENCH_LATENCY=only)\n\nCommit ${commit}, ${started}. ${machine}. `;
  out += `serve, ${ROUNDS} rounds; per round a burst of ${INCIDENTS} incidents sets the rate, then 30 webhooks one at a time, then ${LOADED_SECONDS} s open loop at half and at the full burst rate.\n\n`;
  out +=
    '| round | 1-min load | cores busy / others | burst actions/s | idle p50 | idle p99 | half: webhooks/s | half p50 | half p99 | full: webhooks/s | full p50 | full p99 |\n|---|---|---|---|---|---|---|---|---|---|---|---|\n';
  rows.forEach((r, i) => {
    const l = r.latency;
    out += `| ${i + 1} | ${r.load.toFixed(1)} | ${(r.cpu.busy * 100).toFixed(0)}% / ${(r.cpu.others * 100).toFixed(0)}% | ${f0(r.actions.actionsPerSec)} | ${f1(l.idle.p50)} | ${f1(l.idle.p99)} | ${f0(l.half.rate)} | ${f1(l.half.p50)} | ${f1(l.half.p99)} | ${f0(l.full.rate)} | ${f1(l.full.p50)} | ${f1(l.full.p99)} |\n`;
  });
  const m = (pick: (r: (typeof rows)[number]) => number) => f1(median(rows.map(pick)));
  out += `| median | ${m((r) => r.load)} | | ${m((r) => r.actions.actionsPerSec)} | ${m((r) => r.latency.idle.p50)} | ${m((r) => r.latency.idle.p99)} | ${m((r) => r.latency.half.rate)} | ${m((r) => r.latency.half.p50)} | ${m((r) => r.latency.half.p99)} | ${m((r) => r.latency.full.rate)} | ${m((r) => r.latency.full.p50)} | ${m((r) => r.latency.full.p99)} |\n`;
  out += '\nTargets: idle p50 ≤ 10 ms; half-rate p99 ≤ 100 ms.\n';
  return out;
}

/** BENCH_ONLY=rss: RSS of every process of serve and of a split deployment at readiness, settled, and peak after a burst. */
async function rssOnly(redis: BenchRedis, client: Redis, rulesDir: string, started: string, machine: string): Promise<string> {
  const incidents = Number(env.BENCH_RSS_INCIDENTS ?? 500);
  const settleS = Number(env.BENCH_RSS_SETTLE ?? 30);
  type Row = { role: string; ready: number; settled: number; peak: number };
  const rounds: Row[][] = [];
  for (let i = 0; i < ROUNDS; i++) {
    process.stderr.write(`bench: rss round ${i + 1} of ${ROUNDS}\n`);
    const rows: Row[] = [];
    for (const [kind, workers, label] of [
      ['serve', 0, 'serve'],
      ['split', 1, 'receiver + 1 worker'],
    ] as const) {
      const prefix = newPrefix();
      const d = await deploy({ kind, workers, redisUrl: redis.url, prefix, rulesDir });
      try {
        const ready = d.memory();
        await new Promise((r) => setTimeout(r, settleS * 1000));
        const settled = d.memory();
        await burst(d.url, client, prefix, incidents, 0);
        const peak = d.memory();
        // serve's receiver processes share serve's command line: told apart by their order of start (pid order).
        const names = new Map<string, number>();
        for (const m of ready) {
          const n = (names.get(m.name) ?? 0) + 1;
          names.set(m.name, n);
          const name = n > 1 ? `${m.name} (${n})` : m.name;
          rows.push({
            role: `${label}: ${name}`,
            ready: m.rssMiB,
            settled: settled.find((x) => x.pid === m.pid)?.rssMiB ?? Number.NaN,
            peak: peak.find((x) => x.pid === m.pid)?.peakMiB ?? Number.NaN,
          });
        }
      } finally {
        await d.stop();
        await redis.flush();
      }
    }
    rounds.push(rows);
  }
  let commit = 'unknown';
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
  } catch {
    /* not a git checkout */
  }
  let out = `# remediator benchmark: memory only (BENCH_ONLY=rss)\n\nCommit ${commit}, ${machine}, ${started}. ${rounds.length} rounds; `;
  out += `NODE_OPTIONS ${JSON.stringify(env.BENCH_NODE_OPTIONS ?? NODE_FLAGS)}. VmRSS right after /readyz answers (as a full round's idle), again after ${settleS} s idle (settled), and VmHWM after a burst of ${incidents} exec /bin/true runs (peak). MiB, medians (range).\n\n`;
  out +=
    '| deployment: process | at readiness | settled (idle) | peak | settled per round | target |\n|---|---|---|---|---|---|\n';
  for (const m of rounds[0]!) {
    const pick = (r: Row[]) => r.find((x) => x.role === m.role);
    const one = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : '–');
    out += `| ${m.role} | ${med(rounds, (r) => pick(r)?.ready ?? Number.NaN, one)} | ${med(rounds, (r) => pick(r)?.settled ?? Number.NaN, one)} | ${med(rounds, (r) => pick(r)?.peak ?? Number.NaN)} | ${rounds.map((r) => one(pick(r)?.settled ?? Number.NaN)).join(', ')} | idle ≤ 80 |\n`;
  }
  return out;
}

async function main(): Promise<void> {
  const started = new Date().toISOString();
  const machine = machineLine();
  if (env.BENCH_LATENCY === 'only') {
    const text = await latencyOnly(machine, started);
    writeFileSync(REPORT, text);
    process.stdout.write(`${text}\nreport written to ${REPORT}\n`);
    return;
  }
  if (env.BENCH_SCALE === 'only') {
    let text = `# remediator benchmark: scale section only\n\n${machine}, ${started}.\n`;
    await runScaleBench((t) => (text += t));
    writeFileSync(REPORT, text);
    process.stdout.write(`${text}\nreport written to ${REPORT}\n`);
    return;
  }
  const redis = await startBenchRedis();
  const client = new Redis(redis.url);
  const rulesDir = writeBenchRules();
  try {
    if (env.BENCH_ONLY === 'rss') {
      const text = await rssOnly(redis, client, rulesDir, started, machine);
      writeFileSync(REPORT, text);
      process.stdout.write(`${text}\nreport written to ${REPORT}\n`);
      return;
    }
    if (env.BENCH_ONLY === 'ingest') {
      const rounds: IngestRound[] = [];
      for (let i = 0; i < ROUNDS; i++) {
        process.stderr.write(`bench: ingest round ${i + 1} of ${ROUNDS}\n`);
        rounds.push(await ingestRound(redis, rulesDir));
      }
      const profiles = env.BENCH_PROFILE === '0' ? '' : await ingestProfilePass(redis, rulesDir);
      const text = ingestReport(rounds, profiles, started, machine);
      writeFileSync(REPORT, text);
      process.stdout.write(`${text}\nreport written to ${REPORT}\n`);
      return;
    }
    const rounds: Round[] = [];
    for (let i = 0; i < ROUNDS; i++) {
      process.stderr.write(`bench: round ${i + 1} of ${ROUNDS}\n`);
      rounds.push(await round(redis, client, rulesDir));
    }
    process.stderr.write('bench: profile pass\n');
    const profiles = env.BENCH_PROFILE === '0' ? '' : await profilePass(redis, client, rulesDir);
    let text = report(rounds, profiles, started, machine);
    writeFileSync(REPORT, text);
    if (env.BENCH_SCALE !== '0') {
      process.stderr.write('bench: scale section\n');
      await runScaleBench((t) => (text += t));
      writeFileSync(REPORT, text);
    }
    process.stdout.write(`${text}\nreport written to ${REPORT}\n`);
  } finally {
    client.disconnect();
    closeAgents();
    await redis.stop();
    rmSync(rulesDir, { recursive: true, force: true });
  }
}

main().then(
  () => process.exit(0),
  (err: Error) => {
    process.stderr.write(`bench failed: ${err.stack ?? err.message}\n`);
    process.exit(1);
  },
);
