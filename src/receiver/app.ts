import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import express, { type ErrorRequestHandler, type Request } from 'express';
import type { Logger } from 'pino';
import type { Metrics } from '../metrics.js';
import { QUEUE_STATES } from '../metrics.js';
import { isFinal, RUN_STATES, type RunState } from '../engine/record.js';
import type { RunFilter } from '../queue/records.js';
import type { PauseState } from '../queue/control.js';
import type { RunRecord } from '../engine/record.js';
import type { ReloadOutcome } from '../rules/rule-set.js';
import { bearerAuth, requireJsonBody, type AuthSettings } from './auth.js';
import {
  acknowledgeRun,
  cancelRun,
  operatorName,
  pauseAutomation,
  reasonText,
  resumeAutomation,
  retryRun,
  stepSeries,
  type OperationsDeps,
} from './operations.js';
import { streamChanges } from './sse.js';
import { handleWebhook, type WebhookDeps } from './webhook.js';
import { webhookFastPath } from './webhook-http.js';

export interface AppDeps {
  /** Absent in a worker-only process: no webhook, no API, only probes and metrics. */
  webhook?: WebhookDeps;
  /** Who may call /webhook, /api/* and /-/reload (receiver/auth.ts); probes and /metrics stay open. */
  auth: AuthSettings;
  maxBodyBytes: number;
  metrics: Metrics;
  log: Logger;
  runs?: { list(filter: RunFilter): Promise<RunRecord[]>; get(id: string): Promise<RunRecord | undefined> };
  /** Cancel, re-run, charts, pause/resume with who and why (`remediator runs …`, the console). */
  operations?: OperationsDeps;
  /** A number that changes with every run write (live streams poll it). */
  runsVersion?: () => Promise<string>;
  /** The kill switch: POST /api/pause, /api/resume, GET /api/pause. */
  control?: { state(): Promise<PauseState>; pause(reason: string, by: string): Promise<boolean>; resume(): Promise<boolean> };
  /** Readiness probes; each answers quickly. */
  ready: { redis(): Promise<boolean>; prometheus(): Promise<boolean>; rulesLoaded: () => number; shuttingDown?: () => boolean };
  /** Job counts by state for the queue gauge (read at scrape time). */
  queueCounts?: () => Promise<Record<string, number>>;
  /** Whether automation is paused, for the remediator_automation_paused gauge (read at scrape time). */
  paused?: () => Promise<boolean>;
  /** What /metrics answers, when not this process's registry alone (a multi-process serve's receiver: all of them). */
  metricsText?: () => Promise<{ text: string; contentType: string }>;
  /** Re-reads the rule files (`POST /-/reload`); a bad set is refused and the old one kept. */
  reload?: () => ReloadOutcome;
  /** Mounted after the API and before the 404: the operator console (its own auth and routes). */
  console?: express.RequestHandler;
}

function withTimeout<T>(p: Promise<T>, ms: number, fallback: T): Promise<T> {
  return Promise.race([p.catch(() => fallback), new Promise<T>((resolve) => setTimeout(() => resolve(fallback), ms).unref())]);
}

/** Counts one webhook answer: remediator_webhook_requests_total and remediator_webhook_duration_seconds. */
function webhookCounter(metrics: Metrics): (code: number, started: bigint) => void {
  return (code, started) => {
    const label = { code: String(code) };
    metrics.webhookRequests.inc(label);
    metrics.webhookDuration.observe(label, Number(process.hrtime.bigint() - started) / 1e9);
  };
}

/**
 * The receiver's HTTP server: the common POST /webhook on plain node:http (webhook-http.ts), everything else,
 * every unusual webhook request included, on the Express app (createApp).
 */
export function createServerFor(deps: AppDeps): Server {
  const app = createApp(deps);
  const webhook = deps.webhook;
  if (webhook === undefined || deps.runs === undefined) return createServer(app);
  const fast = webhookFastPath({
    webhook,
    auth: deps.auth,
    maxBodyBytes: deps.maxBodyBytes,
    log: deps.log,
    ...(deps.ready.shuttingDown ? { shuttingDown: deps.ready.shuttingDown } : {}),
    count: webhookCounter(deps.metrics),
  });
  return createServer((req: IncomingMessage, res: ServerResponse) => {
    if (!fast(req, res)) void app(req, res);
  });
}

/** Express routing only: every route maps to a function that knows nothing of Express. */
export function createApp(deps: AppDeps): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');

  app.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });

  const readiness = async () => {
    const [redis, prometheus] = await Promise.all([
      withTimeout(deps.ready.redis(), 1000, false),
      withTimeout(deps.ready.prometheus(), 1000, false),
    ]);
    const shuttingDown = deps.ready.shuttingDown?.() ?? false;
    const rulesLoaded = deps.ready.rulesLoaded();
    const ready = redis && rulesLoaded > 0 && !shuttingDown;
    return { ready, redis, rulesLoaded, prometheus, ...(shuttingDown ? { shuttingDown } : {}) };
  };
  app.get('/readyz', async (_req, res) => {
    const state = await readiness();
    res.status(state.ready ? 200 : 503).json(state);
  });

  // The Prometheus/Alertmanager lifecycle endpoints, with their plain-text answers (web/web.go).
  app.get('/-/healthy', (_req, res) => {
    res.type('text/plain').send('remediator is Healthy.\n');
  });
  app.get('/-/ready', async (_req, res) => {
    const state = await readiness();
    if (state.ready) res.type('text/plain').send('remediator is Ready.\n');
    else res.status(503).type('text/plain').send('Service Unavailable\n');
  });
  const reload = deps.reload;
  // Prometheus takes POST and PUT; it has no token, but here a reload is a change, so it needs WEBHOOK_TOKEN.
  app.all('/-/reload', bearerAuth(deps.auth), (req, res) => {
    if (req.method !== 'POST' && req.method !== 'PUT') {
      res.status(405).set('Allow', 'POST, PUT').type('text/plain').send('Only POST or PUT requests allowed\n');
      return;
    }
    if (reload === undefined) {
      res.status(404).type('text/plain').send('reload is not available in this process\n');
      return;
    }
    const outcome = reload();
    if (outcome.ok)
      res.type('text/plain').send(`reloaded ${outcome.procedures.length} procedures: ${outcome.procedures.join(', ')}\n`);
    else
      res
        .status(500)
        .type('text/plain')
        .send(
          `failed to reload rules, keeping the old ones (${outcome.procedures.join(', ')}):\n${outcome.problems.join('\n')}\n`,
        );
  });

  app.get('/metrics', async (_req, res) => {
    const [counts, paused] = await Promise.all([
      deps.queueCounts ? withTimeout(deps.queueCounts(), 1000, undefined) : undefined,
      deps.paused ? withTimeout(deps.paused(), 1000, undefined) : undefined,
    ]);
    if (counts) for (const state of QUEUE_STATES) deps.metrics.queueJobs.set({ state }, counts[state] ?? 0);
    if (counts?.intake !== undefined) deps.metrics.intakeBacklog.set(counts.intake);
    if (paused !== undefined) deps.metrics.automationPaused.set(paused ? 1 : 0);
    if (deps.metricsText) {
      const { text, contentType } = await deps.metricsText();
      res.set('Content-Type', contentType).send(text);
    } else res.set('Content-Type', deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
  });

  const countWebhook = webhookCounter(deps.metrics);

  const webhook = deps.webhook;
  const runs = deps.runs;
  if (webhook === undefined || runs === undefined) {
    app.use((_req, res) => {
      res.status(404).json({ error: 'not found (this process is a worker: only /healthz, /readyz, /-/*, /metrics)' });
    });
    return app;
  }

  app.post(
    '/webhook',
    (req, res, next) => {
      const started = process.hrtime.bigint();
      res.on('finish', () => countWebhook(res.statusCode, started));
      next();
    },
    (_req, res, next) => {
      // Draining: Alertmanager retries a 503 (here or at another replica).
      if (deps.ready.shuttingDown?.()) res.status(503).json({ error: 'shutting down; retry' });
      else next();
    },
    bearerAuth(deps.auth),
    // Alertmanager sends application/json; anything else (text/plain, a form: what a web page can send) is a 415.
    requireJsonBody(),
    express.json({ limit: deps.maxBodyBytes, type: 'application/json', strict: false }),
    async (req, res) => {
      const result = await handleWebhook(req.body, webhook);
      res.status(result.status).json(result.body);
    },
  );

  const api = express.Router();
  api.use(bearerAuth(deps.auth), requireJsonBody());
  api.get('/remediations', async (req: Request, res) => {
    const q = req.query as Record<string, string | undefined>;
    if (q.state !== undefined && !(RUN_STATES as readonly string[]).includes(q.state)) {
      res.status(400).json({ error: `state must be one of ${RUN_STATES.join(', ')}`, field: 'state' });
      return;
    }
    const limit = q.limit === undefined ? 100 : Number(q.limit);
    if (!Number.isInteger(limit) || limit < 1 || limit > 1000) {
      res.status(400).json({ error: 'limit must be an integer from 1 to 1000', field: 'limit' });
      return;
    }
    const times: { since?: number; before?: number } = {};
    for (const key of ['since', 'before'] as const) {
      if (q[key] === undefined) continue;
      const t = /^\d+$/.test(q[key]) ? Number(q[key]) : Date.parse(q[key]);
      if (!Number.isFinite(t)) {
        res.status(400).json({ error: `${key} must be an RFC 3339 time or milliseconds since the epoch`, field: key });
        return;
      }
      times[key] = t;
    }
    const found = await runs.list({
      ...times,
      ...(q.procedure !== undefined ? { procedure: q.procedure } : {}),
      ...(q.target !== undefined ? { target: q.target } : {}),
      ...(q.state !== undefined ? { state: q.state as RunState } : {}),
      limit,
    });
    res.json({ runs: found });
  });
  api.get('/remediations/:id', async (req, res) => {
    const run = await runs.get(String(req.params.id));
    if (run === undefined) res.status(404).json({ error: `no run ${req.params.id}` });
    else res.json(run);
  });
  const control = deps.control;
  if (control !== undefined) {
    api.get('/pause', async (_req, res) => {
      res.json(await control.state());
    });
    const ops = deps.operations;
    const body = express.json({ limit: '16kb', type: 'application/json', strict: false });
    /** Who acts: the body's `by`, else the X-Remediator-User header (the CLI sends $USER@host), else "api". */
    const who = (req: Request) => {
      const given = (req.body as { by?: unknown } | undefined)?.by ?? req.get('x-remediator-user');
      return given === undefined ? 'api' : operatorName(given);
    };
    const reasonOf = (req: Request) => reasonText((req.body as { reason?: unknown } | undefined)?.reason);
    api.post('/pause', body, async (req, res) => {
      const reason = reasonOf(req) ?? 'paused by hand';
      if (ops) {
        const r = await pauseAutomation(ops, who(req), reason);
        res.status(r.status).json(r.body);
        return;
      }
      const changed = await control.pause(reason, who(req));
      deps.log.warn({ reason, changed }, 'automation paused through the API');
      res.status(changed ? 200 : 409).json({ ...(await control.state()), ...(changed ? {} : { note: 'already paused' }) });
    });
    api.post('/resume', body, async (req, res) => {
      if (ops) {
        const reason = reasonOf(req);
        const r = await resumeAutomation(ops, who(req), reason);
        res.status(r.status).json(r.body);
        return;
      }
      const changed = await control.resume();
      deps.log.warn({ changed }, 'automation resumed through the API');
      res.json({ ...(await control.state()), resumed: changed });
    });
    if (ops) {
      api.post('/remediations/:id/cancel', body, async (req, res) => {
        const r = await cancelRun(ops, String(req.params.id), who(req), reasonOf(req));
        res.status(r.status).json(r.body);
      });
      api.post('/remediations/:id/retry', body, async (req, res) => {
        const r = await retryRun(ops, String(req.params.id), who(req), reasonOf(req));
        res.status(r.status).json(r.body);
      });
      api.post('/remediations/:id/acknowledge', body, async (req, res) => {
        const r = await acknowledgeRun(ops, String(req.params.id), who(req), reasonOf(req));
        res.status(r.status).json(r.body);
      });
      api.get('/escalations', async (_req, res) => {
        res.json({ open: ops.escalations ? await ops.escalations.open() : [] });
      });
      api.get('/remediations/:id/steps/:index/series', async (req, res) => {
        const index = Number(req.params.index);
        if (!Number.isInteger(index) || index < 0) {
          res.status(400).json({ error: 'step index must be a non-negative integer' });
          return;
        }
        const r = await stepSeries(ops, String(req.params.id), index);
        res.status(r.status).json(r.body);
      });
    }
  }
  // Live: one run's record each time it changes, until it ends (`remediator runs tail`).
  api.get('/remediations/:id/events', async (req, res) => {
    const id = String(req.params.id);
    if ((await runs.get(id)) === undefined) {
      res.status(404).json({ error: `no run ${id}` });
      return;
    }
    streamChanges(req, res, {
      poll: async () => {
        const run = await runs.get(id);
        if (run === undefined) return undefined;
        const json = JSON.stringify(run);
        return { version: json, data: run, done: isFinal(run.state) };
      },
    });
  });
  const runsVersion = deps.runsVersion;
  if (runsVersion)
    // Live: any run created or changed (the data is just the new version; clients re-read what they show).
    api.get('/events', (req, res) => {
      streamChanges(req, res, { poll: async () => ({ version: await runsVersion() }) });
    });
  app.use('/api', api);
  if (deps.console) app.use(deps.console);

  app.use((_req, res) => {
    res.status(404).json({ error: 'not found' });
  });

  const onError: ErrorRequestHandler = (err: { type?: string; status?: number; message?: string }, _req, res, _next) => {
    if (err.type === 'entity.too.large') {
      res.status(413).json({ error: `body larger than WEBHOOK_MAX_BYTES (${deps.maxBodyBytes} bytes)` });
    } else if (err.type === 'entity.parse.failed') {
      res.status(400).json({ error: `body is not valid JSON: ${err.message}` });
    } else if (err.status !== undefined && err.status >= 400 && err.status < 500) {
      res.status(err.status).json({ error: err.message });
    } else {
      deps.log.error({ err: err.message }, 'request failed');
      res.status(503).json({ error: 'internal error; retry later' });
    }
  };
  app.use(onError);
  return app;
}
