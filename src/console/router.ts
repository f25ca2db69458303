/**
 * The operator console, served by the receiver at `/`: Express routing and sessions only; pages are functions of
 * data (`*-page.ts`) and every action goes through receiver/operations.ts, as the API's do.
 *
 * Security: a login form takes the operator's name and WEBHOOK_TOKEN once and sets a signed session cookie
 * (HttpOnly, SameSite=Strict, Secure over https); the token never goes into a URL, the page or the cookie. Every
 * state-changing form carries a CSRF token and must come from this origin. Pages allow no inline script or style
 * (Content-Security-Policy), and every value from an alert is escaped (html.ts).
 */
import express, { type Request, type RequestHandler, type Response } from 'express';
import type { Logger } from 'pino';
import { exampleLabels, planProcedure } from '../engine/plan.js';
import { isFinal, RUN_STATES, type RunRecord, type RunState } from '../engine/record.js';
import type { AuditEntry, PauseState } from '../queue/control.js';
import type { RunFilter } from '../queue/records.js';
import {
  acknowledgeRun,
  cancelRun,
  openEscalationsOf,
  operatorName,
  pauseAutomation,
  reasonText,
  resumeAutomation,
  retryRun,
  stepSeries,
  type OperationsDeps,
  type StepSeries,
} from '../receiver/operations.js';
import { streamChanges } from '../receiver/sse.js';
import type { Procedure } from '../rules/schema.js';
import { CSS, CSS_PATH, JS, JS_PATH } from './assets.js';
import { renderChart } from './chart.js';
import type { Html } from './html.js';
import { layout, type PageContext } from './layout.js';
import { loginPage, proceduresPage, queuePage, type QueueJob, type TargetState } from './other-pages.js';
import { runPage } from './run-page.js';
import { PAGE_SIZE, runsPage, WINDOWS, type RunsQuery } from './runs-page.js';
import { createSessions, readCookie, SESSION_COOKIE, type Session } from './session.js';

export interface ConsoleDeps {
  token?: string;
  /** Mark the cookie Secure (REMEDIATOR_EXTERNAL_URL is https, or the request came over TLS). */
  secureCookies: boolean;
  runs: { list(filter: RunFilter): Promise<RunRecord[]>; get(id: string): Promise<RunRecord | undefined> };
  runsVersion(): Promise<string>;
  ops: OperationsDeps;
  control: { state(): Promise<PauseState>; recentAudit(limit?: number): Promise<AuditEntry[]> };
  /** The live list of loaded procedures. */
  procedures: readonly Procedure[];
  locks: {
    leaseHolder(target: string): Promise<string | undefined>;
    budgetUsed(p: string, t: string, perMs: number): Promise<number>;
  };
  queue: { counts(): Promise<Record<string, number>>; jobs(limit: number): Promise<QueueJob[]> };
  log: Logger;
}

const CSP =
  "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

function securityHeaders(res: Response): void {
  res.set({
    'Content-Security-Policy': CSP,
    'X-Content-Type-Options': 'nosniff',
    'X-Frame-Options': 'DENY',
    // Not no-referrer: with it Chromium sends `Origin: null` on form posts, and the same-origin check needs the real one.
    'Referrer-Policy': 'same-origin',
    'Cache-Control': 'no-store',
  });
}

/** A local path to go back to after login: never another origin (`//host`, `/\\host`, schemes). */
function localPath(next: unknown): string {
  return typeof next === 'string' && /^\/(?![/\\])[^\s]*$/.test(next) ? next : '/';
}

type Authed = Request & { session?: Session };

/** False when the request says it comes from another origin (Origin header, or Sec-Fetch-Site). */
function sameOrigin(req: Request): boolean {
  const site = req.get('sec-fetch-site');
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return false;
  const origin = req.get('origin');
  if (origin === undefined) return true;
  try {
    return new URL(origin).host === req.get('host');
  } catch {
    return false; // "null" (sandboxed frames, some redirects) or garbage
  }
}

export function createConsole(deps: ConsoleDeps): express.Router {
  const sessions = createSessions(deps.token);
  const router = express.Router();
  const form = express.urlencoded({ extended: false, limit: '16kb' });

  router.get(CSS_PATH, (_req, res) => {
    res.set('Cache-Control', 'public, max-age=31536000, immutable').type('text/css').send(CSS);
  });
  router.get(JS_PATH, (_req, res) => {
    res.set('Cache-Control', 'public, max-age=31536000, immutable').type('text/javascript').send(JS);
  });

  router.get('/favicon.ico', (_req, res) => {
    res.status(204).end();
  });

  const secure = (req: Request) => deps.secureCookies || req.secure;
  const session = (req: Request) => sessions.verify(readCookie(req.headers.cookie, SESSION_COOKIE));
  const ctxOf = (req: Authed): PageContext => ({
    who: req.session!.name,
    csrf: sessions.csrf(req.session!),
    loginRequired: true,
  });
  const send = (req: Request, res: Response, title: string, body: Html, live?: string) => {
    securityHeaders(res);
    res.type('html');
    // The live script asks for the main part only, to swap it in place.
    if (req.get('x-fragment') === 'main') res.send(body.value);
    else res.send(layout(title, ctxOf(req as Authed), body, live).value);
  };

  /** Signed in, or off to the login form (GET) / 401 (anything else). */
  const authed: RequestHandler = (req, res, next) => {
    const s = session(req);
    if (s) {
      (req as Authed).session = s;
      next();
      return;
    }
    securityHeaders(res);
    if (req.method === 'GET' && req.get('accept')?.includes('text/html'))
      res.redirect(303, `/login?next=${encodeURIComponent(req.originalUrl)}`);
    else res.status(401).type('text/plain').send('sign in first\n');
  };

  /** Same origin and the session's CSRF token, for every form that changes something. */
  const csrf: RequestHandler = (req, res, next) => {
    if (!sameOrigin(req)) {
      securityHeaders(res);
      res.status(403).type('text/plain').send('cross-site request refused\n');
      return;
    }
    if (!sessions.csrfMatches((req as Authed).session!, (req.body as { _csrf?: unknown } | undefined)?._csrf)) {
      securityHeaders(res);
      res.status(403).type('text/plain').send('invalid or missing CSRF token; reload the page\n');
      return;
    }
    next();
  };

  router.get('/login', (req, res) => {
    securityHeaders(res);
    const q = req.query as Record<string, string | undefined>;
    res
      .type('html')
      .send(
        layout(
          'Sign in',
          { csrf: '', loginRequired: false },
          loginPage({ next: localPath(q.next), tokenRequired: sessions.required }),
        ).value,
      );
  });
  router.post('/login', form, (req, res) => {
    securityHeaders(res);
    const body = req.body as { name?: unknown; token?: unknown; next?: unknown };
    const next = localPath(body.next);
    if (!sameOrigin(req)) {
      res.status(403).type('text/plain').send('cross-site request refused\n');
      return;
    }
    if (sessions.required && !sessions.tokenMatches(typeof body.token === 'string' ? body.token.trim() : '')) {
      deps.log.warn('console login refused: wrong token');
      res
        .status(401)
        .type('html')
        .send(
          layout('Sign in', { csrf: '', loginRequired: false }, loginPage({ next, error: 'Wrong token.', tokenRequired: true }))
            .value,
        );
      return;
    }
    const name = operatorName(body.name);
    const { cookie } = sessions.issue(name);
    deps.log.info({ who: name }, 'console login');
    res.set('Set-Cookie', sessions.setCookie(cookie, secure(req))).redirect(303, next);
  });
  router.post('/logout', authed, form, csrf, (req, res) => {
    res.set('Set-Cookie', sessions.clearCookie(secure(req))).redirect(303, '/login');
  });

  router.get('/', authed, async (req, res) => {
    const q = req.query as Record<string, string | undefined>;
    const query: RunsQuery = {
      ...(q.state && (RUN_STATES as readonly string[]).includes(q.state) ? { state: q.state } : {}),
      ...(q.procedure ? { procedure: q.procedure.slice(0, 200) } : {}),
      ...(q.target ? { target: q.target.slice(0, 500) } : {}),
      ...(q.window && WINDOWS[q.window] !== undefined ? { window: q.window } : {}),
      ...(q.before && /^\d+$/.test(q.before) ? { before: Number(q.before) } : {}),
    };
    const [runs, pause, audit] = await Promise.all([
      deps.runs.list({
        limit: PAGE_SIZE,
        ...(query.state ? { state: query.state as RunState } : {}),
        ...(query.procedure ? { procedure: query.procedure } : {}),
        ...(query.target ? { target: query.target } : {}),
        ...(query.window ? { since: Date.now() - WINDOWS[query.window]! } : {}),
        ...(query.before !== undefined ? { before: query.before } : {}),
      }),
      deps.control.state(),
      deps.control.recentAudit(5),
    ]);
    const page = runsPage(
      runs,
      query,
      deps.procedures.map((p) => p.id),
      pause,
      audit,
      ctxOf(req as Authed),
    );
    send(req, res, 'Runs', page, '/events');
  });
  router.get('/events', authed, (req, res) => {
    streamChanges(req, res, {
      poll: async () => ({ version: `${await deps.runsVersion()}|${JSON.stringify(await deps.control.state())}` }),
    });
  });

  router.get('/runs/:id', authed, async (req, res) => {
    const run = await deps.runs.get(String(req.params.id));
    if (run === undefined) {
      securityHeaders(res);
      res.status(404).type('text/plain').send('no such run\n');
      return;
    }
    const open = (await openEscalationsOf(deps.ops, run.id)).length;
    send(
      req,
      res,
      `${run.procedure} ${run.target}`,
      runPage(run, ctxOf(req as Authed), open),
      `/runs/${encodeURIComponent(run.id)}/events`,
    );
  });
  router.get('/runs/:id/events', authed, (req, res) => {
    const id = String(req.params.id);
    streamChanges(req, res, {
      poll: async () => {
        const run = await deps.runs.get(id);
        // Keep following a finished run: an operator may still re-run it, and its audit changes.
        return run === undefined
          ? undefined
          : { version: JSON.stringify(run), data: { state: run.state, final: isFinal(run.state) } };
      },
    });
  });
  router.get('/runs/:id/steps/:index/chart', authed, async (req, res) => {
    securityHeaders(res);
    const index = Number(req.params.index);
    const r = Number.isInteger(index) && index >= 0 ? await stepSeries(deps.ops, String(req.params.id), index) : undefined;
    if (r === undefined || r.status !== 200) {
      res.status(404).type('text/plain').send('no chart for this step\n');
      return;
    }
    res.type('html').send(renderChart(r.body as StepSeries).value);
  });

  const act =
    (
      fn: (req: Request, who: string, reason?: string) => Promise<{ status: number; body: unknown }>,
      back: (req: Request, body: unknown) => string,
    ) =>
    async (req: Request, res: Response) => {
      const who = (req as Authed).session!.name;
      const reason = reasonText((req.body as { reason?: unknown }).reason);
      const r = await fn(req, who, reason);
      securityHeaders(res);
      if (r.status >= 400) {
        res
          .status(r.status)
          .type('text/plain')
          .send(`${(r.body as { error?: string }).error ?? 'refused'}\n`);
        return;
      }
      res.redirect(303, back(req, r.body));
    };
  const runPath = (id: string) => `/runs/${encodeURIComponent(id)}`;
  router.post(
    '/runs/:id/cancel',
    authed,
    form,
    csrf,
    act(
      (req, who, reason) => cancelRun(deps.ops, String(req.params.id), who, reason),
      (req) => runPath(String(req.params.id)),
    ),
  );
  router.post(
    '/runs/:id/retry',
    authed,
    form,
    csrf,
    act(
      (req, who, reason) => retryRun(deps.ops, String(req.params.id), who, reason),
      (_req, body) => runPath((body as { runId: string }).runId),
    ),
  );
  router.post(
    '/runs/:id/acknowledge',
    authed,
    form,
    csrf,
    act(
      (req, who, reason) => acknowledgeRun(deps.ops, String(req.params.id), who, reason),
      (req) => runPath(String(req.params.id)),
    ),
  );
  router.post(
    '/pause',
    authed,
    form,
    csrf,
    act(
      (_req, who, reason) => pauseAutomation(deps.ops, who, reason ?? 'paused from the console'),
      () => '/',
    ),
  );
  router.post(
    '/resume',
    authed,
    form,
    csrf,
    act(
      (_req, who, reason) => resumeAutomation(deps.ops, who, reason),
      () => '/',
    ),
  );

  router.get('/procedures', authed, async (req, res) => {
    const recent = await deps.runs.list({ limit: 1000 });
    const items = await Promise.all(
      deps.procedures.map(async (procedure) => {
        const example = exampleLabels(procedure);
        const seen = [...new Set(recent.filter((r) => r.procedure === procedure.id).map((r) => r.target))].slice(0, 20);
        const targets: TargetState[] = await Promise.all(
          seen.map(async (target) => {
            const [leaseHolder, budgetUsed] = await Promise.all([
              deps.locks.leaseHolder(target),
              procedure.budget ? deps.locks.budgetUsed(procedure.id, target, procedure.budget.per) : Promise.resolve(undefined),
            ]);
            return { target, ...(leaseHolder ? { leaseHolder } : {}), ...(budgetUsed !== undefined ? { budgetUsed } : {}) };
          }),
        );
        // No environment for {{ env.X }}: a page must never show a secret that a rule reads from the environment.
        return { procedure, example, plan: planProcedure(procedure, example, {}, {}), targets };
      }),
    );
    send(req, res, 'Procedures', proceduresPage(items, ctxOf(req as Authed)));
  });

  router.get('/queue', authed, async (req, res) => {
    const [counts, jobs] = await Promise.all([deps.queue.counts(), deps.queue.jobs(100)]);
    send(req, res, 'Queue', queuePage(counts, jobs, ctxOf(req as Authed)), '/events');
  });

  return router;
}
