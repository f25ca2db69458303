#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import type { Alert } from './alertmanager/payload.js';
import { buildInfo } from './build-info.js';
import type { ClientOptions } from './client/api.js';
import type { Output } from './client/commands.js';
import { RUN_STATES } from './engine/record.js';
import { ConfigError, loadConfig, loadExporterConfig } from './config.js';
import { formatDuration } from './duration.js';
import { createLogger } from './log.js';
import { describeRedis } from './redis-settings.js';
import { formatProblem, loadRules } from './rules/load.js';
import { matchProcedures } from './rules/match.js';
import type { Procedure } from './rules/schema.js';
import { createRender } from './template.js';
import { configureEscalationTargets, targetByKind } from './escalation/index.js';
import { TargetConfigError } from './escalation/types.js';

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
  let configured: ReadonlyMap<string, unknown> = new Map();
  try {
    configured = configureEscalationTargets(config, process.env);
  } catch (err) {
    if (!(err instanceof TargetConfigError)) throw err;
    lines.push(...err.message.split('\n'));
  }
  const warnings: string[] = [];
  for (const p of procedures) {
    for (const [i, e] of p.escalation.entries()) {
      for (const to of new Set(e.to)) {
        if (!configured.has(to))
          warnings.push(`${p.file}: escalation[${i}].to: ${to}, but ${targetByKind.get(to)?.needs ?? to} is not set`);
      }
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

/** A webhook payload, webhook alerts, `amtool alert query -o json` output or API v2 alerts; `-` reads stdin. */
async function readAlerts(file: string): Promise<Alert[]> {
  const { alertsFrom } = await import('./alertmanager/alert-input.js');
  const text = readFileSync(file === '-' ? 0 : file, 'utf8');
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new Error(`${file === '-' ? 'standard input' : file}: not JSON: ${(err as Error).message}`);
  }
  return alertsFrom(json, file === '-' ? 'standard input' : file);
}

async function plan(dir: string, file: string): Promise<number> {
  const procedures = loadOrExit(dir);
  const alerts = await readAlerts(file);
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
      process.stdout.write(`  → ${p.id}: ${p.title}  target=${safe(() => render(p.target, 'target'))}\n`);
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
  // Loaded here, not at the top: the commands that only talk to a running instance start faster without it.
  const { runService } = await import('./serve-main.js');
  try {
    await runService(config, procedures, log, roles);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    process.stderr.write(`${err.message}\n`);
    process.exit(2);
  }
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
  const { startExporter } = await import('./exporter/exporter.js');
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

const io: Output = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

/** Options every command that talks to a running instance takes. */
function remoteOptions(cmd: Command): Command {
  return cmd
    .option('--url <url>', 'the running remediator (default $REMEDIATOR_URL or http://127.0.0.1:9095)')
    .option(
      '--token-file <file>',
      'read the token from this file (default $REMEDIATOR_TOKEN_FILE; else $REMEDIATOR_TOKEN or $WEBHOOK_TOKEN)',
    )
    .option('--as <name>', 'who you are, recorded with what you do (default $USER@host)');
}

/**
 * The commands that talk to a running instance, and their client: loaded when one of them runs, so a `serve`,
 * `receiver` or `worker` process never loads them (nor the offline commands' renderers below).
 */
const remote = () => import('./client/commands.js');
const client = async (cmd: Command) => {
  const o = cmd.optsWithGlobals<ClientOptions>();
  const { createClient } = await import('./client/api.js');
  return createClient({
    ...(o.url ? { url: o.url } : {}),
    ...(o.tokenFile ? { tokenFile: o.tokenFile } : {}),
    ...(o.as ? { as: o.as } : {}),
  });
};

/** The command tree. Each action sets `exit` (undefined: a server that keeps running). */
function program(result: { exit?: number }): Command {
  const root = new Command('remediator')
    // Before any subcommand is added, so they inherit it: usage errors come back to main() as exceptions.
    .exitOverride()
    .description('Runs runbook procedures when Prometheus alerts fire, and has Prometheus confirm the fix.')
    .version(buildInfo().version, '-V, --version', 'print the version')
    .option('--rules <dir>', 'the procedures directory (overrides $RULES_DIR; default ./rules)')
    .showSuggestionAfterError()
    .addHelpText('after', '\nWith no command, runs `serve`. Configuration comes from the environment (see README.md).');
  const dir = (cmd: Command) => rulesDir(cmd.optsWithGlobals<{ rules?: string }>().rules);

  root
    .command('serve')
    .description('receiver and worker: the worker in this process, SERVE_RECEIVERS receiver processes beside it (the default)')
    .action(async (_o, cmd: Command) => {
      await serve(dir(cmd), { receiver: true, worker: true });
    });
  root
    .command('receiver')
    .description('only the HTTP receiver (POST /webhook, /api, the console, /metrics)')
    .action(async (_o, cmd: Command) => {
      await serve(dir(cmd), { receiver: true, worker: false });
    });
  root
    .command('worker')
    .description('only the worker that runs procedures')
    .action(async (_o, cmd: Command) => {
      await serve(dir(cmd), { receiver: false, worker: true });
    });
  root
    .command('exporter')
    .description('the Prometheus exporter for one rust-tokio-supervisor (SUPERVISOR_IPC_PATH; docs/supervisor.md)')
    .action(async () => {
      await exporter();
    });
  // Parsed by runIpcCommand itself (main() hands it the raw arguments); listed here for --help.
  root
    .command('ipc <method>')
    .description('one dashboard-ipc.v1 exchange with a supervisor, printed as JSON (remediator ipc --help)');
  root
    .command('check')
    .description('validate the rule files and the configuration; exit 1 listing every problem')
    .action((_o, cmd: Command) => {
      result.exit = check(dir(cmd));
    });
  root
    .command('plan')
    .argument(
      '<alerts.json>',
      'a webhook payload, webhook alerts, `amtool alert query -o json` output or API v2 alerts; - for stdin',
    )
    .description('show which procedure and steps an alert would run, rendered, without running them')
    .action(async (file: string, _o, cmd: Command) => {
      result.exit = await plan(dir(cmd), file);
    });
  root
    .command('docs')
    .description('print the loaded procedures as a Markdown runbook, with what really runs for each step')
    .addOption(
      new Option(
        '--format <format>',
        "runbook: per procedure, its runbook table, then what runs; markdown-table: one table of every step (the README's)",
      )
        .choices(['runbook', 'markdown-table'])
        .default('runbook'),
    )
    .action(async (o: { format: string }, cmd: Command) => {
      const procedures = loadOrExit(dir(cmd));
      const [{ renderRunbook }, { renderStepTable, renderWhatRuns }] = await Promise.all([
        import('./rules/docs.js'),
        import('./rules/what-runs.js'),
      ]);
      process.stdout.write(
        o.format === 'markdown-table' ? renderStepTable(procedures) : renderRunbook(procedures, renderWhatRuns),
      );
      result.exit = 0;
    });
  root
    .command('schema')
    .description("print the rule file's JSON Schema")
    .action(async () => {
      const { ruleFileJsonSchema } = await import('./rules/json-schema.js');
      process.stdout.write(`${JSON.stringify(ruleFileJsonSchema(), null, 2)}\n`);
      result.exit = 0;
    });

  const runs = root.command('runs').description('list, show, follow, cancel and re-run the runs of a running instance');
  remoteOptions(
    runs
      .command('list')
      .description('recent runs, newest first')
      .addOption(new Option('--state <state>', 'only runs in this state').choices([...RUN_STATES]))
      .option('--procedure <id>', 'only runs of this procedure')
      .option('--target <target>', 'only runs on this target')
      .option('--since <when>', 'only runs received since: 30m, 2h, 1d or an RFC 3339 time')
      .option('--limit <n>', 'at most this many', '20')
      .option('--json', 'print the run records as JSON'),
  ).action(async (o, cmd: Command) => {
    result.exit = await (
      await remote()
    ).listRuns(await client(cmd), o as Parameters<typeof import('./client/commands.js').listRuns>[1], io);
  });
  remoteOptions(
    runs
      .command('show')
      .argument('<id>', 'run id')
      .description("one run's timeline as text")
      .option('--json', 'print the run record as JSON'),
  ).action(async (id: string, o: { json?: boolean }, cmd: Command) => {
    result.exit = await (await remote()).showRun(await client(cmd), id, o.json, io);
  });
  remoteOptions(
    runs
      .command('tail')
      .argument('[id]', 'run id (default: the newest unfinished run, or the next one to arrive)')
      .description('follow a run live to its end; exit 0 when it ends succeeded, 1 otherwise')
      .option('--json', 'print each new state of the record as one JSON line'),
  ).action(async (id: string | undefined, o: { json?: boolean }, cmd: Command) => {
    result.exit = await (await remote()).tailRun(await client(cmd), id, o.json, io);
  });
  remoteOptions(
    runs
      .command('cancel')
      .argument('<id>', 'run id')
      .description('cancel a queued run (it never starts) or a running one (it stops after its current step)')
      .option('--reason <text>', 'why (recorded with your name)'),
  ).action(async (id: string, o: { reason?: string }, cmd: Command) => {
    result.exit = await (await remote()).cancel(await client(cmd), id, o.reason, io);
  });
  remoteOptions(
    runs
      .command('retry')
      .argument('<id>', 'run id of a finished run')
      .description("re-run the run's incident: a new run linked to it, subject to the target's lease and the budget")
      .option('--reason <text>', 'why (recorded with your name)'),
  ).action(async (id: string, o: { reason?: string }, cmd: Command) => {
    result.exit = await (await remote()).retry(await client(cmd), id, o.reason, io);
  });
  remoteOptions(
    runs
      .command('ack')
      .argument('<id>', 'run id of an escalated run')
      .description("acknowledge the run's escalation: its RemediationEscalated alert is resolved in Alertmanager")
      .option('--reason <text>', 'why (recorded with your name)'),
  ).action(async (id: string, o: { reason?: string }, cmd: Command) => {
    result.exit = await (await remote()).acknowledge(await client(cmd), id, o.reason, io);
  });
  remoteOptions(
    root
      .command('pause')
      .description('pause all automatic remediation (the kill switch): runs are recorded with their plan, nothing executes')
      .option('--reason <text>', 'why (recorded with your name)', 'paused from the CLI'),
  ).action(async (o: { reason: string }, cmd: Command) => {
    result.exit = await (await remote()).pause(await client(cmd), o.reason, io);
  });
  remoteOptions(
    root.command('resume').description('resume automatic remediation').option('--reason <text>', 'why (recorded with your name)'),
  ).action(async (o: { reason?: string }, cmd: Command) => {
    result.exit = await (await remote()).resume(await client(cmd), o.reason, io);
  });
  return root;
}

async function main(argv: string[]): Promise<number | undefined> {
  // `ipc` has options of its own; everything after it is its.
  if (argv[0] === 'ipc') {
    const { runIpcCommand } = await import('./ipc-command.js');
    return runIpcCommand(argv.slice(1), {
      env: process.env,
      stdout: (line) => process.stdout.write(`${line}\n`),
      stderr: (line) => process.stderr.write(`${line}\n`),
    });
  }
  const result: { exit?: number } = {};
  const root = program(result);
  const known = new Set(root.commands.map((c) => c.name()));
  // No command (or only --rules DIR): serve, as `npm start` always did.
  const first = argv.findIndex((a, i) => !a.startsWith('-') && argv[i - 1] !== '--rules');
  const args = first === -1 && !argv.some((a) => ['-h', '--help', '-V', '--version'].includes(a)) ? [...argv, 'serve'] : argv;
  if (first !== -1 && !known.has(argv[first]!)) {
    process.stderr.write(`unknown command "${argv[first]}"\n\n${root.helpInformation()}`);
    return 2;
  }
  try {
    await root.parseAsync(args, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end here with code 0; usage errors (already printed) are exit 2, as before.
      return err.exitCode === 0 ? 0 : 2;
    }
    throw err;
  }
  return result.exit;
}

// `remediator runs list | head`: the reader closed the pipe; stop quietly, as other Unix tools do.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(0);
  throw err;
});

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== undefined) process.exitCode = code;
  },
  (err: Error) => {
    process.stderr.write(`remediator: ${err.message}\n`);
    process.exit(1);
  },
);
