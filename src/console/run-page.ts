import { isFinal, type RunRecord } from '../engine/record.js';
import { stepQuery } from '../receiver/operations.js';
import { html, path, type Html } from './html.js';
import { badge, bar, csrfField, type PageContext } from './layout.js';
import { fmt, runTimeline, slaLine } from './timeline.js';

function controls(run: RunRecord, ctx: PageContext, openEscalations: number): Html {
  const base = path('runs', run.id);
  const forms: Html[] = [];
  if (openEscalations > 0)
    forms.push(
      html`<form
        method="post"
        action="${base}/acknowledge"
        data-confirm="Acknowledge the escalation? Its RemediationEscalated alert is resolved in Alertmanager now."
      >
        ${csrfField(ctx)} <span class="badge escalated">escalation open</span>
        <input name="reason" maxlength="500" placeholder="reason (optional)" />
        <button type="submit" name="acknowledge">Acknowledge escalation</button>
      </form>`,
    );
  if (!isFinal(run.state)) {
    forms.push(
      run.cancelRequested
        ? html`<div class="banner">
            Cancel requested by <b>${run.cancelRequested.by}</b> at
            ${run.cancelRequested.at}${run.cancelRequested.reason ? html`: ${run.cancelRequested.reason}` : ''}.
            ${run.state === 'queued' ? 'The run ends before it starts.' : 'The current step finishes, then the run stops.'}
          </div>`
        : html`<form
            method="post"
            action="${base}/cancel"
            data-confirm="Cancel this run? A queued run ends at once; a running one after its current step."
          >
            ${csrfField(ctx)} <input name="reason" maxlength="500" placeholder="reason (optional)" />
            <button type="submit" class="danger" name="cancel">Cancel run</button>
          </form>`,
    );
  } else {
    forms.push(
      html`<form
        method="post"
        action="${base}/retry"
        data-confirm="Re-run this incident? A new run starts, subject to the target's lease and the procedure's budget."
      >
        ${csrfField(ctx)} <input name="reason" maxlength="500" placeholder="reason (optional)" />
        <button type="submit" class="primary" name="retry">Re-run</button>
      </form>`,
    );
  }
  return html`<div class="controls">${forms}</div>`;
}

function facts(run: RunRecord): Html {
  const actual = run.sla.actualMs ?? (run.startedAt ? Date.now() - Date.parse(run.startedAt) : undefined);
  const sla = run.sla.slaMs ?? 15 * 60_000;
  return html`<dl class="facts">
    <dt>State</dt>
    <dd>${badge(run.state)} ${run.reason ?? ''}</dd>
    <dt>Procedure</dt>
    <dd><b>${run.procedure}</b> ${run.title}</dd>
    <dt>Target</dt>
    <dd class="mono">${run.target}</dd>
    <dt>Alert</dt>
    <dd class="mono">${Object.entries(run.alert.labels).map(([k, v], i) => html`${i > 0 ? ', ' : ''}${k}="${v}"`)}</dd>
    ${
      Object.keys(run.alert.annotations).length > 0
        ? html`<dt>Annotations</dt>
            <dd>
              ${Object.entries(run.alert.annotations).map(([k, v]) => html`<div><span class="muted">${k}:</span> ${v}</div>`)}
            </dd>`
        : ''
    }
    <dt>Duration</dt>
    <dd>
      ${actual !== undefined ? html`${bar(actual, sla)} ${slaLine(run).join('')}` : html`<span class="muted">not started</span>`}
    </dd>
    ${
      run.rerunOf
        ? html`<dt>Re-run of</dt>
            <dd><a href="${path('runs', run.rerunOf)}" class="mono">${run.rerunOf}</a></dd>`
        : ''
    }
    ${
      run.reruns?.length
        ? html`<dt>Re-runs</dt>
            <dd>${run.reruns.map((id) => html`<a href="${path('runs', id)}" class="mono rerun">${id}</a> `)}</dd>`
        : ''
    }
    <dt>Run id</dt>
    <dd class="mono">${run.id}</dd>
    ${
      run.dryRun
        ? html`<dt>Mode</dt>
            <dd>dry run</dd>`
        : ''
    }
  </dl>`;
}

export function runPage(run: RunRecord, ctx: PageContext, openEscalations = 0): Html {
  const entries = runTimeline(run);
  return html`<h1>${badge(run.state)} ${run.procedure} on <span class="mono">${run.target}</span></h1>
    ${controls(run, ctx, openEscalations)} ${facts(run)}
    <h2>Timeline</h2>
    <ol class="timeline" id="timeline">
      ${entries.map((e) => {
        const chart =
          e.step !== undefined && stepQuery(run, e.step) !== undefined
            ? html`<div
                class="chart"
                data-chart="${path('runs', run.id, 'steps', String(e.step), 'chart')}?v=${run.steps[e.step]?.endedAt ?? run.steps[e.step]?.observed.length ?? 0}"
              ></div>`
            : '';
        return html`<li
          class="k-${e.kind}${e.status ? ` s-${e.status}` : ''}"
          ${e.step !== undefined ? html` data-step="${run.steps[e.step]?.name ?? ''}"` : ''}
        >
          <div class="entry-head"><b>${e.title}</b><time datetime="${e.at}">${e.at.replace('T', ' ').slice(0, 23)}</time></div>
          ${
            e.details.length > 0
              ? html`<ul class="details">
                  ${e.details.map((d) => html`<li>${d}</li>`)}
                </ul>`
              : ''
          }
          ${chart}
        </li>`;
      })}
    </ol>
    <p class="muted">
      Queue and lease wait:
      ${run.startedAt ? fmt(Date.parse(run.startedAt) - Date.parse(run.trigger.receivedAt)) : 'still waiting'}.
    </p>`;
}
