/**
 * A deployment of rust-tokio-supervisor as the simulator (sim/) plays it, watched and acted on as in production:
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
 * Shared by the P1 end-to-end tests (test/e2e/p1-harness.ts wraps startP1Stack as startP1Env, with a test
 * Redis prefix) and `npm run demo` (scripts/demo.ts), which must not import test/. The supervisor and the relay
 * are started (and restarted) only through the service-manager stand-ins, which keep pid files and append the
 * processes' output to log files, as systemd keeps a journal. Faults go through the simulator's admin channel or
 * are done to the processes and files themselves; state is read only through the IPC socket, /proc, Prometheus
 * and remediator's API.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { postAdmin, SIM_BIN } from '../../sim/launch.js';
import type { RunRecord, StepRecord } from '../../src/engine/record.js';
import { freePort } from './ports.js';
import { spawnProcess, type ManagedProcess } from './processes.js';
import { REPO_ROOT, startRemediator, type RemediatorProcess } from './remediator.js';
import { startStack, type FastRuleOptions, type Stack } from './stack.js';
import { waitFor } from './wait.js';

export const TOKEN = 'p1-e2e-bearer-token-0123456789';
const CLI = join(REPO_ROOT, 'dist', 'cli.js');

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

/** Runs an argv (no shell) to its end; resolves with its exit code and output. */
export function run(argv: readonly string[], timeoutMs = 60_000): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile(argv[0]!, argv.slice(1), { timeout: timeoutMs }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : 1;
      resolve({ code, output: `${stdout}${stderr}` });
    });
  });
}

// ---- the deployment: supervisor + relay under the service-manager stand-ins --------------------------------

/** Everything a procedure's vars and a test's faults need to know about the deployed supervisor and relay. */
export interface Deployment {
  dir: string;
  /** The supervisor's `ipc.path` and `ipc.target_id`. */
  ipcPath: string;
  targetId: string;
  /** The fault-injection channel (not part of the contract). */
  adminPath: string;
  /** The host binary's name as /proc/<pid>/comm shows it (unique on the machine). */
  processName: string;
  configFile: string;
  /** Written by the service-manager stand-in when it starts the supervisor (its mtime: the last start). */
  pidFile: string;
  /** The supervisor's stdout and stderr, appended by the stand-in (the journal). */
  logFile: string;
  /** Where core files would land (the sim writes none: a panic unwinds). */
  coreDumpDir: string;
  heartbeatSeconds: number;
  relay: {
    configFile: string;
    pidFile: string;
    logFile: string;
    /** The registration socket (stat only!). */
    listenPath: string;
    /** Matches this relay's command line only (pgrep -f, RELAY_PROCESS_PATTERN). */
    pattern: string;
  };
  /** argv: the service manager's restart of the supervisor / relay. */
  restartCommand: string[];
  relayRestartCommand: string[];
  /** argv: the journal stand-in (`journalctl -u supervisor -n 50`). */
  logCommand: string[];
}

export interface SupervisorSetup {
  /** The sim config's sections besides `ipc` (children, policy, shutdown, sim…); see sim/README.md. */
  config?: Record<string, unknown>;
  /** `ipc.bind_mode` (default create_new, the real default). */
  bindMode?: 'create_new' | 'replace_stale';
  /** `registration_heartbeat_interval_seconds` (default 2; the real default is 15). */
  heartbeatSeconds?: number;
  /** `sim.sigterm` (default graceful). */
  sigterm?: 'graceful' | 'default';
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

function readPid(file: string): number | undefined {
  try {
    const pid = Number(readFileSync(file, 'utf8').trim());
    return Number.isInteger(pid) && pid > 1 ? pid : undefined;
  } catch {
    return undefined;
  }
}

function procText(pid: number, what: 'comm' | 'cmdline'): string | undefined {
  try {
    return readFileSync(`/proc/${pid}/${what}`, 'utf8').replace(/\0/g, ' ').trim();
  } catch {
    return undefined;
  }
}

function isZombie(pid: number): boolean {
  try {
    return readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
  } catch {
    return true;
  }
}

/** The live process in `pidFile`, if it is ours (its comm, and for the relay its command line, match). */
function ownedPid(pidFile: string, comm: string, cmdlineIncludes?: string): number | undefined {
  const pid = readPid(pidFile);
  if (pid === undefined || procText(pid, 'comm') !== comm || isZombie(pid)) return undefined;
  if (cmdlineIncludes !== undefined && !(procText(pid, 'cmdline') ?? '').includes(cmdlineIncludes)) return undefined;
  return pid;
}

async function stopOwned(pidFile: string, comm: string, cmdlineIncludes?: string): Promise<void> {
  const pid = ownedPid(pidFile, comm, cmdlineIncludes);
  if (pid === undefined) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + 5000;
  while (ownedPid(pidFile, comm, cmdlineIncludes) !== undefined && Date.now() < deadline)
    await new Promise((r) => setTimeout(r, 50));
  if (ownedPid(pidFile, comm, cmdlineIncludes) !== undefined) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
}

function deploy(dir: string, tag: string, setup: SupervisorSetup): Deployment {
  const processName = `p1${tag}-${randomBytes(3).toString('hex')}`.slice(0, 15);
  const heartbeatSeconds = setup.heartbeatSeconds ?? 2;
  const ipcPath = join(dir, 'supervisor.sock');
  const listenPath = join(dir, 'relay-registration.sock');
  const relayConfig = join(dir, 'relay.yaml');
  writeFileSync(
    relayConfig,
    toYaml({
      listen: { bind: '127.0.0.1:9443', public_url: 'wss://localhost:9443/supervisor' },
      registration: {
        listen_path: listenPath,
        permissions: '0600',
        allowed_ipc_path_prefixes: [`${dir}/`],
        default_lease_seconds: 30,
        max_lease_seconds: 120,
      },
    }),
  );
  const coreDumpDir = join(dir, 'cores');
  mkdirSync(coreDumpDir);
  const extra = setup.config ?? {};
  const sim = (extra.sim as Record<string, unknown> | undefined) ?? {};
  const configFile = join(dir, 'supervisor.yaml');
  writeFileSync(
    configFile,
    toYaml({
      ...extra,
      ipc: {
        enabled: true,
        target_id: 'payments-worker-a',
        path: ipcPath,
        bind_mode: setup.bindMode ?? 'create_new',
        registration: {
          enabled: true,
          relay_registration_path: listenPath,
          display_name: 'payments worker a',
          lease_seconds: Math.max(30, heartbeatSeconds * 2 + 1),
          registration_heartbeat_interval_seconds: heartbeatSeconds,
        },
      },
      sim: { lifecycle_log: true, sigterm: setup.sigterm ?? 'graceful', ...sim, process_name: processName },
    }),
  );
  const pidFile = join(dir, 'supervisor.pid');
  const logFile = join(dir, 'supervisor.log');
  const relayPid = join(dir, 'relay.pid');
  const relayLog = join(dir, 'relay.log');
  return {
    dir,
    ipcPath,
    targetId: 'payments-worker-a',
    adminPath: `${ipcPath}.admin`,
    processName,
    configFile,
    pidFile,
    logFile,
    coreDumpDir,
    heartbeatSeconds,
    relay: {
      configFile: relayConfig,
      pidFile: relayPid,
      logFile: relayLog,
      listenPath,
      pattern: `rust-supervisor-relay --config ${escapeRegExp(relayConfig)}`,
    },
    restartCommand: [
      join(SIM_BIN, 'restart-supervisor'),
      '--config',
      configFile,
      '--pid-file',
      pidFile,
      '--log',
      logFile,
      '--stop-timeout-ms',
      '3000',
    ],
    relayRestartCommand: [join(SIM_BIN, 'restart-relay'), '--config', relayConfig, '--pid-file', relayPid, '--log', relayLog],
    logCommand: ['tail', '-n', '50', logFile],
  };
}

/** The vars every shipped P1 procedure may declare, for this deployment (REMEDIATOR_VAR_<NAME> values). */
export function deploymentVars(d: Deployment): Record<string, string> {
  return {
    ipc_path: d.ipcPath,
    target_id: d.targetId,
    supervisor_process: d.processName,
    log_command: JSON.stringify(d.logCommand),
    restart_command: JSON.stringify(d.restartCommand),
    relay_process_pattern: d.relay.pattern,
    relay_restart_command: JSON.stringify(d.relayRestartCommand),
    relay_registration_path: d.relay.listenPath,
    core_dump_dir: d.coreDumpDir,
    start_marker: d.pidFile,
  };
}

// ---- the environment -------------------------------------------------------------------------------------

export interface P1StackOptions {
  /** The procedure under test: runs() lists its runs. */
  procedure: ProcedureId;
  /** The shipped procedure files to load (default: only `procedure`). */
  procedures?: ProcedureId[];
  /** A short tag for names and prefixes, e.g. "1001" (≤ 6 characters). */
  tag: string;
  /** The Redis remediator uses (the caller makes sure it answers). */
  redisUrl: string;
  /** remediator's QUEUE_PREFIX (the caller removes its keys: `onStop`). */
  prefix: string;
  /** Run last by stop(), after remediator has stopped (e.g. removing the prefix's keys). */
  onStop?: () => Promise<void> | void;
  supervisor?: SupervisorSetup;
  /** More or other vars than deploymentVars() (REMEDIATOR_VAR_<NAME> values). */
  vars?(d: Deployment): Record<string, string>;
  /** The fast alert rule copy (default `for: 5s`: longer than a restart's gap, as production's `for:` is). */
  fastRules?: FastRuleOptions;
  /** Extra remediator environment. */
  env?: Record<string, string>;
  /** Extra exporter environment (e.g. IPC_TIMEOUT). */
  exporterEnv?: Record<string, string>;
  log?: (line: string) => void;
}

export interface P1Env {
  procedure: ProcedureId;
  d: Deployment;
  /** The exporter's scrape target: the alerts' `instance` label. */
  instance: string;
  exporter: ManagedProcess;
  exporterUrl: string;
  stack: Stack;
  remediator: RemediatorProcess;
  sink: WebhookSink;
  prefix: string;
  rulesDir: string;
  /** The vars given to remediator (names lower-case, as in the rule files). */
  vars: Record<string, string>;
  /** POST a fault to the supervisor's admin channel (sim/README.md: panic, crash-loop, block, stall, …). */
  fault(name: string, body?: Record<string, unknown>): Promise<void>;
  /** The live supervisor / relay process the service manager started, if any. */
  supervisorPid(): number | undefined;
  relayPid(): number | undefined;
  /** Signal the live supervisor / relay (e.g. SIGKILL: the socket file stays behind). */
  killSupervisor(signal: NodeJS.Signals): number;
  killRelay(signal: NodeJS.Signals): number;
  /** The service manager's restart (as an operator would run it); throws with the output when it fails. */
  restartSupervisor(): Promise<void>;
  restartRelay(): Promise<void>;
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
  /** Prometheus instant query → the first sample's value. */
  query(promql: string): Promise<number | undefined>;
  /** Alerts of this name Prometheus has firing for our instance. */
  firing(alertname: string): Promise<number>;
  /**
   * Waits until Prometheus sees everything healthy (process, IPC hello and state, relay process and registration
   * socket) and no P1 alert is pending or firing for our instance: a clean slate between scenarios.
   */
  waitHealthy(timeoutMs?: number): Promise<void>;
  stop(): Promise<void>;
}

const FINAL = new Set(['succeeded', 'failed', 'escalated', 'cancelled', 'skipped', 'resolved']);
const HEALTHY_SERIES = [
  'supervisor_process_up',
  'supervisor_ipc_up',
  'supervisor_ipc_state_ok',
  'supervisor_relay_process_up',
  'supervisor_relay_registration_socket_present',
];

/**
 * Starts, in order: webhook sink, relay and supervisor (through the service-manager stand-ins), the exporter,
 * Prometheus + Alertmanager, remediator (RULES_DIR = a dir holding only the chosen shipped procedure files, copied
 * unchanged; vars from the environment). Only the procedures under test are loaded, so that the side effects one
 * fault has on other alerts do not start other procedures.
 */
export async function startP1Stack(opts: P1StackOptions): Promise<P1Env> {
  const { redisUrl, prefix } = opts;
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first`);
  const log = opts.log ?? (() => {});
  const dir = mkdtempSync(join(tmpdir(), `rem-p1-${opts.tag}-`));
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

    const d = deploy(dir, opts.tag, opts.supervisor ?? {});
    const relayOwned = () => ownedPid(d.relay.pidFile, 'rust-supervisor', d.relay.configFile);
    const supervisorOwned = () => ownedPid(d.pidFile, d.processName);
    cleanups.push(async () => {
      await stopOwned(d.relay.pidFile, 'rust-supervisor', d.relay.configFile);
    });
    cleanups.push(async () => {
      await stopOwned(d.pidFile, d.processName);
    });
    const started = async (argv: string[], what: string) => {
      const r = await run(argv, 90_000);
      if (r.code !== 0) throw new Error(`${what} failed (exit ${r.code}):\n${r.output}`);
    };
    await started(d.relayRestartCommand, 'starting the relay');
    await started(d.restartCommand, 'starting the supervisor');
    log(`supervisor ${d.processName} pid ${supervisorOwned()}, relay pid ${relayOwned()}, dir ${dir}`);

    const exporterPort = await freePort();
    const exporter = spawnProcess('exporter', process.execPath, [CLI, 'exporter'], {
      env: {
        SUPERVISOR_IPC_PATH: d.ipcPath,
        SUPERVISOR_TARGET_ID: d.targetId,
        SUPERVISOR_PROCESS: d.processName,
        RELAY_PROCESS_PATTERN: d.relay.pattern,
        RELAY_REGISTRATION_PATH: d.relay.listenPath,
        EXPORTER_HOST: '127.0.0.1',
        EXPORTER_PORT: String(exporterPort),
        IPC_TIMEOUT: '800ms',
        LOG_LEVEL: 'info',
        ...opts.exporterEnv,
      },
      logFile: join(dir, 'exporter.log'),
    });
    cleanups.push(async () => void (await exporter.stop()));
    const exporterUrl = `http://127.0.0.1:${exporterPort}`;
    await waitFor(
      'the exporter to answer /healthz',
      async () => {
        if (exporter.exitInfo()) throw new Error(`the exporter exited:\n${exporter.logTail(20)}`);
        return (await fetch(`${exporterUrl}/healthz`).catch(() => undefined))?.ok ? true : undefined;
      },
      20_000,
    );

    const rulesDir = join(dir, 'rules');
    mkdirSync(rulesDir);
    const procedures = opts.procedures ?? [opts.procedure];
    for (const id of procedures) copyFileSync(join(REPO_ROOT, 'rules', PROCEDURE_FILES[id]), join(rulesDir, PROCEDURE_FILES[id]));

    const port = await freePort();
    const instance = `127.0.0.1:${exporterPort}`;
    const stack = await startStack({
      webhookUrl: `http://127.0.0.1:${port}/webhook`,
      webhookToken: TOKEN,
      scrapeTargets: [{ job: 'supervisor', target: instance }],
      ruleFiles: [join(REPO_ROOT, 'rules/prometheus/supervisor.rules.yaml')],
      fastRules: opts.fastRules ?? { for: '5s' },
    });
    cleanups.push(() => stack.stop());
    log(`exporter ${exporterUrl}, Prometheus ${stack.prometheusUrl}, Alertmanager ${stack.alertmanagerUrl}`);

    // exporter_url: the exporter beside this supervisor (P1-004 keeps its /snapshot as the runtime snapshot).
    const vars = { exporter_url: exporterUrl, ...deploymentVars(d), ...opts.vars?.(d) };
    const varEnv = Object.fromEntries(Object.entries(vars).map(([k, v]) => [`REMEDIATOR_VAR_${k.toUpperCase()}`, v]));
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
      ...varEnv,
      ...opts.env,
    });
    cleanups.push(async () => {
      await remediator.stop();
      await opts.onStop?.();
    });
    log(`remediator ${remediator.url} (rules: ${procedures.map((id) => PROCEDURE_FILES[id]).join(', ')})`);

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
    const promQuery = async (promql: string) => {
      const res = await fetch(`${stack.prometheusUrl}/api/v1/query?query=${encodeURIComponent(promql)}`, {
        signal: AbortSignal.timeout(5000),
      });
      return ((await res.json()) as { data: { result: { metric: Record<string, string>; value: [number, string] }[] } }).data
        .result;
    };
    const query = async (promql: string) => {
      const v = (await promQuery(promql))[0]?.value[1];
      return v === undefined ? undefined : Number(v);
    };
    const signalOwned = (pid: number | undefined, what: string, signal: NodeJS.Signals) => {
      if (pid === undefined) throw new Error(`no live ${what} to signal`);
      process.kill(pid, signal);
      return pid;
    };
    const env: P1Env = {
      procedure: opts.procedure,
      d,
      instance,
      exporter,
      exporterUrl,
      stack,
      remediator,
      sink,
      prefix,
      rulesDir,
      vars,
      fault: (name, body = {}) => postAdmin(d.adminPath, `/faults/${name}`, body),
      supervisorPid: supervisorOwned,
      relayPid: relayOwned,
      killSupervisor: (signal) => signalOwned(supervisorOwned(), 'supervisor', signal),
      killRelay: (signal) => signalOwned(relayOwned(), 'relay', signal),
      restartSupervisor: () => started(d.restartCommand, 'restarting the supervisor'),
      restartRelay: () => started(d.relayRestartCommand, 'restarting the relay'),
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
            `${(err as Error).message}\n${last ? `${last.state}: ${last.reason ?? ''}\n${stepSummary(last)}` : '(no record)'}` +
              `\nremediator log:\n${remediator.process.logTail(30)}`,
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
      query,
      firing: async (alertname) =>
        (await promQuery(`ALERTS{alertname="${alertname}",alertstate="firing",instance="${instance}"}`)).length,
      waitHealthy: async (timeoutMs = 30_000) => {
        await waitFor(
          'Prometheus to see the supervisor and relay healthy and no P1 alert pending or firing',
          async () => {
            for (const name of HEALTHY_SERIES) if ((await query(`${name}{instance="${instance}"}`)) !== 1) return undefined;
            const alerts = await promQuery(`ALERTS{instance="${instance}"}`);
            return alerts.length === 0 ? true : undefined;
          },
          timeoutMs,
          250,
        );
      },
      stop,
    };
    await env.waitHealthy();
    return env;
  } catch (err) {
    await stop();
    throw err;
  }
}

export function step(run: RunRecord, name: string): StepRecord {
  const s = run.steps.find((x) => x.name === name);
  if (s === undefined) throw new Error(`run ${run.id} has no step ${name} (steps: ${run.steps.map((x) => x.name).join(', ')})`);
  return s;
}

/** `name: status (reason)` per step, for failure messages and logs. */
export function stepSummary(run: RunRecord): string {
  return run.steps.map((s) => `${s.name}: ${s.status}${s.reason ? ` (${s.reason})` : ''}`).join('\n');
}
