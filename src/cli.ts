#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { z } from 'zod';
import { Alert, WebhookPayload } from './alertmanager/payload.js';
import { ConfigError, loadConfig, loadExporterConfig } from './config.js';
import { formatDuration } from './duration.js';
import { createLogger } from './log.js';
import { describeRedis } from './redis-settings.js';
import { renderRunbook } from './rules/docs.js';
import { ruleFileJsonSchema } from './rules/json-schema.js';
import { formatProblem, loadRules } from './rules/load.js';
import { matchProcedures } from './rules/match.js';
import type { Procedure } from './rules/schema.js';
import { createRender } from './template.js';
import { startService } from './serve.js';
import { startExporter } from './exporter/exporter.js';
import { runIpcCommand } from './ipc-command.js';

const USAGE = `remediator: runs runbook procedures when Prometheus alerts fire, and has Prometheus confirm the fix.

Usage: remediator [command] [--rules DIR]

Commands:
  serve             receiver and worker in one process (the default)
  receiver          only the HTTP receiver (POST /webhook, /api, /metrics)
  worker            only the worker that runs procedures
  exporter          the Prometheus exporter for one rust-tokio-supervisor (SUPERVISOR_IPC_PATH; docs/supervisor.md)
  ipc <method>      one dashboard-ipc.v1 exchange with a supervisor, printed as JSON (remediator ipc --help)
  check             validate the rule files and the configuration; exit 1 listing every problem
  plan <alert.json> show which procedure and steps an alert would run, rendered, without running them
  docs              print the loaded procedures as a Markdown runbook
  schema            print the rule file's JSON Schema

Configuration comes from the environment (see README.md). --rules DIR overrides RULES_DIR.`;

function rulesDir(flag: string | undefined): string {
  return flag ?? process.env.RULES_DIR ?? './rules';
}

/** Loads rules for the offline commands; prints every problem and exits 1 when there is one. */
function loadOrExit(dir: string): Procedure[] {
  const { procedures, problems } = loadRules(dir);
  if (problems.length > 0) {
    for (const p of problems) process.stderr.write(`${formatProblem(p)}\n`);
    process.stderr.write(`${problems.length} problem${problems.length === 1 ? '' : 's'} in ${dir}\n`);
    process.exit(1);
  }
  return procedures;
}

function check(dir: string): number {
  const { procedures, problems } = loadRules(dir);
  const lines = problems.map(formatProblem);
  let config: ReturnType<typeof loadConfig> | undefined;
  try {
    config = loadConfig();
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    lines.push(err.message);
  }
  const warnings: string[] = [];
  for (const p of procedures) {
    for (const [i, e] of p.escalation.entries()) {
      if (e.to.includes('alertmanager') && !config?.ALERTMANAGER_URL)
        warnings.push(`${p.file}: escalation[${i}].to: alertmanager, but ALERTMANAGER_URL is not set`);
      if (e.to.includes('webhook') && !config?.ESCALATION_WEBHOOK_URL)
        warnings.push(`${p.file}: escalation[${i}].to: webhook, but ESCALATION_WEBHOOK_URL is not set`);
    }
  }
  for (const w of warnings) process.stderr.write(`warning: ${w}\n`);
  if (lines.length > 0) {
    for (const l of lines) process.stderr.write(`${l}\n`);
    process.stderr.write(`${lines.length} problem${lines.length === 1 ? '' : 's'}\n`);
    return 1;
  }
  process.stdout.write(
    `ok: ${procedures.length} procedure${procedures.length === 1 ? '' : 's'} (${procedures.map((p) => p.id).join(', ')}) in ${dir}; configuration valid (redis: ${describeRedis(config!.redis)})\n`,
  );
  return 0;
}

/** Accepts a webhook payload, one alert, or an array of alerts (as `amtool`/the API print them). */
function readAlerts(file: string): Alert[] {
  const json: unknown = JSON.parse(readFileSync(file, 'utf8'));
  const asPayload = WebhookPayload.safeParse(json);
  if (asPayload.success) return asPayload.data.alerts;
  const asList = z.array(Alert).safeParse(Array.isArray(json) ? json : [json]);
  if (asList.success) return asList.data;
  throw new Error(`${file}: neither an Alertmanager webhook payload nor alerts:\n${z.prettifyError(asPayload.error)}`);
}

function plan(dir: string, file: string): number {
  const procedures = loadOrExit(dir);
  const alerts = readAlerts(file);
  for (const alert of alerts) {
    const name = alert.labels.alertname;
    const matched = matchProcedures(procedures, alert.labels);
    process.stdout.write(`alert ${name} ${JSON.stringify(alert.labels)} (${alert.status})\n`);
    if (matched.length === 0) process.stdout.write('  no procedure matches: it would be ignored\n');
    for (const p of matched) {
      const render = createRender({ labels: alert.labels, annotations: alert.annotations, vars: p.vars, env: process.env });
      const safe = (f: () => string) => {
        try {
          return f();
        } catch (err) {
          return `!! ${(err as Error).message} (the step would fail without running)`;
        }
      };
      process.stdout.write(`  → ${p.id}: ${p.title}  target=${safe(() => render(p.target, 'text'))}\n`);
      if (alert.status === 'resolved')
        process.stdout.write('    resolved: a run of this incident still waiting would be cancelled\n');
      p.steps.forEach((s, i) => {
        process.stdout.write(`    ${i + 1}. ${s.name}${s.estimate !== undefined ? ` (~${formatDuration(s.estimate)})` : ''}\n`);
        if (s.when) process.stdout.write(`       when:   ${safe(() => s.when!.render(render).describe())}\n`);
        if (s.action) process.stdout.write(`       action: ${safe(() => s.action!.describe(s.action!.render(render)))}\n`);
        if (s.forEach)
          process.stdout.write(
            `       for each: element of ${s.forEach.step}'s ${s.forEach.path}${s.forEach.where ? ` where ${JSON.stringify(s.forEach.where)}` : ''}\n`,
          );
        if (s.expect) process.stdout.write(`       expect: ${safe(() => s.expect!.render(render).describe())}\n`);
        process.stdout.write(`       on failure: ${s.onFailure}${s.onFailure === 'retry' ? ` (${s.retries} more)` : ''}\n`);
      });
    }
  }
  return 0;
}

async function serve(dir: string, roles: { receiver: boolean; worker: boolean }): Promise<void> {
  let config;
  try {
    config = loadConfig({ ...process.env, RULES_DIR: dir });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(2);
  }
  const log = createLogger(config.LOG_LEVEL);
  const procedures = loadOrExit(config.RULES_DIR);
  const running = await startService(config, procedures, log, roles);
  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    running.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  // As Prometheus and Alertmanager: SIGHUP re-reads the rule files; a bad set is refused and the old one kept.
  process.on('SIGHUP', () => {
    if (!stopping) running.reload();
  });
}

/** `remediator exporter`: runs until SIGTERM/SIGINT. */
async function exporter(): Promise<void> {
  let config;
  try {
    config = loadExporterConfig();
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(2);
  }
  const log = createLogger(config.LOG_LEVEL);
  const running = await startExporter(config, log);
  const shutdown = (signal: string) => {
    log.info({ signal }, 'shutting down');
    running.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}

async function main(argv: string[]): Promise<number | undefined> {
  // `ipc` has options of its own; everything after it is its.
  if (argv[0] === 'ipc') {
    return runIpcCommand(argv.slice(1), {
      env: process.env,
      stdout: (line) => process.stdout.write(`${line}\n`),
      stderr: (line) => process.stderr.write(`${line}\n`),
    });
  }
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { rules: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
  });
  const [command = 'serve', ...rest] = positionals;
  const dir = rulesDir(values.rules);
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  switch (command) {
    case 'serve':
      await serve(dir, { receiver: true, worker: true });
      return undefined;
    case 'receiver':
      await serve(dir, { receiver: true, worker: false });
      return undefined;
    case 'worker':
      await serve(dir, { receiver: false, worker: true });
      return undefined;
    case 'exporter':
      await exporter();
      return undefined;
    case 'check':
      return check(dir);
    case 'plan':
      if (rest[0] === undefined) {
        process.stderr.write('plan needs an alert file: remediator plan alert.json\n');
        return 2;
      }
      return plan(dir, rest[0]);
    case 'docs':
      process.stdout.write(renderRunbook(loadOrExit(dir)));
      return 0;
    case 'schema':
      process.stdout.write(`${JSON.stringify(ruleFileJsonSchema(), null, 2)}\n`);
      return 0;
    default:
      process.stderr.write(`unknown command "${command}"\n\n${USAGE}\n`);
      return 2;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== undefined) process.exitCode = code;
  },
  (err: Error) => {
    process.stderr.write(`remediator: ${err.message}\n`);
    process.exit(1);
  },
);
