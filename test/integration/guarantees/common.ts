/**
 * Shared by the guarantee tests: rule dirs, Alertmanager payloads, the run API, a private redis-server,
 * and the environment every remediator process of these tests starts with (small timeouts).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { RunRecord, RunState } from '../../../src/engine/record.js';
import { freePort } from '../../helpers/ports.js';
import { spawnProcess, type ManagedProcess } from '../../helpers/processes.js';
import { REDIS_URL } from '../../helpers/redis.js';
import { startRemediator, type RemediatorProcess } from '../../helpers/remediator.js';
import { waitFor } from '../../helpers/wait.js';
import { ephemeralRedisArgs, REDIS_SERVER } from '../../../scripts/lib/redis-server.js';

export const TOKEN = 'guarantees-token-0123456789';
export const FINAL: readonly RunState[] = ['succeeded', 'failed', 'escalated', 'cancelled', 'skipped'];

/** Temp dirs and other things to undo in afterAll, newest first. */
export class Cleanup {
  private readonly undo: (() => Promise<unknown> | unknown)[] = [];
  add(fn: () => Promise<unknown> | unknown): void {
    this.undo.push(fn);
  }
  tempDir(name: string): string {
    const dir = mkdtempSync(join(tmpdir(), `guarantee-${name}-`));
    this.add(() => rmSync(dir, { recursive: true, force: true }));
    return dir;
  }
  async run(): Promise<void> {
    for (const fn of this.undo.reverse()) await Promise.resolve(fn()).catch(() => {});
    this.undo.length = 0;
  }
}

/** A rules dir holding `files` (name → YAML). */
export function writeRules(cleanup: Cleanup, files: Record<string, string>): string {
  const dir = join(cleanup.tempDir('rules'), 'rules');
  mkdirSync(dir);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}

export interface WebhookAnswer {
  enqueued: number;
  duplicate: number;
  ignored: number;
  resolved: number;
  alerts: { runId?: string; result: string; procedure?: string; target?: string }[];
}

/** The HTTP API of one receiver (or serve) process. */
export class Api {
  constructor(
    readonly base: string,
    readonly token = TOKEN,
  ) {}
  private headers(): Record<string, string> {
    return { authorization: `Bearer ${this.token}`, 'content-type': 'application/json' };
  }
  post(body: unknown): Promise<Response> {
    return fetch(`${this.base}/webhook`, { method: 'POST', headers: this.headers(), body: JSON.stringify(body) });
  }
  async webhook(body: unknown): Promise<WebhookAnswer> {
    const res = await this.post(body);
    if (res.status !== 202) throw new Error(`POST /webhook: ${res.status} ${await res.text()}`);
    return (await res.json()) as WebhookAnswer;
  }
  async run(id: string): Promise<RunRecord | undefined> {
    const res = await fetch(`${this.base}/api/remediations/${id}`, { headers: this.headers() });
    if (res.status === 404) return undefined;
    if (res.status !== 200) throw new Error(`GET run ${id}: ${res.status}`);
    return (await res.json()) as RunRecord;
  }
  async runs(query: Record<string, string> = {}): Promise<RunRecord[]> {
    const qs = new URLSearchParams({ limit: '1000', ...query });
    const res = await fetch(`${this.base}/api/remediations?${qs}`, { headers: this.headers() });
    if (res.status !== 200) throw new Error(`GET runs: ${res.status}`);
    return ((await res.json()) as { runs: RunRecord[] }).runs;
  }
  /** Polls the run until `ok` holds; returns it. */
  waitRun(id: string, what: string, ok: (r: RunRecord) => boolean, timeoutMs = 20_000): Promise<RunRecord> {
    return waitFor(
      `run ${id}: ${what}`,
      async () => {
        const r = await this.run(id);
        return r !== undefined && ok(r) ? r : undefined;
      },
      timeoutMs,
    );
  }
  waitFinal(id: string, timeoutMs = 20_000): Promise<RunRecord> {
    return this.waitRun(id, 'a final state', (r) => FINAL.includes(r.state), timeoutMs);
  }
}

/** The environment of every remediator process in these tests: small timeouts, fast polling. */
export function baseEnv(
  opts: {
    prefix: string;
    rulesDir: string;
    prometheusUrl: string;
    /** REDIS_* variables (TestRedis.env); default the shared single Redis. */
    redis?: Record<string, string>;
    escalationUrl?: string;
  },
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    ...(opts.redis ?? { REDIS_URL }),
    QUEUE_PREFIX: opts.prefix,
    RULES_DIR: opts.rulesDir,
    PROMETHEUS_URL: opts.prometheusUrl,
    WEBHOOK_TOKEN: TOKEN,
    POLL_INTERVAL: '100ms',
    HTTP_TIMEOUT: '1s',
    LOCK_DURATION: '4s',
    STALLED_INTERVAL: '2s',
    SHUTDOWN_TIMEOUT: '3s',
    STORM_TARGETS: '100',
    LOG_LEVEL: 'info',
    ...(opts.escalationUrl ? { ESCALATION_WEBHOOK_URL: opts.escalationUrl } : {}),
    ...extra,
  };
}

/** Starts processes in parallel and registers their stop with `cleanup`. */
export async function startAll(
  cleanup: Cleanup,
  specs: { env: Record<string, string>; command: 'serve' | 'receiver' | 'worker'; name: string }[],
): Promise<RemediatorProcess[]> {
  const procs = await Promise.all(specs.map((s) => startRemediator(s.env, s.command, s.name)));
  for (const p of procs) cleanup.add(() => p.process.stop({ signal: 'SIGKILL' }));
  return procs;
}

/** Waits until a worker-only process answers /readyz 200 (its BullMQ worker is connected by then too). */
export function workerReady(p: RemediatorProcess, timeoutMs = 20_000): Promise<true> {
  return waitFor(
    `${p.process.name} /readyz`,
    async () => {
      const ex = p.process.exitInfo();
      if (ex) throw new Error(`${p.process.name} exited: ${JSON.stringify(ex)}\n${p.process.logTail(20)}`);
      const res = await fetch(`${p.url}/readyz`).catch(() => undefined);
      return res?.status === 200 ? true : undefined;
    },
    timeoutMs,
  );
}

/** The pid part of a record's `worker` (host:pid). */
export function workerPid(r: RunRecord): number | undefined {
  const pid = Number(r.worker?.split(':').at(-1));
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

/** A redis-server of the test's own on a free port (never the shared one), with an RDB dir so a restart keeps data. */
export class OwnRedis {
  private proc: ManagedProcess | undefined;
  private constructor(
    readonly port: number,
    readonly dir: string,
  ) {}
  static async start(cleanup: Cleanup): Promise<OwnRedis> {
    const r = new OwnRedis(await freePort(), cleanup.tempDir('redis'));
    cleanup.add(() => r.proc?.stop({ signal: 'SIGKILL' }));
    await r.start();
    return r;
  }
  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }
  get pid(): number | undefined {
    return this.proc?.pid;
  }
  async start(): Promise<void> {
    const proc = spawnProcess('redis-own', REDIS_SERVER, ephemeralRedisArgs(this.port, this.dir));
    this.proc = proc;
    await waitFor(
      'own redis-server to accept connections',
      async () => {
        if (proc.exitInfo()) throw new Error(`redis-server exited: ${proc.logTail(10)}`);
        return /Ready to accept connections/.test(proc.logTail(50)) ? true : undefined;
      },
      10_000,
    );
  }
  /** Stops it; `save` writes an RDB first (SIGTERM → SHUTDOWN SAVE semantics need `save` config, so use SHUTDOWN SAVE via redis-cli). */
  async stop(save: boolean): Promise<void> {
    const proc = this.proc;
    if (!proc) return;
    if (save) {
      const cli = spawnProcess('redis-cli', '/usr/bin/redis-cli', ['-p', String(this.port), 'shutdown', 'save']);
      await cli.exited;
      await proc.exited;
    } else {
      await proc.stop({ signal: 'SIGKILL' });
    }
    this.proc = undefined;
  }
}

/** A rule file for procedure `id` whose steps are http POSTs to the sink at `/act/<instance>/<id>/<step>`. */
export function httpProcedure(opts: {
  id: string;
  alertname: string;
  sinkUrl: string;
  steps?: string[];
  /** false: verify by the sink's HTTP answer instead of Prometheus. */
  expect?: boolean;
  extra?: string;
  escalation?: string;
  timeout?: string;
}): string {
  const steps = (opts.steps ?? ['act'])
    .map(
      (name) => `  - name: ${name}
    action: { http: { method: POST, url: "{{ vars.sink }}/act/{{ labels.instance }}/${opts.id}/${name}", timeout: ${opts.timeout ?? '30s'} } }
${
  opts.expect === false
    ? // No Prometheus to ask: the sink's answer is what the step verifies (a step without expect verifies nothing).
      `    expect: { httpStatus: [200, 201, 202, 204] }\n`
    : `    expect: { promql: 'healthy{instance="{{ labels.instance }}"}', op: "==", value: 1, within: 3s }\n`
}`,
    )
    .join('');
  return `id: ${opts.id}
title: ${opts.id} test procedure
match: ['alertname="${opts.alertname}"']
target: "{{ labels.instance }}"
vars: { sink: "${opts.sinkUrl}" }
${opts.extra ?? ''}
steps:
${steps}${opts.escalation ?? ''}`;
}

/** The PromQL the procedures above verify with, for one instance (script it on the fake Prometheus). */
export const healthyQuery = (instance: string): string => `healthy{instance="${instance}"}`;
