import type { Server } from 'node:http';
import { startLauncher, stopChildren } from './actions/process-guard.js';
import { AlertmanagerClient } from './alertmanager/client.js';
import { authSettings, type Config } from './config.js';
import { configureEscalationTargets, targets } from './escalation/index.js';
import type { Logger } from './log.js';
import { createMetrics, initProcedureMetrics, type Metrics } from './metrics.js';
import { createPrometheusClient } from './prometheus/client.js';
import { checkpointReplication, connectRedis } from './queue/connection.js';
import { AutomationControl, StartPause } from './queue/control.js';
import { redisKeys } from './queue/keys.js';
import { TargetLocks } from './queue/locks.js';
import { Producer } from './queue/queue.js';
import { RecordStore } from './queue/records.js';
import { redactingRunStore } from './engine/redacted-store.js';
import { RunEntryScript } from './queue/entry.js';
import type { RunRecord } from './engine/record.js';
import { fetchAlerts } from './alertmanager/alerts.js';
import { createEscalationLifecycle } from './queue/escalation-lifecycle.js';
import { OpenEscalations } from './queue/open-escalations.js';
import type { OperationsDeps } from './receiver/operations.js';
import type { ProbeDeps } from './receiver/probes.js';
import { describeRedis } from './redis-settings.js';
import { compactStartupHeap } from './heap-compaction.js';
import { loadAxios } from './http/client.js';
import { RuleSet, type ReloadOutcome } from './rules/rule-set.js';
import type { Procedure } from './rules/schema.js';

export interface Running {
  server?: Server;
  port?: number;
  /** The live rule set; `reload()` re-reads RULES_DIR (what /-/reload and SIGHUP do). */
  rules: RuleSet;
  reload(): ReloadOutcome;
  /** This process's metrics (a multi-process serve gathers them into one /metrics). */
  metrics: Metrics;
  /** Stops intake, lets current steps finish (bounded by SHUTDOWN_TIMEOUT), closes connections. */
  stop(): Promise<void>;
}

/** Where people reach the console: REMEDIATOR_EXTERNAL_URL, else this process's own address. */
export function externalUrl(config: Config): string {
  if (config.REMEDIATOR_EXTERNAL_URL) return config.REMEDIATOR_EXTERNAL_URL.replace(/\/+$/, '');
  return `http://${config.HOST === '0.0.0.0' ? '127.0.0.1' : config.HOST}:${config.PORT}`;
}

/** How one process of a multi-process serve (serve-processes.ts) differs from a process on its own. */
export interface ServiceOptions {
  /** false: no HTTP server (the worker of a multi-process serve; its receivers serve PORT). Default true. */
  listen?: boolean;
  /** Re-send open escalations from this process (default true; a serve's receivers leave it to its worker). */
  resendEscalations?: boolean;
  /** What /metrics answers instead of this process's own metrics (a serve's receiver: every process's). */
  metricsText?: () => Promise<{ text: string; contentType: string }>;
  /** Called after POST /-/reload re-read the rules here (a serve's receiver tells the other processes). */
  afterRequestedReload?: () => void;
}

/** How much longer than SHUTDOWN_TIMEOUT a stop may take at most: handing runs back, children, connections. */
export const SHUTDOWN_MARGIN_MS = 10_000;

/** Lease TTL above BullMQ's stall recovery time, so a run resumed elsewhere still owns its target. */
function leaseTtl(config: Config): number {
  return config.LOCK_DURATION + config.STALLED_INTERVAL + 30_000;
}

/**
 * Starts the receiver and/or the worker in this process: wiring only. Both roles serve /healthz, /readyz and
 * /metrics on PORT; only the receiver takes webhooks and serves the API.
 */
export async function startService(
  config: Config,
  procedures: Procedure[],
  log: Logger,
  roles: { receiver: boolean; worker: boolean },
  options: ServiceOptions = {},
): Promise<Running> {
  // Secure defaults first: no token, no webhook (unless ALLOW_UNAUTHENTICATED, which binds loopback). Throws ConfigError.
  const auth = authSettings(config, roles);
  if (auth.warning !== undefined) log.warn({ host: auth.host }, auth.warning);
  const metrics = createMetrics(
    procedures,
    targets.map((t) => t.kind),
  );
  const keys = redisKeys(config.QUEUE_PREFIX);
  const prometheus = createPrometheusClient({ url: config.PROMETHEUS_URL, timeoutMs: config.HTTP_TIMEOUT });
  const rules = new RuleSet(config.RULES_DIR, procedures);
  rules.onReload((outcome) => {
    metrics.reloads.inc({ result: outcome.ok ? 'success' : 'failure' });
    metrics.reloadSuccessful.set(outcome.ok ? 1 : 0);
    if (outcome.ok) {
      metrics.reloadSuccessTimestamp.set(Date.parse(outcome.at) / 1000);
      metrics.stepEstimate.reset(); // procedures a reload removed leave no estimate behind
      initProcedureMetrics(metrics, rules.procedures);
      log.info({ procedures: outcome.procedures }, 'rules reloaded');
    } else log.error({ problems: outcome.problems, kept: outcome.procedures }, 'rule reload refused; keeping the old rules');
  });
  const byId = rules.byId;
  const stops: (() => Promise<void>)[] = [];
  const running: Running = { rules, reload: () => rules.reload(), metrics, stop: async () => {} };
  let shuttingDown = false;

  // The producer connection doubles as the receiver's record store and control: all must fail fast when Redis
  // is away, so the webhook answers 503 at once and Alertmanager retries.
  const producer = new Producer({ redis: config.redis, keys, retentionMs: config.RUN_RETENTION, routes: config.routes });
  const receiverStore = new RecordStore(producer.redis, keys, config.RUN_RETENTION);
  // PAUSED=true holds automation paused in this process until the pause is in Redis (which may not answer yet).
  const startPause = new StartPause(config.PAUSED);
  const control = new AutomationControl(producer.redis, keys, startPause);
  // Listen only once the queue can take jobs, when Redis is there; if it is not, start anyway and answer 503.
  const queueReady = await Promise.race([
    producer.queue.waitUntilReady().then(
      () => true,
      () => false,
    ),
    new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 5000).unref()),
  ]);
  if (!queueReady) log.warn({ redis: describeRedis(config.redis) }, 'redis not reachable yet; webhooks answer 503 until it is');
  if (config.PAUSED) {
    const written = control.holdStartPause(500, () => shuttingDown);
    if (queueReady) await written;
    else log.warn('PAUSED=true: automation held paused by this process until Redis is reachable and has the pause');
    void written.then(() => log.warn('automation paused by PAUSED=true: runs are recorded with their plan, nothing executes'));
  }

  // Escalation alerts stay open (re-sent) until a later run verifies the target healthy or someone acknowledges.
  const alertmanager = config.ALERTMANAGER_URL ? new AlertmanagerClient(config.ALERTMANAGER_URL, config.HTTP_TIMEOUT) : undefined;
  const escalations = alertmanager
    ? createEscalationLifecycle({
        store: new OpenEscalations(producer.redis, keys),
        alertmanager,
        activeAlerts: (filters) => fetchAlerts(alertmanager.baseUrl, filters, config.HTTP_TIMEOUT),
        links: async (runId, procedure) => {
          const run = await receiverStore.get(runId).catch(() => undefined);
          return {
            runUrl: `${externalUrl(config)}/runs/${encodeURIComponent(runId)}`,
            runbookUrl:
              run?.alert.annotations.runbook_url ?? `${externalUrl(config)}/procedures#${encodeURIComponent(procedure)}`,
          };
        },
        resendIntervalMs: config.ESCALATION_RESEND_INTERVAL,
        log,
      })
    : undefined;
  if (escalations && options.resendEscalations !== false) {
    escalations.start();
    stops.push(async () => escalations.stop());
  }

  if (roles.worker) {
    // The worker's side (the engine, BullMQ's Worker) only in a process that runs procedures: a receiver never loads it.
    const [{ createWorker }, { createEscalator, createNotifier }, { IntakeDispatcher }] = await Promise.all([
      import('./queue/worker.js'),
      import('./engine/escalate.js'),
      import('./queue/intake.js'),
    ]);
    const runUrl = (id: string) => `${externalUrl(config)}/runs/${encodeURIComponent(id)}`;
    const escalatorDeps = {
      targets: configureEscalationTargets(config, process.env, alertmanager),
      timeoutMs: config.HTTP_TIMEOUT,
      metrics,
      log,
      runUrl,
      runbookUrl: (procedure: string) => `${externalUrl(config)}/procedures#${encodeURIComponent(procedure)}`,
    };
    // Workers wait for Redis forever (maxRetriesPerRequest: null); their records go through the same connection.
    const workerRedis = connectRedis(config.redis, 'worker');
    let redisDown = false;
    // 'reconnecting', not only 'error': an outage shorter than a reconnect delay closes the connection and
    // reconnects without any error event, and must still be seen (and logged once) as an outage.
    const lost = (why: string) => {
      if (!redisDown) log.warn({ err: why }, 'worker lost redis; reconnecting');
      redisDown = true;
    };
    workerRedis.on('error', (err) => lost((err as Error).message));
    workerRedis.on('reconnecting', () => lost('connection closed'));
    workerRedis.on('ready', () => {
      if (redisDown) log.info('worker reconnected to redis');
      redisDown = false;
    });
    // REDIS_WAIT_REPLICAS: an action runs only once replicas hold its checkpoint (or the wait timed out: logged once).
    const checkpointReplicated = checkpointReplication(workerRedis, config.redis, keys.bullPrefix, (shortfall) =>
      shortfall
        ? log.warn(shortfall, 'checkpoints not confirmed by enough replicas; runs go on')
        : log.info('replicas confirm checkpoints again'),
    );
    const locks = new TargetLocks(workerRedis, keys, leaseTtl(config));
    const automation = new AutomationControl(workerRedis, keys, startPause);
    const worker = createWorker({
      redis: workerRedis,
      keys,
      concurrency: config.WORKER_CONCURRENCY,
      lockDurationMs: config.LOCK_DURATION,
      stalledIntervalMs: config.STALLED_INTERVAL,
      procedures: byId,
      routes: config.WORKER_ROUTES,
      admission: {
        // Every save of a run record goes through its procedure's env redactor: `{{ env.X }}` values never stored.
        store: redactingRunStore(
          new RecordStore(workerRedis, keys, config.RUN_RETENTION, checkpointReplicated, false),
          rules.byId,
        ),
        leases: locks,
        budgets: locks,
        automation,
        // The lease, storm and pause gates in one round trip per run.
        entry: new RunEntryScript(workerRedis, keys, leaseTtl(config), automation),
        storm: { targets: config.STORM_TARGETS, windowMs: config.STORM_WINDOW },
        silencer: alertmanager,
        escalate: createEscalator(escalatorDeps),
        notify: createNotifier(escalatorDeps),
        ...(escalations
          ? { onVerified: (r: RunRecord) => escalations.resolveVerified(r, (id, e) => receiverStore.appendAudit(id, e)) }
          : {}),
        metrics,
        log,
        engine: {
          prometheus,
          metrics,
          settings: { dryRun: config.DRY_RUN, pollIntervalMs: config.POLL_INTERVAL, stepTimeoutMs: config.STEP_TIMEOUT },
        },
      },
      log,
    });
    // Every worker process adds the receivers' stored jobs to BullMQ, whatever routes it runs (queue/intake.ts).
    const dispatcher = new IntakeDispatcher({
      redis: workerRedis,
      keys,
      retentionMs: config.RUN_RETENTION,
      log,
      onDispatched: (n) => metrics.intakeDispatched.inc(n),
    });
    dispatcher.start();
    stops.push(() => dispatcher.close());
    stops.push(() => worker.close(config.SHUTDOWN_TIMEOUT));
    // axios loads on a process's first HTTP request (http/client.ts): start it with the first run, so the import
    // (~0.1-0.2 s) overlaps the run's admission and first step instead of delaying its first Prometheus query.
    for (const w of worker.workers) w.once('active', () => void loadAxios());
    // exec commands start from the launcher (actions/process-guard.ts): up before the first step needs it.
    if (procedures.some((p) => p.steps.some((s) => s.action?.kind === 'exec'))) startLauncher();
    // Load the Kubernetes client now if a procedure needs it: its first import blocks the event loop for a while.
    if (procedures.some((p) => p.steps.some((s) => s.action?.kind === 'kubernetes')))
      void import('@kubernetes/client-node').catch(() => {});
  }

  /** The HTTP side: probes, /metrics, and for a receiver the webhook, the API and the console. */
  const listen = async (): Promise<Server> => {
    // Express, the console and its Prometheus range queries only in a receiver: a worker-only process answers its
    // probes and /metrics on plain node:http (receiver/probes.ts), for a smaller idle process.
    const [app, receiverModules] = roles.receiver
      ? await Promise.all([
          import('./receiver/app.js'),
          Promise.all([import('./console/router.js'), import('./prometheus/range.js')]),
        ])
      : [undefined, undefined];
    const wake = async (id: string) => {
      const job = await producer.jobOf(id);
      if (job && (await job.isDelayed())) await job.promote();
    };
    // Summed over the routes this process's table declares (a single queue without ROUTES_FILE); `intake`: the jobs
    // stored by receivers that no worker has added to a queue yet (queue/intake.ts).
    const queueCounts = async () => {
      const [intake, ...all] = await Promise.all([
        producer.intakeBacklog(),
        ...producer
          .queues()
          .map(({ queue }) => queue.getJobCounts(...(['waiting', 'active', 'delayed', 'completed', 'failed'] as const))),
      ]);
      const sum: Record<string, number> = {};
      for (const counts of all) for (const [state, n] of Object.entries(counts)) sum[state] = (sum[state] ?? 0) + n;
      return { ...sum, intake };
    };
    const receiverSide = (() => {
      if (receiverModules === undefined) return undefined;
      const [{ createConsole }, { createRangeQuery }] = receiverModules;
      const operations: OperationsDeps = {
        store: receiverStore,
        enqueue: (job) => producer.enqueue(job),
        wake,
        control,
        procedures: rules.byId,
        queryRange: createRangeQuery({ url: config.PROMETHEUS_URL, timeoutMs: config.HTTP_TIMEOUT }),
        ...(escalations ? { escalations } : {}),
        log,
      };
      const locks = new TargetLocks(producer.redis, keys, leaseTtl(config));
      const consoleRouter = createConsole({
        ...(config.WEBHOOK_TOKEN ? { token: config.WEBHOOK_TOKEN } : {}),
        secureCookies: externalUrl(config).startsWith('https:'),
        runs: receiverStore,
        runsVersion: () => receiverStore.version(),
        ops: operations,
        control,
        procedures: rules.procedures,
        locks,
        queue: {
          counts: queueCounts,
          async jobs(limit) {
            const perRoute = await Promise.all(
              producer
                .queues()
                .map(({ queue }) => queue.getJobs(['active', 'waiting', 'delayed', 'failed', 'completed'], 0, limit - 1)),
            );
            // One queue: BullMQ's own order, as before routing; several: newest first across them.
            const jobs =
              perRoute.length === 1
                ? perRoute[0]!
                : perRoute
                    .flat()
                    .sort((a, b) => b.timestamp - a.timestamp)
                    .slice(0, limit);
            return Promise.all(
              jobs.map(async (j) => ({
                id: j.id ?? '',
                state: await j.getState(),
                procedure: j.data.procedure,
                target: j.data.target,
                ...(j.data.route !== undefined ? { route: j.data.route } : {}),
                createdAt: j.timestamp,
                attemptsMade: j.attemptsMade,
                ...(j.delay > 0 ? { delayUntil: j.timestamp + j.delay } : {}),
              })),
            );
          },
        },
        log,
      });
      return { operations, consoleRouter };
    })();
    const probes: ProbeDeps = {
      auth: {
        ...(config.WEBHOOK_TOKEN !== undefined ? { token: config.WEBHOOK_TOKEN } : {}),
        allowUnauthenticated: auth.allowUnauthenticated,
      },
      metrics,
      log,
      ready: {
        redis: () => producer.ping(),
        prometheus: () => prometheus.ready(),
        rulesLoaded: () => rules.procedures.length,
        shuttingDown: () => shuttingDown,
      },
      queueCounts,
      paused: async () => (await control.state()).paused,
      reload: () => {
        const outcome = rules.reload();
        options.afterRequestedReload?.();
        return outcome;
      },
      ...(options.metricsText ? { metricsText: options.metricsText } : {}),
    };
    const server =
      app === undefined || receiverSide === undefined
        ? (await import('./receiver/probes.js')).createProbeServer(probes)
        : app.createServerFor({
            ...probes,
            webhook: {
              procedures: rules.procedures,
              createRecord: (r) => receiverStore.create(r),
              enqueue: (job) => producer.enqueue(job),
              ingest: (items) => producer.ingest(receiverStore, items),
              replicated: () => producer.replicated(),
              markResolved: (id, at) => receiverStore.markResolved(id, at),
              wake,
              metrics,
              log,
              dryRun: config.DRY_RUN,
              maxAlerts: config.WEBHOOK_MAX_ALERTS,
              maxIncidentAgeMs: config.MAX_INCIDENT_AGE,
              reopen: (r) => receiverStore.reopen(r),
              paused: async () => (await control.state()).paused,
            },
            runs: receiverStore,
            control,
            operations: receiverSide.operations,
            runsVersion: () => receiverStore.version(),
            console: receiverSide.consoleRouter,
            maxBodyBytes: config.WEBHOOK_MAX_BYTES,
          });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(config.PORT, auth.host, () => resolve());
    });
    return server;
  };
  const server = options.listen === false ? undefined : await listen();
  // Start-up is over: its garbage goes now, before the first probe is answered, not 8-20 s later (heap-compaction.ts).
  const compactedMs = compactStartupHeap();
  running.server = server;
  const address = server?.address();
  running.port = typeof address === 'object' && address ? address.port : config.PORT;
  log.info(
    {
      ...(server ? { port: running.port, host: auth.host } : {}),
      roles,
      ...(roles.worker ? { workerRoutes: config.WORKER_ROUTES } : {}),
      ...(roles.receiver && config.ROUTES_FILE !== undefined ? { routes: config.routes.routes } : {}),
      redis: describeRedis(config.redis),
      procedures: rules.procedures.map((p) => p.id),
      ...(compactedMs !== undefined ? { startupHeapCompactedMs: Math.round(compactedMs) } : {}),
    },
    server ? 'listening' : 'started',
  );

  running.stop = async () => {
    // Stop intake first (readyz fails, no new connections), then let the worker finish or hand back its runs, then
    // make sure no command it started is left. Every stage is bounded, Redis or not: the process is gone within
    // SHUTDOWN_TIMEOUT + SHUTDOWN_MARGIN_MS.
    shuttingDown = true;
    const deadline = Date.now() + config.SHUTDOWN_TIMEOUT + SHUTDOWN_MARGIN_MS;
    const within = (p: Promise<unknown>) =>
      Promise.race([
        p.catch((err: Error) => log.warn({ err: err.message }, 'error while stopping')),
        new Promise((r) => setTimeout(r, Math.max(0, deadline - Date.now())).unref()),
      ]);
    const closed = new Promise<void>((resolve) => (server ? server.close(() => resolve()) : resolve()));
    server?.closeIdleConnections();
    for (const stop of stops) await within(stop());
    await stopChildren(); // bounded by the kill grace: the exec children are gone before the process is
    server?.closeAllConnections();
    await within(closed);
    await within(producer.close());
    producer.redis.disconnect();
  };
  return running;
}
