import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { Logger } from 'pino';
import type { Metrics } from '../metrics.js';
import { QUEUE_STATES } from '../metrics.js';
import type { ReloadOutcome } from '../rules/rule-set.js';
import { authorizationMatches, UNAUTHORIZED, type AuthSettings } from './auth.js';
import { jsonAnswer as json, textAnswer as text, writeAnswer as write, type PlainAnswer } from './plain-http.js';

/**
 * What every process that listens answers: the probes (/healthz, /readyz, /-/healthy, /-/ready), /-/reload and
 * /metrics. The receiver's Express app (app.ts) routes to these; a worker-only process serves them on plain node:http
 * (createProbeServer), without loading Express or the receiver's modules (issue 13: a worker's idle memory).
 */
export interface ProbeDeps {
  /** Who may call /-/reload (receiver/auth.ts); the probes and /metrics stay open. */
  auth: AuthSettings;
  metrics: Metrics;
  log: Logger;
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
}

interface Readiness {
  ready: boolean;
  redis: boolean;
  rulesLoaded: number;
  prometheus: boolean;
  shuttingDown?: true;
}

function withTimeout<T>(p: Promise<T>, ms: number, fallback: T): Promise<T> {
  return Promise.race([p.catch(() => fallback), new Promise<T>((resolve) => setTimeout(() => resolve(fallback), ms).unref())]);
}

/** Ready: Redis answers, rules are loaded, not shutting down. Prometheus is reported, not required. */
async function readiness(ready: ProbeDeps['ready']): Promise<Readiness> {
  const [redis, prometheus] = await Promise.all([
    withTimeout(ready.redis(), 1000, false),
    withTimeout(ready.prometheus(), 1000, false),
  ]);
  const shuttingDown = ready.shuttingDown?.() ?? false;
  const rulesLoaded = ready.rulesLoaded();
  return {
    ready: redis && rulesLoaded > 0 && !shuttingDown,
    redis,
    rulesLoaded,
    prometheus,
    ...(shuttingDown ? { shuttingDown: true as const } : {}),
  };
}

export const healthz = (): PlainAnswer => json(200, { status: 'ok' });

export async function readyz(deps: ProbeDeps): Promise<PlainAnswer> {
  const state = await readiness(deps.ready);
  return json(state.ready ? 200 : 503, state);
}

// The Prometheus/Alertmanager lifecycle endpoints, with their plain-text answers (web/web.go).
export const healthy = (): PlainAnswer => text(200, 'remediator is Healthy.\n');

export async function readyText(deps: ProbeDeps): Promise<PlainAnswer> {
  return (await readiness(deps.ready)).ready ? text(200, 'remediator is Ready.\n') : text(503, 'Service Unavailable\n');
}

/** 401 unless the token is there: the answer bearerAuth gives (receiver/auth.ts). */
const unauthorized = (): PlainAnswer => ({ ...json(UNAUTHORIZED.status, UNAUTHORIZED.body), headers: UNAUTHORIZED.headers });

/** `/-/reload`, after its token was checked. Prometheus takes POST and PUT. */
export function reloadRules(deps: ProbeDeps, method: string | undefined): PlainAnswer {
  if (method !== 'POST' && method !== 'PUT')
    return { ...text(405, 'Only POST or PUT requests allowed\n'), headers: { Allow: 'POST, PUT' } };
  if (deps.reload === undefined) return text(404, 'reload is not available in this process\n');
  const outcome = deps.reload();
  if (outcome.ok) return text(200, `reloaded ${outcome.procedures.length} procedures: ${outcome.procedures.join(', ')}\n`);
  return text(
    500,
    `failed to reload rules, keeping the old ones (${outcome.procedures.join(', ')}):\n${outcome.problems.join('\n')}\n`,
  );
}

/** /metrics: the gauges read at scrape time are set first (each bounded to a second), then the registry's text. */
export async function metricsAnswer(deps: ProbeDeps): Promise<PlainAnswer> {
  const [counts, paused] = await Promise.all([
    deps.queueCounts ? withTimeout(deps.queueCounts(), 1000, undefined) : undefined,
    deps.paused ? withTimeout(deps.paused(), 1000, undefined) : undefined,
  ]);
  if (counts) for (const state of QUEUE_STATES) deps.metrics.queueJobs.set({ state }, counts[state] ?? 0);
  if (counts?.intake !== undefined) deps.metrics.intakeBacklog.set(counts.intake);
  if (paused !== undefined) deps.metrics.automationPaused.set(paused ? 1 : 0);
  if (deps.metricsText) {
    const { text: body, contentType } = await deps.metricsText();
    return { status: 200, contentType, body };
  }
  return { status: 200, contentType: deps.metrics.registry.contentType, body: await deps.metrics.registry.metrics() };
}

const WORKER_NOT_FOUND = 'not found (this process is a worker: only /healthz, /readyz, /-/*, /metrics)';

/**
 * A path as Express routes it by default: case-insensitive, one trailing slash allowed, the query string ignored.
 * A path that percent-decoding would change (Express matches the decoded path) is left to the 404.
 */
function routeOf(url: string | undefined): string {
  const path = (url ?? '/').split('?', 1)[0]!.toLowerCase();
  return path.length > 1 && path.endsWith('/') ? path.slice(0, -1) : path;
}

/** A worker-only process's answer to one request: its routes as the receiver's Express app routes them. */
async function workerAnswer(deps: ProbeDeps, req: IncomingMessage): Promise<PlainAnswer> {
  const route = routeOf(req.url);
  const get = req.method === 'GET' || req.method === 'HEAD';
  if (route === '/-/reload')
    return authorizationMatches(deps.auth, req.headers.authorization) ? reloadRules(deps, req.method) : unauthorized();
  if (get && route === '/healthz') return healthz();
  if (get && route === '/readyz') return readyz(deps);
  if (get && route === '/-/healthy') return healthy();
  if (get && route === '/-/ready') return readyText(deps);
  if (get && route === '/metrics') return metricsAnswer(deps);
  return json(404, { error: WORKER_NOT_FOUND });
}

/**
 * A worker-only process's HTTP server on plain node:http (no Express in a worker): the probes, /-/reload and /metrics,
 * answered as the receiver's Express app answers them; anything else is a 404 naming what a worker serves. A request
 * body is never read.
 */
export function createProbeServer(deps: ProbeDeps): Server {
  return createServer((req, res) => {
    req.resume(); // a body nobody reads must not hold the connection
    workerAnswer(deps, req).then(
      (answer) => write(res, answer, req.method === 'HEAD'),
      (err: Error) => {
        deps.log.error({ err: err.message }, 'request failed');
        write(res, json(503, { error: 'internal error; retry later' }), req.method === 'HEAD');
      },
    );
  });
}
