import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import express, { type ErrorRequestHandler, type Request } from 'express';
import type { Metrics } from '../metrics.js';
import { isFinal, RUN_STATES, type RunState } from '../engine/record.js';
import type { RunFilter } from '../queue/records.js';
import type { PauseState } from '../queue/control.js';
import type { RunRecord } from '../engine/record.js';
import { bearerAuth, requireJsonBody } from './auth.js';
import type { PlainAnswer } from './plain-http.js';
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
import { healthy, healthz, metricsAnswer, readyText, readyz, reloadRules, type ProbeDeps } from './probes.js';
import { streamChanges } from './sse.js';
import { handleWebhook, type WebhookDeps } from './webhook.js';
import { webhookFastPath } from './webhook-http.js';

/**
 * A receiver's: the probes, /-/reload and /metrics (probes.ts), the webhook, the API and the console. A worker-only
 * process serves its routes without Express (probes.ts createProbeServer).
 */
export interface AppDeps extends ProbeDeps {
  webhook: WebhookDeps;
  maxBodyBytes: number;
  runs: { list(filter: RunFilter): Promise<RunRecord[]>; get(id: string): Promise<RunRecord | undefined> };
  /** Cancel, re-run, charts, pause/resume with who and why (`remediator runs …`, the console). */
  operations?: OperationsDeps;
  /** A number that changes with every run write (live streams poll it). */
  runsVersion?: () => Promise<string>;
  /** The kill switch: POST /api/pause, /api/resume, GET /api/pause. */
  control?: { state(): Promise<PauseState>; pause(reason: string, by: string): Promise<boolean>; resume(): Promise<boolean> };
  /** Mounted after the API and before the 404: the operator console (its own auth and routes). */
  console?: express.RequestHandler;
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
  const fast = webhookFastPath({
    webhook: deps.webhook,
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

  /** A probe's answer through Express (which adds its ETag, and answers HEAD for GET). */
  const send = (res: express.Response, answer: PlainAnswer) => {
    res
      .status(answer.status)
      .set({ ...answer.headers, 'Content-Type': answer.contentType })
      .send(answer.body);
  };
  app.get('/healthz', (_req, res) => send(res, healthz()));
  app.get('/readyz', async (_req, res) => send(res, await readyz(deps)));
  app.get('/-/healthy', (_req, res) => send(res, healthy()));
  app.get('/-/ready', async (_req, res) => send(res, await readyText(deps)));
  // Prometheus takes POST and PUT; it has no token, but here a reload is a change, so it needs WEBHOOK_TOKEN.
  app.all('/-/reload', bearerAuth(deps.auth), (req, res) => send(res, reloadRules(deps, req.method)));
  app.get('/metrics', async (_req, res) => send(res, await metricsAnswer(deps)));

  const countWebhook = webhookCounter(deps.metrics);

  const { webhook, runs } = deps;

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
