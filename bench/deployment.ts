/**
 * remediator as the bench runs it: the built CLI (`node --enable-source-maps dist/cli.js <command>`, as `npm start`
 * runs it) in real processes on loopback, with the bench's rules and its own Redis. A deployment is one `serve`, or
 * one `receiver` and N `worker` processes. Optional `--cpu-prof` for the profile pass.
 */
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../scripts/lib/ports.js';
import { spawnProcess, type ManagedProcess } from '../scripts/lib/processes.js';
import { waitFor } from '../scripts/lib/wait.js';
import { BENCH_TOKEN } from './load.js';
import { memory, processTree, type Memory } from './machine.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const CLI = join(REPO, 'dist', 'cli.js');
/** The young generation's size, as deployed (Dockerfile, deploy/systemd, npm start). */
export const NODE_FLAGS = '--max-semi-space-size=2 --v8-pool-size=1';

/** Two procedures: `BenchTrue` runs /bin/true (throughput), `BenchDate` runs /bin/date +%s%N (its output is when the command ran). */
export function writeBenchRules(): string {
  const dir = mkdtempSync(join(tmpdir(), 'remediator-bench-rules-'));
  const rule = (id: string, alertname: string, command: string) =>
    `id: ${id}\ntitle: Bench ${alertname}\nmatch: ['alertname="${alertname}"']\ntarget: "{{ labels.instance }}"\n` +
    `steps:\n  - name: act\n    action: { exec: { command: ${command} } }\n`;
  writeFileSync(join(dir, 'bench-true.yaml'), rule('BENCH-TRUE', 'BenchTrue', '["/bin/true"]'));
  writeFileSync(join(dir, 'bench-date.yaml'), rule('BENCH-DATE', 'BenchDate', '["/bin/date", "+%s%N"]'));
  return dir;
}

export interface DeploymentSpec {
  /** `serve`, or `receiver` plus this many `worker` processes (0: ingest only). */
  kind: 'serve' | 'split';
  workers: number;
  redisUrl: string;
  prefix: string;
  rulesDir: string;
  /** Extra environment for every process. */
  env?: Record<string, string>;
  /** Write a CPU profile of each process into this directory when it exits. */
  cpuProfDir?: string;
  /** Another build's dist/cli.js (bench/receiver-cpu.ts compares two builds); default this checkout's. */
  cli?: string;
}

export interface Deployment {
  /** Where webhooks and the API go. */
  url: string;
  processes: ManagedProcess[];
  /** Every Node process of the deployment (and those a process started itself), named by role. */
  memory(): Memory[];
  /** When it became ready, µs on the monotonic clock (a CPU profile's clock): profiles leave out start-up. */
  readyAtUs: number;
  stop(): Promise<void>;
}

async function start(spec: DeploymentSpec, command: string, name: string): Promise<{ proc: ManagedProcess; url: string }> {
  const port = await freePort();
  const prof = spec.cpuProfDir !== undefined ? ['--cpu-prof', `--cpu-prof-dir=${join(spec.cpuProfDir, name)}`] : [];
  if (spec.cpuProfDir !== undefined) mkdirSync(join(spec.cpuProfDir, name), { recursive: true });
  const proc = spawnProcess(name, process.execPath, [...prof, '--enable-source-maps', spec.cli ?? CLI, command], {
    cwd: REPO,
    env: {
      HOST: '127.0.0.1',
      PORT: String(port),
      REDIS_URL: spec.redisUrl,
      QUEUE_PREFIX: spec.prefix,
      RULES_DIR: spec.rulesDir,
      WEBHOOK_TOKEN: BENCH_TOKEN,
      // Nothing listens here: the bench's steps verify nothing. Readiness only reports it.
      PROMETHEUS_URL: 'http://127.0.0.1:9',
      // The storm breaker would pause automation after 10 distinct targets; the bench fires thousands on purpose.
      STORM_TARGETS: '1000000',
      // The payloads carry fixed dates: none is too old here (MAX_INCIDENT_AGE).
      RUN_RETENTION: '3650d',
      MAX_INCIDENT_AGE: '3649d',
      // As the image, the systemd unit and npm start run it (NODE_OPTIONS in remediator's processes only, not in the
      // load generator or the ceilings); BENCH_NODE_OPTIONS replaces it ('' for V8's defaults).
      NODE_OPTIONS: process.env.BENCH_NODE_OPTIONS ?? NODE_FLAGS,
      ...spec.env,
    },
  });
  const url = `http://127.0.0.1:${port}`;
  await waitFor(`${name} /readyz`, async () => (await fetch(`${url}/readyz`).catch(() => undefined))?.status === 200, {
    timeoutMs: 30_000,
    intervalMs: 50,
    processes: [proc],
  });
  return { proc, url };
}

export async function deploy(spec: DeploymentSpec): Promise<Deployment> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first (npm run bench does it)`);
  const started =
    spec.kind === 'serve'
      ? [await start(spec, 'serve', 'serve')]
      : await Promise.all([
          start(spec, 'receiver', 'receiver'),
          ...Array.from({ length: spec.workers }, (_, i) => start(spec, 'worker', `worker-${i + 1}`)),
        ]);
  const processes = started.map((s) => s.proc);
  return {
    url: started[0]!.url,
    processes,
    readyAtUs: Number(process.hrtime.bigint() / 1000n),
    memory: () =>
      processes.flatMap((p) =>
        processTree(p.pid)
          .map((pid) => memory(pid))
          .filter((m): m is Memory => m !== undefined)
          .map((m) => ({ ...m, name: m.pid === p.pid ? p.name : `${p.name}/${m.name}` })),
      ),
    // SIGTERM: a clean exit writes the CPU profile; the runs are all finished when the bench stops a deployment.
    stop: async () => void (await Promise.all(processes.map((p) => p.stop({ graceMs: 30_000 })))),
  };
}
