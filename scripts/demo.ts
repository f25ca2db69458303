/**
 * `npm run demo`: the four P1 procedures healing hands-off, live, on the simulator (sim/).
 *
 * Starts Redis (only when none answers on 127.0.0.1:6379: then redis-server on a free port) and the stack the P1
 * end-to-end tests run on (scripts/lib/p1-stack.ts): the simulated supervisor host and relay under their
 * service-manager stand-ins, a real `remediator exporter` process, Prometheus + Alertmanager (Debian's packages;
 * the fast copy of rules/prometheus/supervisor.rules.yaml) and remediator (dist/cli.js with the shipped
 * rules/P1-00*.yaml, only their vars set for this deployment). Then it injects each fault in turn through the
 * simulator's admin channel and prints a timeline per procedure: fault → alert (Prometheus, then Alertmanager)
 * → run → each step with what it did and saw → verified, with the time to recovery next to the runbook's
 * estimate. Everything it started is stopped on the way out, also on Ctrl-C. Nothing here comes from test/.
 *
 *   npm run demo                 # builds first (the remediator runs from dist/)
 *   DEMO_VERBOSE=1 npm run demo  # also where each component listens
 */
import { randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import type { RunRecord, StepRecord } from '../src/engine/record.js';
import { ephemeralRedisArgs, REDIS_SERVER } from './lib/redis-server.js';
import { formatEstimate } from '../src/rules/docs.js';
import { startP1Stack, type P1Env, type ProcedureId } from './lib/p1-stack.js';
import { freePort } from './lib/ports.js';
import { spawnProcess, type ManagedProcess } from './lib/processes.js';
import { assertStackBinaries, INSTALL_HINT } from './lib/stack.js';
import { waitFor } from './lib/wait.js';

const DEFAULT_REDIS = 'redis://127.0.0.1:6379';

const color = process.stdout.isTTY ? (code: number) => (s: string) => `\x1b[${code}m${s}\x1b[0m` : () => (s: string) => s;
const bold = color(1);
const dim = color(2);
const green = color(32);
const red = color(31);
const yellow = color(33);

const say = (line = '') => process.stdout.write(`${line}\n`);
const verbose = process.env.DEMO_VERBOSE !== undefined && process.env.DEMO_VERBOSE !== '0';

// ---- what it started, stopped in reverse order --------------------------------------------------------------

const cleanups: { what: string; fn: () => Promise<void> | void }[] = [];
let cleaning: Promise<void> | undefined;
function cleanup(): Promise<void> {
  cleaning ??= (async () => {
    for (const c of cleanups.splice(0).reverse()) {
      try {
        await c.fn();
        if (verbose) say(dim(`  stopped ${c.what}`));
      } catch (err) {
        say(red(`  could not stop ${c.what}: ${(err as Error).message}`));
      }
    }
  })();
  return cleaning;
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    say(`\n${yellow(`${signal}: stopping everything the demo started…`)}`);
    void cleanup().then(() => process.exit(130));
  });
}

// ---- Redis ------------------------------------------------------------------------------------------------

async function redisAnswers(url: string): Promise<boolean> {
  const redis = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    connectTimeout: 1000,
    retryStrategy: () => null,
  });
  redis.on('error', () => {});
  try {
    await redis.connect();
    return (await redis.ping()) === 'PONG';
  } catch {
    return false;
  } finally {
    redis.disconnect();
  }
}

async function ensureRedis(): Promise<string> {
  if (await redisAnswers(DEFAULT_REDIS)) {
    say(
      `${dim('redis')}        using the one answering on 127.0.0.1:6379 (the demo's keys get their own prefix and are removed)`,
    );
    return DEFAULT_REDIS;
  }
  if (!existsSync(REDIS_SERVER)) {
    throw new Error(
      `no Redis answers on 127.0.0.1:6379 and ${REDIS_SERVER} is missing: apt-get install -y --no-install-recommends redis-server`,
    );
  }
  const port = await freePort();
  const proc: ManagedProcess = spawnProcess('redis-server', REDIS_SERVER, ephemeralRedisArgs(port));
  cleanups.push({ what: `redis-server (pid ${proc.pid})`, fn: async () => void (await proc.stop()) });
  const url = `redis://127.0.0.1:${port}`;
  await waitFor(
    `redis-server on port ${port}`,
    async () => {
      if (proc.exitInfo() !== null) throw new Error(`redis-server exited: ${proc.logTail(10)}`);
      return (await redisAnswers(url)) ? true : undefined;
    },
    10_000,
    100,
  );
  say(`${dim('redis')}        none on 127.0.0.1:6379: started redis-server on 127.0.0.1:${port} (pid ${proc.pid})`);
  return url;
}

// ---- the timeline -----------------------------------------------------------------------------------------

interface Scenario {
  procedure: ProcedureId;
  title: string;
  alertname: string;
  fault: string;
  inject(env: P1Env): Promise<void>;
  /** Which run belongs to this fault (beyond starting after it). */
  matches?(run: RunRecord): boolean;
}

// Faults go through the simulator's admin channel (sim/README.md) or are done to the processes themselves.
const SCENARIOS: Scenario[] = [
  {
    procedure: 'P1-001',
    title: 'Supervisor Process Crash',
    alertname: 'SupervisorDown',
    fault: "the supervisor panics in main (fault panic): Rust's panic message, socket removed, exit 101, no core",
    inject: (env) => env.fault('panic', { message: 'demo: invariant violated' }),
  },
  {
    procedure: 'P1-002',
    title: 'Child Task Crash Loop',
    alertname: 'ChildCrashLoop',
    fault: 'ledger_sync panics 200 ms after each start (fault crash-loop) until its restart limit is used up',
    inject: (env) => env.fault('crash-loop', { child: 'ledger_sync', panic_after_ms: 200 }),
    matches: (run) => run.alert.labels.child_id === 'ledger_sync',
  },
  {
    procedure: 'P1-004',
    title: 'Runtime Starvation',
    alertname: 'RuntimeStarvation',
    fault: 'report_export (non-critical) hogs the runtime (fault hog): state misses its 2 s, hello answers',
    inject: (env) => env.fault('hog', { child: 'report_export', ms: 2500 }),
  },
  {
    procedure: 'P1-003',
    title: 'Dashboard IPC Disconnected',
    alertname: 'DashboardIPCDisconnected',
    fault: 'the relay is killed (SIGTERM); nothing restarts it',
    inject: async (env) => void env.killRelay('SIGTERM'),
  },
];

function observedText(s: StepRecord): string {
  const oneLine = (v: unknown) => String(v).replace(/\s+/g, ' ').trim();
  const short = (v: unknown) => {
    const t = typeof v === 'number' && !Number.isInteger(v) ? v.toFixed(2) : oneLine(v);
    return t.length > 60 ? `${t.slice(0, 60)}…` : t;
  };
  // Three sources: an earlier step's result (step, field), the supervisor's IPC answer (method, field), Prometheus.
  const fromSteps = s.observed.filter((o) => 'step' in o.labels && 'field' in o.labels);
  const fromIpc = s.observed.filter((o) => 'method' in o.labels && 'field' in o.labels);
  const fromProm = s.observed.filter((o) => !fromSteps.includes(o) && !fromIpc.includes(o));
  const parts: string[] = [];
  if (fromProm.length > 0) {
    const obs = fromProm.slice(-3).map((o) => {
      const labels = Object.entries(o.labels)
        .filter(([k]) => !['instance', 'job', '__name__'].includes(k))
        .map(([k, v]) => `${k}="${v}"`)
        .join(',');
      return `${labels ? `{${labels}} ` : ''}${short(o.value)} at ${o.at.slice(11, 23)}`;
    });
    parts.push(`Prometheus: ${obs.join('; ')}`);
  }
  if (fromIpc.length > 0) {
    const method = fromIpc[0]!.labels.method;
    parts.push(`IPC ${method}: ${fromIpc.map((o) => `${o.labels.field} = ${short(o.value)}`).join('; ')}`);
  }
  for (const o of fromSteps.slice(-1)) parts.push(`checked ${o.labels.field}: ${short(o.value)}`);
  return parts.join(' · ');
}

function resultText(s: StepRecord): string {
  const r = s.result;
  if (r === undefined) return '';
  if (r.httpStatus !== undefined) return `HTTP ${r.httpStatus} ${JSON.stringify(r.body ?? '').slice(0, 80)}`;
  const last = (r.output ?? '').trim().split('\n').at(-1) ?? '';
  return `${r.exitCode !== undefined ? `exit ${r.exitCode}` : r.status}${last ? `: ${last.length > 90 ? `${last.slice(0, 90)}…` : last}` : ''}`;
}

async function playScenario(
  env: P1Env,
  sc: Scenario,
): Promise<{ procedure: string; seconds?: number; estimate: string; state: string }> {
  say();
  say(bold(`━━ ${sc.procedure}: ${sc.title} ━━`));
  const t0 = Date.now();
  const at = (t = Date.now()) => dim(`+${((t - t0) / 1000).toFixed(1).padStart(5)}s`);
  await sc.inject(env);
  say(`${at()}  fault     ${sc.fault}`);

  let promAlert = false;
  let amAlert = false;
  let run: RunRecord | undefined;
  const printed = new Set<string>();
  const deadline = t0 + 180_000;
  while (Date.now() < deadline) {
    if (!promAlert) {
      const res = await fetch(`${env.stack.prometheusUrl}/api/v1/alerts`).catch(() => undefined);
      const alerts = res?.ok
        ? ((await res.json()) as { data: { alerts: { labels: Record<string, string>; state: string; activeAt: string }[] } }).data
            .alerts
        : [];
      const firing = alerts.find((a) => a.labels.alertname === sc.alertname && a.state === 'firing');
      if (firing !== undefined) {
        promAlert = true;
        const which =
          firing.labels.child_id !== undefined ? `child_id=${firing.labels.child_id}` : `instance=${firing.labels.instance}`;
        const since = ((Date.parse(firing.activeAt) - t0) / 1000).toFixed(1);
        say(`${at()}  alert     ${sc.alertname} firing in Prometheus (${which}; condition true since +${since}s, then \`for\`)`);
      }
    }
    if (!amAlert) {
      const res = await fetch(
        `${env.stack.alertmanagerUrl}/api/v2/alerts?filter=${encodeURIComponent(`alertname="${sc.alertname}"`)}`,
      ).catch(() => undefined);
      const alerts = res?.ok ? ((await res.json()) as { startsAt: string; updatedAt: string }[]) : [];
      const got = alerts.find((a) => Date.parse(a.startsAt) >= t0 - 1000);
      if (got !== undefined) {
        amAlert = true;
        say(`${at()}  alert     ${sc.alertname} at Alertmanager → webhook (Bearer token) to remediator`);
      }
    }
    if (run === undefined) {
      const runs = await env.runs(sc.procedure).catch(() => [] as RunRecord[]);
      run = runs.find((r) => Date.parse(r.alert.startsAt) >= t0 - 1000 && (sc.matches?.(r) ?? true));
      if (run !== undefined) {
        say(`${at(Date.parse(run.trigger.receivedAt))}  webhook   received by remediator, queued as ${run.id}`);
        say(
          `${at(Date.parse(run.startedAt ?? run.trigger.receivedAt))}  run       ${sc.procedure} started on target ${run.target}`,
        );
      }
    } else {
      run = await env.run(run.id);
      for (const s of run.steps) {
        if (s.status === 'unknown' && s.endedAt === undefined) continue; // still running
        if (printed.has(s.name)) continue;
        printed.add(s.name);
        const status =
          s.status === 'passed'
            ? green('passed ')
            : s.status === 'skipped'
              ? dim('skipped')
              : s.status === 'failed'
                ? yellow('failed ')
                : red(s.status);
        const dur = s.durationMs !== undefined ? `${(s.durationMs / 1000).toFixed(1)} s` : '';
        const est = s.estimate !== undefined ? ` / est. ${formatEstimate(s.estimate)}` : '';
        say(`${at(s.endedAt ? Date.parse(s.endedAt) : undefined)}  step      ${status} ${bold(s.name)} ${dim(`(${dur}${est})`)}`);
        const details = [
          s.action?.description ? `did: ${s.action.description}` : '',
          resultText(s),
          observedText(s),
          s.status !== 'passed' && s.reason ? `why: ${s.reason}` : '',
        ].filter(Boolean);
        for (const d of details) say(`                   ${dim('·')} ${d.length > 150 ? `${d.slice(0, 150)}…` : d}`);
      }
      if (
        ['succeeded', 'failed', 'escalated', 'cancelled', 'skipped', 'resolved'].includes(run.state) &&
        run.steps.every((s) => printed.has(s.name))
      )
        break;
    }
    await sleep(150);
  }
  const estimate = run?.sla.estimateMs !== undefined ? formatEstimate(run.sla.estimateMs) : 'n/a';
  if (run === undefined || run.endedAt === undefined) {
    say(red(`  no finished run within 3 minutes (alert in Prometheus: ${promAlert}, at Alertmanager: ${amAlert})`));
    return { procedure: sc.procedure, estimate, state: run?.state ?? 'no run' };
  }
  const seconds = (Date.parse(run.endedAt) - t0) / 1000;
  const verdict = run.state === 'succeeded' ? green('verified') : red(run.state);
  say(`${at(Date.parse(run.endedAt))}  ${verdict}  ${run.reason ?? ''}`);
  say(
    bold(
      `   ${sc.procedure}: fault → ${run.state === 'succeeded' ? 'verified recovery' : run.state} ${seconds.toFixed(1)} s (runbook estimate ${estimate})`,
    ),
  );
  for (const e of run.escalations) say(yellow(`   escalated to ${e.to}: ${e.message} (${e.status})`));
  return { procedure: sc.procedure, seconds, estimate, state: run.state };
}

/** Between scenarios: the supervisor and relay healthy, and no P1 alert pending or firing any more. */
async function settle(env: P1Env): Promise<void> {
  await env.waitHealthy(60_000);
}

/** Deletes the demo's keys (BullMQ's and remediator's share the `{prefix}` tag). */
async function removeKeys(redisUrl: string, prefix: string): Promise<void> {
  const redis = new Redis(redisUrl);
  try {
    let cursor = '0';
    do {
      const [next, keys] = await redis.scan(cursor, 'MATCH', `{${prefix}}*`, 'COUNT', 1000);
      cursor = next;
      if (keys.length > 0) await redis.del(...keys);
    } while (cursor !== '0');
  } finally {
    redis.disconnect();
  }
}

async function main(): Promise<number> {
  say(bold(`remediator demo: ${SCENARIOS.length} P1 faults on the simulator, nobody at the keyboard`));
  try {
    assertStackBinaries();
  } catch (err) {
    say(red(`Prometheus/Alertmanager missing: ${(err as Error).message}`));
    say(`(${INSTALL_HINT})`);
    return 1;
  }
  const redisUrl = await ensureRedis();
  say(dim('starting the simulated supervisor and relay, the exporter, Prometheus, Alertmanager and remediator…'));
  const prefix = `demo-${randomUUID().slice(0, 8)}`;
  const env = await startP1Stack({
    procedure: 'P1-001',
    procedures: SCENARIOS.map((sc) => sc.procedure),
    tag: 'demo',
    redisUrl,
    prefix,
    onStop: () => removeKeys(redisUrl, prefix),
    // `for: 3s`: a restarted supervisor shows a disconnected link for a moment while its relay boots; that
    // must not page P1-003 (production waits 30s).
    fastRules: { for: '3s' },
    supervisor: {
      config: {
        policy: { child_restart_limit: 6 },
        children: [
          { name: 'payment_loop' },
          { name: 'ledger_sync', criticality: 'optional' },
          { name: 'report_export', criticality: 'optional' },
        ],
      },
    },
    log: verbose ? (line) => say(dim(`  ${line}`)) : undefined,
  });
  cleanups.push({
    what: 'supervisor, relay, exporter, Prometheus, Alertmanager, remediator, webhook sink, temp dirs, Redis keys',
    fn: () => env.stop(),
  });
  say(
    `${dim('supervisor')}   ${env.d.processName} (pid ${env.supervisorPid()}), IPC ${env.d.ipcPath}, relay pid ${env.relayPid()}\n` +
      `${dim('exporter')}     ${env.exporterUrl}   ${dim('prometheus')} ${env.stack.prometheusUrl}   ${dim('alertmanager')} ${env.stack.alertmanagerUrl}\n` +
      `${dim('remediator')}   ${env.remediator.url} (rules/${SCENARIOS.map((sc) => sc.procedure).join(', ')} as shipped; vars from REMEDIATOR_VAR_*)`,
  );

  const results = [];
  for (const sc of SCENARIOS) {
    const last = results.at(-1);
    if (last !== undefined && last.state !== 'succeeded') {
      // An escalated fault stays until a human acts: do what the on-call would, then go on.
      say(yellow(`   (${last.procedure} not healed: restarting the relay and the supervisor through the service manager)`));
      await env.restartRelay();
      await env.restartSupervisor();
    }
    await settle(env);
    results.push(await playScenario(env, sc));
  }
  say();
  say(bold('Time to verified recovery, measured, next to the runbook'));
  for (const r of results) {
    say(
      `  ${r.procedure}: ${r.seconds !== undefined ? `${r.seconds.toFixed(1).padStart(5)} s` : '    –  '}  (runbook estimate ${r.estimate}, SLA 15min)  ${r.state === 'succeeded' ? green(r.state) : red(r.state)}`,
    );
  }
  return results.every((r) => r.state === 'succeeded') ? 0 : 1;
}

main()
  .then(async (code) => {
    say(dim('\ncleaning up…'));
    await cleanup();
    process.exit(code);
  })
  .catch(async (err: unknown) => {
    say(red(`demo failed: ${(err as Error).message}`));
    await cleanup();
    process.exit(1);
  });
