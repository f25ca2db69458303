import { formatDuration } from '../duration.js';
import type { Plan } from '../engine/plan.js';
import type { Procedure } from '../rules/schema.js';
import { html, path, type Html } from './html.js';
import { type PageContext } from './layout.js';

export function loginPage(opts: { next: string; error?: string; tokenRequired: boolean }): Html {
  return html`<div class="login">
    <h1>remediator</h1>
    ${opts.error ? html`<div class="banner error">${opts.error}</div>` : ''}
    <form method="post" action="/login">
      <input type="hidden" name="next" value="${opts.next}" />
      <label
        >Your name <input name="name" autocomplete="username" required maxlength="64" placeholder="recorded with what you do"
      /></label>
      ${opts.tokenRequired ? html`<label>Token <input name="token" type="password" autocomplete="current-password" required placeholder="WEBHOOK_TOKEN" /></label>` : ''}
      <button type="submit" class="primary">Sign in</button>
    </form>
    <p class="muted">
      The token is checked once and not kept: the browser gets a signed session cookie (HttpOnly, SameSite=Strict).
    </p>
  </div>`;
}

export interface TargetState {
  target: string;
  leaseHolder?: string;
  budgetUsed?: number;
}

export function proceduresPage(
  items: { procedure: Procedure; example: Record<string, string>; plan: Plan; targets: TargetState[] }[],
  _ctx: PageContext,
): Html {
  return html`<h1>Procedures</h1>
    <p class="muted">
      Each procedure's steps as they would run, rendered with example labels that satisfy its matchers; its budget, and per target
      the runs counted in the budget window and who holds the target's lease now.
    </p>
    ${items.map(
      ({ procedure: p, example, plan, targets }) =>
        html`<section class="procedure" id="${p.id}">
          <h2>${p.id}: ${p.title}</h2>
          <dl class="facts">
            <dt>Match</dt>
            <dd class="mono">${p.match.join(', ')}</dd>
            <dt>Target</dt>
            <dd class="mono">${p.target}</dd>
            <dt>Budget</dt>
            <dd>${p.budget ? `${p.budget.runs} runs per ${formatDuration(p.budget.per)} per target` : 'none'}</dd>
            <dt>Rule file</dt>
            <dd class="mono">${p.file}</dd>
            <dt>Example labels</dt>
            <dd class="mono">${JSON.stringify(example)}</dd>
          </dl>
          <table>
            <thead>
              <tr>
                <th>#</th>
                <th>Step</th>
                <th>What it would do (example target ${plan.target})</th>
                <th>Estimate</th>
                <th>On failure</th>
              </tr>
            </thead>
            <tbody>
              ${plan.steps.map(
                (s, i) =>
                  html`<tr>
                    <td>${i + 1}</td>
                    <td><b>${s.name}</b></td>
                    <td>
                      ${s.when ? html`<div><span class="muted">when</span> <code>${s.when}</code></div>` : ''}
                      ${s.action ? html`<div><span class="muted">action</span> <code>${s.action}</code></div>` : ''}
                      ${s.forEach ? html`<div><span class="muted">for each</span> ${s.forEach}</div>` : ''}
                      ${s.expect ? html`<div><span class="muted">expect</span> <code>${s.expect}</code></div>` : ''}
                    </td>
                    <td>${s.estimate !== undefined ? formatDuration(s.estimate) : '–'}</td>
                    <td>${s.onFailure}</td>
                  </tr>`,
              )}
            </tbody>
          </table>
          ${
            targets.length > 0
              ? html`<table class="targets">
                  <thead>
                    <tr>
                      <th>Recent target</th>
                      <th>Budget used</th>
                      <th>Lease</th>
                    </tr>
                  </thead>
                  <tbody>
                    ${targets.map(
                      (t) =>
                        html`<tr>
                          <td class="mono">${t.target}</td>
                          <td>${p.budget ? `${t.budgetUsed ?? 0} of ${p.budget.runs}` : 'no budget'}</td>
                          <td>
                            ${t.leaseHolder ? html`held by <a class="mono" href="${path('runs', t.leaseHolder)}">${t.leaseHolder}</a>` : 'free'}
                          </td>
                        </tr>`,
                    )}
                  </tbody>
                </table>`
              : html`<p class="muted">No recent runs.</p>`
          }
        </section>`,
    )}`;
}

export interface QueueJob {
  id: string;
  state: string;
  procedure?: string;
  target?: string;
  createdAt?: number;
  attemptsMade: number;
  delayUntil?: number;
  /** The route whose queue holds it (ROUTES_FILE); absent or `default` without routing. */
  route?: string;
}

export function queuePage(counts: Record<string, number>, jobs: QueueJob[], _ctx: PageContext): Html {
  // A route column only where routing is in use: a route nobody serves shows as its jobs waiting there.
  const routed = jobs.some((j) => j.route !== undefined && j.route !== 'default');
  return html`<h1>Queue</h1>
    <div class="counts">
      ${Object.entries(counts).map(([state, n]) => html`<div class="count" data-state="${state}"><b>${n}</b>${state}</div>`)}
    </div>
    <p class="muted">
      Read only. Runs are started by Alertmanager's webhook or a re-run; cancel a run from its page, so deduplication and the run
      record stay right.
    </p>
    <table>
      <thead>
        <tr>
          <th>Job (run)</th>
          <th>State</th>
          <th>Procedure</th>
          <th>Target</th>
          ${routed ? html`<th>Route</th>` : ''}
          <th>Created</th>
          <th>Attempts</th>
          <th>Next look</th>
        </tr>
      </thead>
      <tbody>
        ${jobs.map(
          (j) =>
            html`<tr>
              <td><a class="mono" href="${path('runs', j.id)}">${j.id}</a></td>
              <td>${j.state}</td>
              <td>${j.procedure ?? ''}</td>
              <td class="mono">${j.target ?? ''}</td>
              ${routed ? html`<td class="mono">${j.route ?? 'default'}</td>` : ''}
              <td>${j.createdAt ? new Date(j.createdAt).toISOString().replace('T', ' ').slice(0, 19) : ''}</td>
              <td>${j.attemptsMade}</td>
              <td>${j.delayUntil ? new Date(j.delayUntil).toISOString().slice(11, 19) : ''}</td>
            </tr>`,
        )}
        ${
          jobs.length === 0
            ? html`<tr>
                <td colspan="${routed ? 8 : 7}" class="muted">No jobs.</td>
              </tr>`
            : ''
        }
      </tbody>
    </table>`;
}
