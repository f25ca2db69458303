/**
 * The ceilings each remediator figure is compared with, measured in the same run on the same machine: a bare
 * node:http server (webhooks/s), Redis LPUSH through redis-benchmark (ops/s, 50 clients, unpipelined) on the very
 * redis-server remediator uses, a durable-ingest floor (bench/durable-floor.ts: node:http plus one Redis script per
 * payload that stores each alert, on that same redis-server; alerts/s), and a minimal child_process.spawn loop of
 * /bin/true (spawns/s). Each runs as its own process, bounded in count; loopback only.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../scripts/lib/ports.js';
import { runCommand, spawnProcess, type ManagedProcess } from '../scripts/lib/processes.js';
import { waitFor } from '../scripts/lib/wait.js';
import { ephemeralRedisArgs, REDIS_SERVER } from '../scripts/lib/redis-server.js';

const HERE = fileURLToPath(new URL('.', import.meta.url));
const REDIS_BENCHMARK = '/usr/bin/redis-benchmark';

/** A node process running one of the bench's own TypeScript scripts. */
function nodeScript(name: string, script: string, args: string[]): ManagedProcess {
  return spawnProcess(name, process.execPath, ['--import', 'tsx', join(HERE, script), ...args]);
}

export interface BenchRedis {
  port: number;
  url: string;
  flush(): Promise<void>;
  stop(): Promise<void>;
}

/** A redis-server of the bench's own (no persistence, like the reference figures), on a free loopback port. */
export async function startBenchRedis(): Promise<BenchRedis> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'remediator-bench-redis-'));
  const proc = spawnProcess('bench-redis', REDIS_SERVER, ephemeralRedisArgs(port, dir));
  const cli = (...args: string[]) => runCommand('/usr/bin/redis-cli', ['-p', String(port), ...args], { timeoutMs: 60_000 });
  await waitFor('bench redis-server', async () => (await cli('PING')).stdout.trim() === 'PONG', {
    timeoutMs: 10_000,
    processes: [proc],
  });
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    flush: async () => void (await cli('FLUSHALL')),
    stop: async () => void (await proc.stop({ graceMs: 10_000 })),
  };
}

/** LPUSH ops/s with redis-benchmark: 50 clients, no pipelining (`-c 50 -P 1`), `requests` in all. */
export async function redisLpush(port: number, requests = 100_000): Promise<number> {
  const r = await runCommand(
    REDIS_BENCHMARK,
    ['-h', '127.0.0.1', '-p', String(port), '-t', 'lpush', '-n', String(requests), '-c', '50', '-P', '1', '--csv'],
    { timeoutMs: 120_000 },
  );
  const line = r.stdout.split('\n').find((l) => l.startsWith('"LPUSH'));
  if (r.code !== 0 || line === undefined) throw new Error(`redis-benchmark failed (${r.code}): ${r.stdout}${r.stderr}`);
  return Number(line.split(',')[1]!.replace(/"/g, ''));
}

/** A webhook server of the bench's own (a script answering 202 to a POST /webhook) as a process, once it answers; its URL. */
async function startWebhookServer(
  name: string,
  what: string,
  script: string,
  args: (port: number) => string[],
): Promise<{ url: string; proc: ManagedProcess }> {
  const port = await freePort();
  const proc = nodeScript(name, script, args(port));
  const url = `http://127.0.0.1:${port}/webhook`;
  await waitFor(
    what,
    async () => (await fetch(url, { method: 'POST', body: '{"alerts":[]}' }).catch(() => undefined))?.status === 202,
    { timeoutMs: 15_000, processes: [proc] },
  );
  return { url, proc };
}

/** The bare node:http server as a process; its URL. */
export function startBareHttp(): Promise<{ url: string; proc: ManagedProcess }> {
  return startWebhookServer('bench-bare-http', 'bare node:http server', 'bare-http.ts', (port) => [String(port)]);
}

/**
 * The durable-ingest floor as a process on the bench's Redis: what a receiver that does nothing but store each alert
 * (SET NX + XADD, one script per payload) before its 202 reaches. Its URL.
 */
export function startDurableFloor(redisPort: number): Promise<{ url: string; proc: ManagedProcess }> {
  return startWebhookServer('bench-durable-floor', 'durable-ingest floor', 'durable-floor.ts', (port) => [
    String(port),
    String(redisPort),
  ]);
}

/** /bin/true spawns/s from a minimal spawn loop in a process of its own. */
export async function spawnLoop(total = 2000, inFlight = 16): Promise<number> {
  const proc = nodeScript('bench-spawn-loop', 'spawn-loop.ts', [String(total), String(inFlight)]);
  const exit = await proc.exited;
  const line = proc.logTail(1);
  if (exit.code !== 0) throw new Error(`spawn loop failed (${JSON.stringify(exit)}): ${line}`);
  return (JSON.parse(line) as { spawnsPerSec: number }).spawnsPerSec;
}
