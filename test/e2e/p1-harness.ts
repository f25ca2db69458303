/**
 * The shared setting of the P1 end-to-end tests (test/e2e/p1-00N-*.test.ts): a deployment of rust-tokio-supervisor
 * as the simulator (sim/) plays it, watched and acted on as in production, with nobody acting after a fault:
 *
 *   sim supervisor host ──ipc.path socket──▶ `remediator exporter` (the built CLI, a real process)
 *        │  ▲ registration heartbeats          ▲ scraped every 1 s as job="supervisor"
 *        ▼  │                                  │
 *   relay stand-in (rust-supervisor-relay)    real Prometheus (fast copy of rules/prometheus/supervisor.rules.yaml)
 *                                               │
 *   service-manager stand-ins                  real Alertmanager ──webhook──▶ the built remediator (`serve`,
 *   (sim/bin/restart-supervisor,                                              shipped rule files unchanged, only
 *    sim/bin/restart-relay)  ◀──── exec ──────────────────────────────────── their vars set) ──▶ webhook sink
 *
 * The supervisor and the relay are started (and restarted) only through the service-manager stand-ins, which keep
 * pid files and append the processes' output to log files, as systemd keeps a journal: the procedures' restart
 * commands and `log_command` use the same files. Faults go through the simulator's admin channel or are done to
 * the processes and files themselves (SIGKILL, a deleted socket); state is read only through the IPC socket,
 * /proc, Prometheus and remediator's API.
 *
 * Each user gets its own temp dir (sockets, configs, pid files, logs), process names, ports and queue prefix, so
 * files run in parallel. `recordTimeline` writes test-artifacts/p1/<procedure>-<path>.json: fault → alert firing →
 * run start → each step → verified/escalated, beside the runbook's estimates (`timingTable` renders them).
 *
 * API (stable; add, don't break): startP1Env, P1Env, P1EnvOptions, Deployment, recordTimeline, timingTable,
 * startWebhookSink, squatSocket, step, stepSummary, timingLine, run.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { createServer as createNetServer, type Server as NetServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { startP1Stack, type P1Env, type P1StackOptions } from '../../scripts/lib/p1-stack.js';
import type { RunRecord } from '../../src/engine/record.js';
import { formatEstimate } from '../../src/rules/docs.js';
import { cleanupPrefix, REDIS_URL, requireRedis, testPrefix } from '../helpers/redis.js';
import { REPO_ROOT } from '../helpers/remediator.js';

// The stack itself is scripts/lib/p1-stack.ts (the demo starts it too); its API is this harness's, re-exported.
export {
  deploymentVars,
  PROCEDURE_FILES,
  run,
  startWebhookSink,
  step,
  stepSummary,
  TOKEN,
  type AmAlert,
  type Deployment,
  type EscalationPost,
  type P1Env,
  type ProcedureId,
  type SupervisorSetup,
  type WebhookSink,
} from '../../scripts/lib/p1-stack.js';

export const ARTIFACTS_DIR = join(REPO_ROOT, 'test-artifacts', 'p1');

export interface P1EnvOptions extends Omit<P1StackOptions, 'redisUrl' | 'prefix' | 'onStop'> {
  /** Default REDIS_URL of test/helpers/redis.ts (TEST_REDIS_URL or 127.0.0.1:6379). */
  redisUrl?: string;
}

/**
 * startP1Stack with this test's Redis: it must answer (else the test fails saying how to get one), the queue
 * prefix is the test's own and its keys are removed on stop().
 */
export async function startP1Env(opts: P1EnvOptions): Promise<P1Env> {
  const redisUrl = opts.redisUrl ?? REDIS_URL;
  await requireRedis(redisUrl);
  const prefix = testPrefix(`p1-${opts.tag}`);
  return startP1Stack({ ...opts, redisUrl, prefix, onStop: () => cleanupPrefix(prefix, redisUrl) });
}

/**
 * Another process holding the supervisor's socket path (a second deployment configured with the same `ipc.path`,
 * restarted by its own service manager): whenever the path is free it listens there, accepts connections and
 * closes them without a word. A supervisor that starts then finds the path taken (`IPC path already exists`
 * under create_new, `IPC path is served by a live process` under replace_stale): the runbook's socket path
 * contention.
 */
export interface SocketSquatter {
  /** Connections it accepted. */
  readonly connections: number;
  holding(): boolean;
  close(): Promise<void>;
}

export function squatSocket(path: string): SocketSquatter {
  let server: NetServer | null = null;
  let closed = false;
  const state = { connections: 0 };
  const open = new Set<Socket>();
  const tryTake = () => {
    if (closed) return;
    // Held, but the file is gone (a supervisor's exit unlinks its ipc.path): let go and take it again.
    if (server !== null && server.listening && !existsSync(path)) {
      server.close();
      server = null;
    }
    if (server !== null || existsSync(path)) return;
    const s = createNetServer((c) => {
      state.connections++;
      open.add(c);
      c.on('close', () => open.delete(c));
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
      // close() waits for every connection: a client that keeps its end open must not hold the test.
      for (const c of open) c.destroy();
      if (s !== null) await new Promise<void>((r) => s.close(() => r()));
      try {
        unlinkSync(path);
      } catch {
        /* gone */
      }
    },
  };
}

// ---- assertions' raw material and reporting -----------------------------------------------------------

/** One line: measured fault → verified recovery (or → escalation) next to the runbook's estimate. */
export function timingLine(procedure: string, what: string, faultAt: number, run: RunRecord): string {
  const endedAt = Date.parse(run.endedAt ?? new Date().toISOString());
  const seconds = ((endedAt - faultAt) / 1000).toFixed(1);
  const estimate = run.sla.estimateMs !== undefined ? formatEstimate(run.sla.estimateMs) : 'none';
  return `${procedure}: fault → ${what} ${seconds} s (runbook estimate ${estimate})`;
}

/** test-artifacts/p1/<procedure>-<path>.json: one scenario's timeline. */
export interface Timeline {
  procedure: string;
  /** The scenario: `heal-panic`, `escalate-restart-fails-twice`, … */
  path: string;
  fault: { what: string; at: string };
  alert: { name: string; startsAt: string; webhookReceivedAt: string };
  run: { id: string; state: string; reason?: string; startedAt?: string; endedAt?: string };
  /** Seconds from the fault. */
  seconds: { alertReceived: number; runStarted?: number; ended?: number };
  steps: {
    name: string;
    status: string;
    reason?: string;
    startedAt?: string;
    endedAt?: string;
    /** Seconds from the fault to the step's end. */
    endedAfterFault?: number;
    durationMs?: number;
    estimateMs?: number;
    observed: { labels: Record<string, string>; value: number | string | null }[];
  }[];
  escalations: { when: string; to: string; status: string; at: string }[];
  runbook: { estimateMs?: number; slaMs?: number };
  /** Runs of this procedure the fault caused (the honest count: 1). */
  runsForFault: number;
  recordedAt: string;
}

/** Writes the scenario's timeline to test-artifacts/p1/<procedure>-<path>.json and returns it. */
export function recordTimeline(opts: {
  procedure: string;
  path: string;
  fault: string;
  faultAt: number;
  run: RunRecord;
  runsForFault: number;
}): Timeline {
  const { run: r, faultAt } = opts;
  const since = (iso: string | undefined) => (iso === undefined ? undefined : (Date.parse(iso) - faultAt) / 1000);
  const timeline: Timeline = {
    procedure: opts.procedure,
    path: opts.path,
    fault: { what: opts.fault, at: new Date(faultAt).toISOString() },
    alert: { name: r.alert.labels.alertname ?? '', startsAt: r.alert.startsAt, webhookReceivedAt: r.trigger.receivedAt },
    run: {
      id: r.id,
      state: r.state,
      ...(r.reason !== undefined ? { reason: r.reason } : {}),
      ...(r.startedAt !== undefined ? { startedAt: r.startedAt } : {}),
      ...(r.endedAt !== undefined ? { endedAt: r.endedAt } : {}),
    },
    seconds: {
      alertReceived: since(r.trigger.receivedAt)!,
      ...(r.startedAt !== undefined ? { runStarted: since(r.startedAt)! } : {}),
      ...(r.endedAt !== undefined ? { ended: since(r.endedAt)! } : {}),
    },
    steps: r.steps.map((s) => ({
      name: s.name,
      status: s.status,
      ...(s.reason !== undefined ? { reason: s.reason } : {}),
      ...(s.startedAt !== undefined ? { startedAt: s.startedAt } : {}),
      ...(s.endedAt !== undefined ? { endedAt: s.endedAt, endedAfterFault: since(s.endedAt)! } : {}),
      ...(s.durationMs !== undefined ? { durationMs: s.durationMs } : {}),
      ...(s.estimate !== undefined ? { estimateMs: s.estimate } : {}),
      observed: s.observed.slice(0, 10).map((o) => ({ labels: o.labels, value: o.value })),
    })),
    escalations: r.escalations.map((e) => ({ when: e.when, to: e.to, status: e.status, at: e.at })),
    runbook: {
      ...(r.sla.estimateMs !== undefined ? { estimateMs: r.sla.estimateMs } : {}),
      ...(r.sla.slaMs !== undefined ? { slaMs: r.sla.slaMs } : {}),
    },
    runsForFault: opts.runsForFault,
    recordedAt: new Date().toISOString(),
  };
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  writeFileSync(join(ARTIFACTS_DIR, `${opts.procedure}-${opts.path}.json`), `${JSON.stringify(timeline, null, 2)}\n`);
  return timeline;
}

/**
 * A Markdown table of every timeline in test-artifacts/p1 (or `dir`): fault → alert received → run start → ended
 * (verified / escalated / …), seconds from the fault, beside the runbook's total estimate and SLA.
 * `npx tsx -e "import('./test/e2e/p1-harness.ts').then(m => console.log(m.timingTable()))"`
 */
export function timingTable(dir = ARTIFACTS_DIR): string {
  const files = existsSync(dir)
    ? readdirSync(dir)
        .filter((f) => f.endsWith('.json'))
        .sort()
    : [];
  const rows = files.map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')) as Timeline);
  const s = (n: number | undefined) => (n === undefined ? '' : `${n.toFixed(1)} s`);
  const lines = [
    '| procedure | path | fault | alert → remediator | run start | outcome | fault → outcome | runbook estimate | SLA | runs |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...rows
      .map((t) =>
        [
          t.procedure,
          t.path,
          t.fault.what,
          s(t.seconds.alertReceived),
          s(t.seconds.runStarted),
          t.run.state,
          s(t.seconds.ended),
          t.runbook.estimateMs !== undefined ? formatEstimate(t.runbook.estimateMs) : '',
          t.runbook.slaMs !== undefined ? formatEstimate(t.runbook.slaMs) : '',
          String(t.runsForFault),
        ].join(' | '),
      )
      .map((row) => `| ${row} |`),
  ];
  return lines.join('\n');
}
