/**
 * The life of a `serve`, `receiver` or `worker` process: start, SIGTERM/SIGINT (drain, then exit 0), SIGHUP (re-read
 * the rules). `serve` is several processes unless SERVE_RECEIVERS=0: itself as the worker, and receivers it forks
 * (serve-processes.ts).
 */
import cluster from 'node:cluster';
import { authSettings, type Config } from './config.js';
import type { Logger } from './log.js';
import { aggregateMetrics, type ProcessMetrics } from './metrics-aggregate.js';
import type { Procedure } from './rules/schema.js';
import { forkReceivers, parentChannel } from './serve-processes.js';
import { SHUTDOWN_MARGIN_MS, startService, type Running } from './serve.js';

export interface Roles {
  receiver: boolean;
  worker: boolean;
}

/** SIGTERM/SIGINT stop once (exit 0 when the stop went through, else 1); SIGHUP reloads while not stopping. */
function onSignals(log: Logger, stop: () => Promise<void>, reload: () => void): (code: number) => void {
  let stopping = false;
  const shutdown = (why: string, code = 0) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal: why }, 'shutting down');
    stop().then(
      () => process.exit(code),
      () => process.exit(1),
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  // As Prometheus and Alertmanager: SIGHUP re-reads the rule files; a bad set is refused and the old one kept.
  process.on('SIGHUP', () => {
    if (!stopping) reload();
  });
  return (code: number) => shutdown('receiver lost', code);
}

/** Starts the process for `roles` (a ConfigError from start-up is the caller's to report). */
export async function runService(config: Config, procedures: Procedure[], log: Logger, roles: Roles): Promise<void> {
  if (cluster.isWorker) return receiverProcess(config, procedures, log);
  if (roles.receiver && roles.worker && config.SERVE_RECEIVERS > 0) return splitServe(config, procedures, log);
  const running = await startService(config, procedures, log, roles);
  onSignals(
    log,
    () => running.stop(),
    () => running.reload(),
  );
}

/** The serve process: its worker, and SERVE_RECEIVERS receivers kept up beside it. */
async function splitServe(config: Config, procedures: Procedure[], log: Logger): Promise<void> {
  // serve's own refusals (no token) before anything is forked: exit 2, as with one process.
  authSettings(config, { receiver: true });
  let running: Running | undefined = undefined; // set once started; asked for before that
  // A receiver's POST /-/reload while the worker starts: the rules it read may predate it, so it reloads once up.
  let reloadWhenStarted = false;
  const receivers = forkReceivers({
    count: config.SERVE_RECEIVERS,
    log,
    ownMetrics: async () => (running ? await running.metrics.registry.getMetricsAsJSON() : []),
    reloadOwn: () => (running ? running.reload() : (reloadWhenStarted = true)),
  });
  const worker = await startService(config, procedures, log, { receiver: false, worker: true }, { listen: false });
  running = worker;
  if (reloadWhenStarted) worker.reload();
  const stop = onSignals(
    log,
    async () => {
      const deadline = Date.now() + config.SHUTDOWN_TIMEOUT + SHUTDOWN_MARGIN_MS;
      // Intake stops first (the receivers close PORT at once), while the worker finishes or hands back its runs.
      await Promise.all([receivers.stop(deadline), worker.stop()]);
    },
    () => {
      worker.reload();
      receivers.reload();
    },
  );
  void receivers.failed.then((code) => stop(code));
}

/** A receiver forked by a serve: PORT (shared), its metrics joined with the other processes', reloads passed on. */
async function receiverProcess(config: Config, procedures: Procedure[], log: Logger): Promise<void> {
  let running: Running | undefined = undefined; // set once started; asked for before that
  const own = async (): Promise<ProcessMetrics> => (running ? await running.metrics.registry.getMetricsAsJSON() : []);
  const parent = parentChannel({
    // The serve sends reloads only once this process said it listens (serve-processes.ts).
    reload: () => running?.reload(),
    ownMetrics: own,
  });
  const receiver = await startService(
    config,
    procedures,
    log,
    { receiver: true, worker: false },
    {
      resendEscalations: false,
      metricsText: async () => aggregateMetrics([await own(), ...(await parent.otherMetrics())]),
      afterRequestedReload: () => parent.reloaded(),
    },
  );
  running = receiver;
  // The parent stops it with SIGTERM; if the parent is gone, node:cluster ends this process. SIGHUP is the parent's
  // to pass on (it reloads every process once): a SIGHUP to the whole group (a closed terminal, `kill -HUP -pgid`)
  // must not reload a receiver twice, nor end it (the default action), so here it is caught and left alone.
  onSignals(
    log,
    () => receiver.stop(),
    () => undefined,
  );
  parent.listening();
}
