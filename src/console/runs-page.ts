import { RUN_STATES, type RunRecord } from '../engine/record.js';
import type { AuditEntry, PauseState } from '../queue/control.js';
import { html, path, type Html } from './html.js';
import { badge, bar, csrfField, type PageContext } from './layout.js';
import { fmt } from './timeline.js';

export interface RunsQuery {
  state?: string;
  procedure?: string;
  target?: string;
  /** 1h | 24h | 7d | '' (all) */
  window?: string;
  before?: number;
}

export const WINDOWS: Record<string, number> = { '1h': 3_600_000, '24h': 86_400_000, '7d': 7 * 86_400_000 };
export const PAGE_SIZE = 25;

function durationCell(run: RunRecord): Html {
  const started = run.startedAt ? Date.parse(run.startedAt) : undefined;
  const actual = run.sla.actualMs ?? (started !== undefined ? Date.now() - started : undefined);
  if (actual === undefined) return html`<span class="muted">not started</span>`;
  const sla = run.sla.slaMs ?? 15 * 60_000;
  const est = run.sla.estimateMs;
  return html`<span class="mono">${fmt(actual)}</span
    >${est !== undefined ? html` <span class="muted">/ est ${fmt(est)}</span>` : ''} <br />${bar(actual, sla)}
    <span class="${actual > sla ? 'over' : 'within'}">${actual > sla ? 'over' : 'within'} ${fmt(sla)} SLA</span>`;
}

export function pauseBanner(pause: PauseState, ctx: PageContext): Html {
  if (!pause.paused)
    return html`<div class="controls">
      <form method="post" action="/pause" data-confirm="Pause all automatic remediation?">
        ${csrfField(ctx)}
        <label>Reason <input name="reason" required maxlength="500" placeholder="why pause" /></label>
        <button type="submit" class="danger" name="pause">Pause automation</button>
      </form>
    </div>`;
  return html`<div class="banner paused">
    <b>Automation is paused</b> by ${pause.by ?? 'someone'} at ${pause.at ?? '?'}: ${pause.reason ?? ''}. Alerts are recorded with
    their plan, nothing runs.
    <form method="post" action="/resume" data-confirm="Resume automatic remediation?">
      ${csrfField(ctx)} <input name="reason" maxlength="500" placeholder="why resume (optional)" />
      <button type="submit" class="primary" name="resume">Resume automation</button>
    </form>
  </div>`;
}

export function runsPage(
  runs: RunRecord[],
  query: RunsQuery,
  procedures: string[],
  pause: PauseState,
  audit: AuditEntry[],
  ctx: PageContext,
): Html {
  const opt = (value: string, current: string | undefined, label = value) =>
    html`<option value="${value}" ${value === (current ?? '') ? html` selected` : ''}>${label}</option>`;
  const params = new URLSearchParams();
  for (const k of ['state', 'procedure', 'target', 'window'] as const) if (query[k]) params.set(k, query[k]);
  const oldest = runs.at(-1);
  if (oldest && runs.length >= PAGE_SIZE) params.set('before', String(Date.parse(oldest.trigger.receivedAt)));
  return html`<h1>Runs</h1>
    ${pauseBanner(pause, ctx)}
    <form class="filters" method="get" action="/">
      <label
        >State
        <select name="state">
          ${opt('', query.state, 'any')}${RUN_STATES.map((s) => opt(s, query.state))}
        </select></label
      >
      <label
        >Procedure
        <select name="procedure">
          ${opt('', query.procedure, 'any')}${procedures.map((p) => opt(p, query.procedure))}
        </select></label
      >
      <label>Target <input name="target" value="${query.target ?? ''}" placeholder="exact target" /></label>
      <label
        >Received
        <select name="window">
          ${opt('', query.window, 'any time')}${opt('1h', query.window, 'last hour')}${opt('24h', query.window, 'last 24 hours')}${opt('7d', query.window, 'last 7 days')}
        </select></label
      >
      <button type="submit">Filter</button> <a href="/">clear</a>
    </form>
    <table id="runs">
      <thead>
        <tr>
          <th>State</th>
          <th>Procedure</th>
          <th>Target</th>
          <th>Alert</th>
          <th>Received</th>
          <th>Duration · estimate · SLA</th>
        </tr>
      </thead>
      <tbody>
        ${runs.map(
          (r) =>
            html`<tr data-run="${r.id}">
              <td>
                ${badge(r.state)}${r.cancelRequested && r.state !== 'cancelled' ? html` <span class="muted">cancel asked</span>` : ''}
              </td>
              <td>
                <a href="${path('runs', r.id)}"><b>${r.procedure}</b></a
                ><br /><span class="muted">${r.title}</span>
              </td>
              <td class="mono">${r.target}</td>
              <td>${r.alert.labels.alertname ?? ''}${r.rerunOf ? html`<br /><span class="muted">re-run</span>` : ''}</td>
              <td><time datetime="${r.trigger.receivedAt}">${r.trigger.receivedAt.replace('T', ' ').slice(0, 19)}</time></td>
              <td>${durationCell(r)}</td>
            </tr>`,
        )}
        ${
          runs.length === 0
            ? html`<tr>
                <td colspan="6" class="muted">No runs match.</td>
              </tr>`
            : ''
        }
      </tbody>
    </table>
    <div class="pager">
      ${query.before !== undefined ? html`<a href="/?${new URLSearchParams([...params].filter(([k]) => k !== 'before')).toString()}">← newest</a>` : ''}
      ${params.has('before') ? html`<a id="older" href="/?${params.toString()}">older →</a>` : ''}
    </div>
    ${
      audit.length > 0
        ? html`<h2>Pause and resume</h2>
            <ul>
              ${audit.map((a) => html`<li>${a.at}: <b>${a.action}</b> by ${a.by}${a.reason ? html`: ${a.reason}` : ''}</li>`)}
            </ul>`
        : ''
    }`;
}
