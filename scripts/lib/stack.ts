/**
 * The real alert pipeline for tests and the demo: Alertmanager 0.25 and Prometheus 2.42 from Debian's packages,
 * on free loopback ports, in a fresh temp dir.
 *
 *   const stack = await startStack({
 *     webhookUrl: 'http://127.0.0.1:PORT/webhook', webhookToken: 't0ken',
 *     scrapeTargets: [{ job: 'supervisor', target: '127.0.0.1:9100' }],
 *     ruleFiles: ['rules/prometheus/supervisor.rules.yaml'], fastRules: true,
 *   });
 *   ... stack.prometheusUrl, stack.alertmanagerUrl ...
 *   await stack.stop();
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { parse, stringify } from 'yaml';
import { freePort } from './ports.js';
import { runCommand, spawnProcess, type ManagedProcess } from './processes.js';
import { waitFor } from './wait.js';

export const BINARIES = {
  prometheus: '/usr/bin/prometheus',
  alertmanager: '/usr/bin/prometheus-alertmanager',
  promtool: '/usr/bin/promtool',
  amtool: '/usr/bin/amtool',
} as const;

export const INSTALL_HINT = 'install with `apt-get install -y --no-install-recommends prometheus prometheus-alertmanager`';

export interface ScrapeTarget {
  job: string;
  /** host:port on loopback, e.g. 127.0.0.1:9100 */
  target: string;
  /** Extra target labels (e.g. namespace/pod to imitate Kubernetes discovery). */
  labels?: Record<string, string>;
}

export interface FastRuleOptions {
  /** Replaces every rule's `for:` (default 0s). */
  for?: string;
  /** Replaces every range window `[...]` in every expr (default 5s: five 1 s scrapes). */
  window?: string;
}

export interface StackOptions {
  webhookUrl: string;
  webhookToken: string;
  scrapeTargets: ScrapeTarget[];
  ruleFiles: string[];
  /** Load fast copies of the rule files (see fastRuleCopy) instead of the files as they are. Default false. */
  fastRules?: boolean | FastRuleOptions;
  /** Wait until every scrape target is up (default true; turn off when a target starts down on purpose). */
  waitForTargetsUp?: boolean;
  /** Bound on each readiness wait. Default 30 s. */
  timeoutMs?: number;
}

export interface Stack {
  prometheusUrl: string;
  alertmanagerUrl: string;
  /** The temp dir holding configs, data and logs (removed by stop()). */
  dir: string;
  /** The rule files Prometheus actually loaded (copies in `dir`). */
  ruleFiles: string[];
  prometheus: ManagedProcess;
  alertmanager: ManagedProcess;
  stop(): Promise<void>;
}

/** The binaries, or the error every caller should see when they are missing. */
export function assertStackBinaries(): void {
  const missing = Object.values(BINARIES).filter((b) => !existsSync(b));
  if (missing.length > 0) throw new Error(`${missing.join(', ')} not found: ${INSTALL_HINT}`);
}

/**
 * Write a copy of a rule file for fast tests: every `for:` becomes `opts.for` (default 0s) and every range
 * window in an expr becomes `opts.window` (default 5s). The production file stays the one source of truth:
 * tests exercise its expressions, only faster. Returns the copy's path.
 */
export function fastRuleCopy(src: string, destDir: string, opts: FastRuleOptions = {}): string {
  const forValue = opts.for ?? '0s';
  const window = opts.window ?? '5s';
  const doc = parse(readFileSync(src, 'utf8')) as { groups?: { rules?: { for?: string; expr?: string }[] }[] };
  if (!Array.isArray(doc?.groups)) throw new Error(`${src}: not a Prometheus rule file (no groups)`);
  for (const g of doc.groups) {
    for (const r of g.rules ?? []) {
      if (r.for !== undefined) r.for = forValue;
      if (typeof r.expr === 'string')
        r.expr = r.expr.replace(/\[\s*\d+(?:ms|s|m|h|d|w|y)(?:\s*:\s*\d*(?:ms|s|m|h|d|w|y)?)?\s*\]/g, `[${window}]`);
    }
  }
  mkdirSync(destDir, { recursive: true });
  const out = join(destDir, basename(src).replace(/\.ya?ml$/, '') + '.fast.yaml');
  writeFileSync(out, stringify(doc));
  return out;
}

async function check(what: string, command: string, args: string[]): Promise<void> {
  const r = await runCommand(command, args, { timeoutMs: 30_000 });
  if (r.code !== 0)
    throw new Error(`${what} is invalid (${command} ${args.join(' ')} exited ${r.code}):\n${r.stdout}${r.stderr}`);
}

async function getJson<T>(url: string): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(2000) });
  if (!res.ok) throw new Error(`GET ${url}: ${res.status}`);
  return (await res.json()) as T;
}

/**
 * Start Alertmanager (first), then Prometheus, and wait until alerts can flow: targets up, every rule group
 * evaluated, and Prometheus has discovered the Alertmanager. On any failure both are stopped and the error
 * carries the failing process's log tail.
 */
export async function startStack(opts: StackOptions): Promise<Stack> {
  assertStackBinaries();
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const dir = mkdtempSync(join(tmpdir(), 'stack-'));
  const started: ManagedProcess[] = [];
  const stopAll = async () => {
    for (const p of started.reverse()) await p.stop();
  };
  try {
    // ---- Alertmanager ----
    const amPort = await freePort();
    const alertmanagerUrl = `http://127.0.0.1:${amPort}`;
    const amConfig = join(dir, 'alertmanager.yml');
    writeFileSync(
      amConfig,
      stringify({
        route: {
          receiver: 'remediator',
          group_by: ['alertname', 'instance'],
          group_wait: '0s',
          group_interval: '1s',
          repeat_interval: '1h',
        },
        receivers: [
          {
            name: 'remediator',
            webhook_configs: [
              {
                url: opts.webhookUrl,
                send_resolved: true,
                http_config: { authorization: { type: 'Bearer', credentials: opts.webhookToken } },
              },
            ],
          },
        ],
      }),
    );
    await check('generated alertmanager.yml', BINARIES.amtool, ['check-config', amConfig]);
    const am = spawnProcess(
      'alertmanager',
      BINARIES.alertmanager,
      [
        `--config.file=${amConfig}`,
        `--storage.path=${join(dir, 'am')}`,
        `--web.listen-address=127.0.0.1:${amPort}`,
        `--web.external-url=${alertmanagerUrl}/`,
        '--cluster.listen-address=',
      ],
      { logFile: join(dir, 'alertmanager.log') },
    );
    started.push(am);
    // Ready, and it is ours (a port taken by another instance would answer /-/ready too).
    await waitFor(
      `Alertmanager at ${alertmanagerUrl}`,
      async () => {
        const s = await getJson<{ config?: { original?: string } }>(`${alertmanagerUrl}/api/v2/status`);
        return s.config?.original?.includes(opts.webhookUrl) === true;
      },
      { processes: [am], timeoutMs },
    );

    // ---- Prometheus ----
    const rulesDir = join(dir, 'rules');
    mkdirSync(rulesDir, { recursive: true });
    const fast = opts.fastRules === undefined || opts.fastRules === false ? null : opts.fastRules === true ? {} : opts.fastRules;
    const ruleFiles = opts.ruleFiles.map((f, i) => {
      const src = resolve(f);
      if (fast !== null) return fastRuleCopy(src, join(rulesDir, String(i)), fast);
      const out = join(rulesDir, `${i}-${basename(src)}`);
      writeFileSync(out, readFileSync(src));
      return out;
    });
    const jobs = new Map<string, { targets: string[]; labels?: Record<string, string> }[]>();
    for (const t of opts.scrapeTargets) {
      const list = jobs.get(t.job) ?? [];
      list.push({ targets: [t.target], ...(t.labels !== undefined ? { labels: t.labels } : {}) });
      jobs.set(t.job, list);
    }
    const promPort = await freePort();
    const prometheusUrl = `http://127.0.0.1:${promPort}`;
    const promConfig = join(dir, 'prometheus.yml');
    writeFileSync(
      promConfig,
      stringify({
        global: { scrape_interval: '1s', evaluation_interval: '1s' },
        rule_files: ruleFiles,
        alerting: { alertmanagers: [{ static_configs: [{ targets: [`127.0.0.1:${amPort}`] }] }] },
        scrape_configs: [...jobs].map(([job, static_configs]) => ({ job_name: job, static_configs })),
      }),
    );
    await check('generated prometheus.yml (and its rule files)', BINARIES.promtool, ['check', 'config', promConfig]);
    const prom = spawnProcess(
      'prometheus',
      BINARIES.prometheus,
      [
        `--config.file=${promConfig}`,
        `--storage.tsdb.path=${join(dir, 'prom')}`,
        `--web.listen-address=127.0.0.1:${promPort}`,
        `--web.external-url=${prometheusUrl}/`,
        '--rules.alert.resend-delay=1s',
        '--web.enable-lifecycle',
      ],
      { logFile: join(dir, 'prometheus.log') },
    );
    started.push(prom);
    const wait = { processes: [am, prom], timeoutMs };
    await waitFor(
      `Prometheus at ${prometheusUrl}`,
      async () => {
        const c = await getJson<{ data: { yaml: string } }>(`${prometheusUrl}/api/v1/status/config`);
        // Our own Prometheus (not another test's on a reused port): its config names our Alertmanager's port,
        // which is there with or without rule files.
        return c.data.yaml.includes(`127.0.0.1:${amPort}`);
      },
      wait,
    );
    if (opts.waitForTargetsUp !== false && opts.scrapeTargets.length > 0) {
      await waitFor(
        'every scrape target up',
        async () => {
          const t = await getJson<{ data: { activeTargets: { labels: Record<string, string>; health: string }[] } }>(
            `${prometheusUrl}/api/v1/targets?state=active`,
          );
          return opts.scrapeTargets.every((s) =>
            t.data.activeTargets.some((a) => a.labels.job === s.job && a.labels.instance === s.target && a.health === 'up'),
          );
        },
        wait,
      );
    }
    if (ruleFiles.length > 0) {
      await waitFor(
        'every rule group evaluated',
        async () => {
          const r = await getJson<{ data: { groups: { lastEvaluation: string }[] } }>(`${prometheusUrl}/api/v1/rules`);
          return r.data.groups.length > 0 && r.data.groups.every((g) => !g.lastEvaluation.startsWith('0001-'));
        },
        wait,
      );
    }
    await waitFor(
      'Prometheus to discover Alertmanager',
      async () => {
        const a = await getJson<{ data: { activeAlertmanagers: { url: string }[] } }>(`${prometheusUrl}/api/v1/alertmanagers`);
        return a.data.activeAlertmanagers.some((x) => x.url.startsWith(`${alertmanagerUrl}/`));
      },
      wait,
    );
    let stopped = false;
    return {
      prometheusUrl,
      alertmanagerUrl,
      dir,
      ruleFiles,
      prometheus: prom,
      alertmanager: am,
      async stop() {
        if (stopped) return;
        stopped = true;
        await stopAll();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await stopAll();
    // Keep the dir (configs and logs) for a post-mortem; its path is in the error.
    throw new Error(`startStack failed (configs and logs kept in ${dir}): ${(err as Error).message}`, { cause: err });
  }
}
