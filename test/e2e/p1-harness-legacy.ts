// LEGACY: the P1 harness on the old invented simulator (test/sim/), kept only so the not yet ported
// p1-002/p1-004 e2e tests and scripts/demo.ts compile; it goes with test/sim/. New code uses ./p1-harness.ts.
/**
 * The shared setting of the P1 end-to-end tests (test/e2e/p1-00N-*.test.ts) and of `npm run demo`: one
 * supervisor simulator, real Prometheus + Alertmanager (fast copy of rules/prometheus/supervisor.rules.yaml),
 * the built remediator as a real process running ONE shipped procedure file unchanged (only its vars set from
 * the environment), and a local webhook sink for escalations. Nobody acts after a fault is injected.
 *
 * Each user gets its own ports, queue prefix, temp dirs and process names (`pgrep -x` sees every simulator on
 * the machine), so files run in parallel.
 */
import { execFile } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createNetServer, type Server as NetServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { RunRecord, StepRecord } from '../../src/engine/record.js';
import { formatEstimate } from '../../src/rules/docs.js';
import { freePort } from '../helpers/ports.js';
import { cleanupPrefix, REDIS_URL, requireRedis, testPrefix } from '../helpers/redis.js';
import { REPO_ROOT, startRemediator, type RemediatorProcess } from '../helpers/remediator.js';
import { startStack, type FastRuleOptions, type Stack } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';
import { startSupervisorProcess, type SupervisorProcess, type SupervisorProcessOptions } from '../sim/launch.js';

export const TOKEN = 'p1-e2e-bearer-token-0123456789';

export const PROCEDURE_FILES = {
  'P1-001': 'P1-001-supervisor-crash.yaml',
  'P1-002': 'P1-002-child-crash-loop.yaml',
  'P1-003': 'P1-003-dashboard-ipc.yaml',
  'P1-004': 'P1-004-runtime-starvation.yaml',
} as const;
export type ProcedureId = keyof typeof PROCEDURE_FILES;

/** What the escalation webhook received. */
export interface EscalationPost {
  kind: string;
  runId: string;
  procedure: string;
  outcome: string;
  message: string;
  attachments: Record<string, unknown>;
  steps: { name: string; status: string; reason?: string }[];
  [key: string]: unknown;
}

/** An alert as Alertmanager's API v2 lists it. */
export interface AmAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  status: { state: string };
}

export interface WebhookSink {
  url: string;
  posts: EscalationPost[];
  close(): Promise<void>;
}

/** The escalation webhook: a node:http server on 127.0.0.1 that keeps every JSON body POSTed to it. */
export function startWebhookSink(): Promise<WebhookSink> {
  const posts: EscalationPost[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => {
      try {
        posts.push(JSON.parse(body) as EscalationPost);
        res.writeHead(204).end();
      } catch {
        res.writeHead(400).end();
      }
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/escalations`,
        posts,
        close: () => new Promise<void>((r) => server.close(() => r())),
      }),
    ),
  );
}

/** Process titles for one user: ≤ 15 characters, unique on the machine. */
export function processNames(tag: string): { processName: string; relayName: string } {
  const id = randomBytes(2).toString('hex');
  return { processName: `sup${tag}-${id}`.slice(0, 15), relayName: `rly${tag}-${id}`.slice(0, 15) };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function comm(pid: number): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/**
 * Stops the supervisor recorded in `pidFile` when it is alive and really ours (its comm is `processName`):
 * the copies the rules' restart command started are detached, outside any process group we hold.
 */
export async function stopRecordedSupervisor(pidFile: string, processName: string): Promise<void> {
  let pid: number;
  try {
    pid = Number(readFileSync(pidFile, 'utf8').trim());
  } catch {
    return;
  }
  if (!Number.isInteger(pid) || pid <= 1 || !alive(pid) || comm(pid) !== processName) return;
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + 8000;
  while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  if (alive(pid)) process.kill(pid, 'SIGKILL');
}

/** Runs an argv (no shell) to its end; resolves with its exit code and output. */
export function run(argv: readonly string[], timeoutMs = 60_000): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(argv[0]!, argv.slice(1), { timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1;
      resolve({ code, output: `${stdout}${stderr}` });
    });
  });
}

/**
 * A rogue process holding the dashboard IPC socket path: as soon as the path is free (the supervisor removed
 * it on shutdown), it listens there. The next supervisor then finds the socket live and fails with
 * `field_path="dashboard.path"`, the runbook's socket path contention.
 */
export interface SocketSquatter {
  /** Connections it accepted (a starting supervisor probes the socket once). */
  connections: number;
  holding(): boolean;
  close(): Promise<void>;
}

export function squatSocket(path: string): SocketSquatter {
  let server: NetServer | null = null;
  let closed = false;
  const state = { connections: 0 };
  const tryTake = () => {
    if (closed) return;
    // Held, but the file is gone: the old supervisor's own cleanup unlinked the path right after we bound it
    // (its close removes the socket file, then it unlinks the path once more). Let go and take it again.
    if (server !== null && server.listening && !existsSync(path)) {
      server.close();
      server = null;
    }
    if (server !== null || existsSync(path)) return;
    const s = createNetServer((c) => {
      state.connections++;
      c.on('error', () => {});
      c.end();
    });
    server = s;
    s.once('error', () => {
      if (server === s) server = null; // someone else got there first; try again later
    });
    s.listen(path);
  };
  const timer = setInterval(tryTake, 2);
  return {
    get connections() {
      return state.connections;
    },
    holding: () => server?.listening === true,
    async close() {
      closed = true;
      clearInterval(timer);
      const s = server;
      server = null;
      if (s !== null) await new Promise<void>((r) => s.close(() => r()));
      try {
        unlinkSync(path);
      } catch {
        /* gone */
      }
    },
  };
}

export interface P1EnvOptions {
  /** The procedure under test: runs() lists its runs. */
  procedure: ProcedureId;
  /** The shipped procedure files to load (default: only `procedure`). The demo loads all four. */
  procedures?: ProcedureId[];
  /** Default REDIS_URL of test/helpers/redis.ts (TEST_REDIS_URL or 127.0.0.1:6379). */
  redisUrl?: string;
  /** A short tag for names and prefixes, e.g. "1001". */
  tag: string;
  /** More simulator options (children, extraArgs...). */
  supervisor?: Omit<SupervisorProcessOptions, 'dumpDir' | 'processName' | 'relayName'>;
  /** The procedure's vars for this supervisor, as REMEDIATOR_VAR_<NAME> values. */
  vars(sup: SupervisorProcess, names: { processName: string; relayName: string }): Record<string, string>;
  fastRules?: FastRuleOptions;
  /** Extra remediator environment. */
  env?: Record<string, string>;
  log?: (line: string) => void;
}

export interface P1Env {
  procedure: ProcedureId;
  sup: SupervisorProcess;
  names: { processName: string; relayName: string };
  /** The supervisor's scrape target, which is the alerts' `instance` label. */
  instance: string;
  stack: Stack;
  remediator: RemediatorProcess;
  sink: WebhookSink;
  prefix: string;
  rulesDir: string;
  /** GET /api/remediations?procedure=<this one, or the one given>, newest first. */
  runs(procedure?: string): Promise<RunRecord[]>;
  run(id: string): Promise<RunRecord>;
  /** Waits for a run (newest first) the predicate accepts. */
  waitRun(what: string, pred: (r: RunRecord) => boolean, timeoutMs: number): Promise<RunRecord>;
  /** Waits until the run has reached one of `states` (e.g. `escalated`: ended, and the escalation recorded). */
  waitState(runId: string, states: readonly string[], timeoutMs: number): Promise<RunRecord>;
  /** RemediationEscalated alerts Alertmanager holds for this run. */
  escalationAlerts(runId: string): Promise<AmAlert[]>;
  /** Escalations the webhook sink received for this run. */
  webhookPosts(runId: string): EscalationPost[];
  /** Starts the supervisor again with the same flags (the simulator's restart command), waits until ready. */
  restartSupervisor(): Promise<void>;
  /** Waits until Prometheus sees the supervisor up with the dashboard link connected (a clean slate). */
  waitHealthy(timeoutMs?: number): Promise<void>;
  /** Prometheus instant query → the first sample's value. */
  query(promql: string): Promise<number | undefined>;
  stop(): Promise<void>;
}

const FINAL = new Set(['succeeded', 'failed', 'escalated', 'cancelled', 'skipped']);

/**
 * Starts, in order: webhook sink, supervisor (ready before Prometheus first scrapes it), Prometheus +
 * Alertmanager, remediator (RULES_DIR = a dir holding only this procedure's shipped file, copied unchanged).
 * Only this procedure is loaded so that the side effects of one P1 fault that other alerts see (a supervisor
 * restart briefly shows a disconnected link; a blocked child stalls the loop) do not start other procedures.
 */
export async function startP1Env(opts: P1EnvOptions): Promise<P1Env> {
  const redisUrl = opts.redisUrl ?? REDIS_URL;
  await requireRedis(redisUrl);
  const log = opts.log ?? (() => {});
  const dir = mkdtempSync(join(tmpdir(), `remediator-p1-${opts.tag}-`));
  const names = processNames(opts.tag);
  const prefix = testPrefix(`p1-${opts.tag}`);
  const cleanups: (() => Promise<void> | void)[] = [() => rmSync(dir, { recursive: true, force: true })];
  const stop = async () => {
    for (const c of cleanups.splice(0).reverse()) {
      try {
        await c();
      } catch (err) {
        log(`cleanup: ${(err as Error).message}`);
      }
    }
  };
  try {
    const sink = await startWebhookSink();
    cleanups.push(() => sink.close());

    const dumpDir = join(dir, 'sup');
    mkdirSync(dumpDir);
    const sup = await startSupervisorProcess({ ...opts.supervisor, dumpDir, ...names });
    cleanups.push(async () => {
      await sup.stop();
      await stopRecordedSupervisor(sup.pidFile, names.processName);
    });
    log(
      `supervisor ${names.processName} (relay ${names.relayName}) pid ${sup.pid}, metrics ${sup.metricsUrl}, admin ${sup.adminUrl}`,
    );

    const rulesDir = join(dir, 'rules');
    mkdirSync(rulesDir);
    const procedures = opts.procedures ?? [opts.procedure];
    for (const id of procedures) copyFileSync(join(REPO_ROOT, 'rules', PROCEDURE_FILES[id]), join(rulesDir, PROCEDURE_FILES[id]));

    const port = await freePort();
    const instance = `127.0.0.1:${sup.ports.metrics}`;
    const stack = await startStack({
      webhookUrl: `http://127.0.0.1:${port}/webhook`,
      webhookToken: TOKEN,
      scrapeTargets: [{ job: 'supervisor', target: instance }],
      ruleFiles: [join(REPO_ROOT, 'rules/prometheus/supervisor.rules.yaml')],
      fastRules: opts.fastRules ?? true,
    });
    cleanups.push(() => stack.stop());
    log(`Prometheus ${stack.prometheusUrl}, Alertmanager ${stack.alertmanagerUrl}`);

    const vars = Object.fromEntries(
      Object.entries(opts.vars(sup, names)).map(([k, v]) => [`REMEDIATOR_VAR_${k.toUpperCase()}`, v]),
    );
    const remediator = await startRemediator({
      PORT: String(port),
      REDIS_URL: redisUrl,
      QUEUE_PREFIX: prefix,
      PROMETHEUS_URL: stack.prometheusUrl,
      ALERTMANAGER_URL: stack.alertmanagerUrl,
      ESCALATION_WEBHOOK_URL: sink.url,
      RULES_DIR: rulesDir,
      WEBHOOK_TOKEN: TOKEN,
      POLL_INTERVAL: '250ms',
      ...vars,
      ...opts.env,
    });
    cleanups.push(async () => {
      await remediator.stop();
      await cleanupPrefix(prefix, redisUrl);
    });
    log(
      `remediator ${remediator.url} (rules: ${procedures.map((id) => PROCEDURE_FILES[id]).join(', ')}; ${Object.keys(vars).join(', ')})`,
    );

    const api = async <T>(path: string): Promise<T> => {
      const res = await fetch(`${remediator.url}${path}`, {
        headers: { authorization: `Bearer ${TOKEN}` },
        signal: AbortSignal.timeout(5000),
      });
      if (!res.ok) throw new Error(`GET ${path}: HTTP ${res.status}`);
      return (await res.json()) as T;
    };
    const runs = async (procedure: string = opts.procedure) =>
      (await api<{ runs: RunRecord[] }>(`/api/remediations?procedure=${encodeURIComponent(procedure)}&limit=50`)).runs;
    const query = async (promql: string) => {
      const res = await fetch(`${stack.prometheusUrl}/api/v1/query?query=${encodeURIComponent(promql)}`, {
        signal: AbortSignal.timeout(5000),
      });
      const body = (await res.json()) as { data: { result: { value: [number, string] }[] } };
      const v = body.data.result[0]?.value[1];
      return v === undefined ? undefined : Number(v);
    };
    const env: P1Env = {
      procedure: opts.procedure,
      sup,
      names,
      instance,
      stack,
      remediator,
      sink,
      prefix,
      rulesDir,
      runs,
      run: (id) => api<RunRecord>(`/api/remediations/${encodeURIComponent(id)}`),
      waitRun: async (what, pred, timeoutMs) => {
        try {
          return await waitFor(what, async () => (await runs()).find(pred), timeoutMs, 200);
        } catch (err) {
          // Say what there was instead: the runs, and the alerts Alertmanager holds.
          const seen = await runs().catch(() => [] as RunRecord[]);
          const am = await fetch(`${stack.alertmanagerUrl}/api/v2/alerts`)
            .then((r) => r.json() as Promise<AmAlert[]>)
            .catch(() => [] as AmAlert[]);
          throw new Error(
            `${(err as Error).message}\nruns: ${JSON.stringify(seen.map((r) => ({ id: r.id, state: r.state, startsAt: r.alert.startsAt, labels: r.alert.labels, reason: r.reason })))}` +
              `\nAlertmanager: ${JSON.stringify(am.map((a) => ({ labels: a.labels, startsAt: a.startsAt, state: a.status.state })))}` +
              `\nremediator log:\n${remediator.process.logTail(40)}`,
            { cause: err },
          );
        }
      },
      waitState: async (runId, states, timeoutMs) => {
        let last: RunRecord | undefined;
        let r: RunRecord;
        try {
          r = await waitFor(
            `run ${runId} to be ${states.join(' or ')}`,
            async () => {
              last = await api<RunRecord>(`/api/remediations/${encodeURIComponent(runId)}`);
              // `failed` comes before `escalated` (the escalation is recorded after the outcome): keep waiting.
              return states.includes(last.state) || (FINAL.has(last.state) && last.state !== 'failed') ? last : undefined;
            },
            timeoutMs,
            200,
          );
        } catch (err) {
          throw new Error(
            `${(err as Error).message}\n${last ? `${last.state}: ${last.reason ?? ''}\n${stepSummary(last)}` : '(no record)'}`,
          );
        }
        if (!states.includes(r.state))
          throw new Error(`run ${runId} ended ${r.state}, not ${states.join(' or ')}: ${r.reason ?? ''}\n${stepSummary(r)}`);
        return r;
      },
      escalationAlerts: async (runId) => {
        const filter = encodeURIComponent('alertname="RemediationEscalated"');
        const res = await fetch(`${stack.alertmanagerUrl}/api/v2/alerts?filter=${filter}`, { signal: AbortSignal.timeout(5000) });
        const alerts = (await res.json()) as AmAlert[];
        return alerts.filter((a) => a.annotations.run_id === runId);
      },
      webhookPosts: (runId) => sink.posts.filter((p) => p.runId === runId),
      restartSupervisor: async () => {
        const r = await run(sup.restartCommand, 60_000);
        if (r.code !== 0) throw new Error(`restarting the supervisor failed (exit ${r.code}):\n${r.output}`);
      },
      waitHealthy: async (timeoutMs = 20_000) => {
        await waitFor(
          'Prometheus to see the supervisor up and its dashboard link connected',
          async () => {
            const up = await query(`up{job="supervisor",instance="${instance}"}`);
            const link = await query(`supervisor_dashboard_link_connected{instance="${instance}"}`);
            return up === 1 && link === 1 ? true : undefined;
          },
          timeoutMs,
          250,
        );
      },
      query,
      stop,
    };
    return env;
  } catch (err) {
    await stop();
    throw err;
  }
}

// ---- assertions' raw material and reporting -----------------------------------------------------------

export function step(run: RunRecord, name: string): StepRecord {
  const s = run.steps.find((x) => x.name === name);
  if (s === undefined) throw new Error(`run ${run.id} has no step ${name} (steps: ${run.steps.map((x) => x.name).join(', ')})`);
  return s;
}

/** `name: status (reason)` per step, for failure messages and logs. */
export function stepSummary(run: RunRecord): string {
  return run.steps.map((s) => `${s.name}: ${s.status}${s.reason ? ` (${s.reason})` : ''}`).join('\n');
}

/** The closing note's line: measured fault → verified recovery (or → escalation) next to the runbook's estimate. */
export function timingLine(procedure: string, what: string, faultAt: number, run: RunRecord): string {
  const endedAt = Date.parse(run.endedAt ?? new Date().toISOString());
  const seconds = ((endedAt - faultAt) / 1000).toFixed(1);
  const estimate = run.sla.estimateMs !== undefined ? formatEstimate(run.sla.estimateMs) : 'none';
  return `${procedure}: fault → ${what} ${seconds} s (runbook estimate ${estimate})`;
}
