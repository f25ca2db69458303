import type { AlertmanagerClient, PostableAlert } from '../alertmanager/client.js';
import { redactUrl } from '../http/redact.js';
import { cap } from './env.js';
import type { EscalationNotice, EscalationTarget, Notice } from './types.js';

export const ESCALATION_ALERTNAME = 'RemediationEscalated';
export const PAUSED_ALERTNAME = 'RemediationPaused';
/** Per annotation: Alertmanager keeps them, but a page that carries megabytes helps nobody. */
const ANNOTATION_LIMIT = 8 * 1024;

/**
 * A `RemediationEscalated` alert posted to Alertmanager's API v2, routed like any other alert (needs
 * ALERTMANAGER_URL, the client silences use too). The run id, the steps tried and each attachment are
 * annotations, capped; the entry's labels are added to the alert's.
 */
export const alertmanager: EscalationTarget<AlertmanagerClient> = {
  kind: 'alertmanager',
  needs: 'ALERTMANAGER_URL',
  title: 'Alertmanager',
  configure: (_env, shared) => shared.alertmanager,
  describe: (client) => `Alertmanager ${redactUrl(client.baseUrl, 'origin')}`,
  send: (notice, client, ctx) => client.postAlerts([toAlert(notice)], ctx.signal),
};

export function toAlert(notice: Notice): PostableAlert {
  if (notice.kind === 'remediation-paused') {
    return {
      labels: { alertname: PAUSED_ALERTNAME, severity: 'page', reason: 'paused' },
      annotations: { summary: cap(notice.message, ANNOTATION_LIMIT) },
      startsAt: new Date().toISOString(),
    };
  }
  return {
    labels: {
      alertname: ESCALATION_ALERTNAME,
      severity: 'page',
      procedure: notice.procedure,
      target: notice.target,
      reason: notice.outcome,
      ...notice.labels,
    },
    annotations: {
      summary: cap(notice.message, ANNOTATION_LIMIT),
      description: cap(notice.reason ?? '', ANNOTATION_LIMIT),
      run_id: notice.runId,
      // Links people follow from the page: the run in remediator's console, and the runbook.
      ...(notice.runUrl ? { run_url: notice.runUrl } : {}),
      ...(notice.runbookUrl ? { runbook_url: notice.runbookUrl } : {}),
      tried: cap(tried(notice), ANNOTATION_LIMIT),
      ...Object.fromEntries(
        Object.entries(notice.attachments).map(([k, v]) => [
          k.replace(/[^a-zA-Z0-9_]/g, '_'),
          cap(JSON.stringify(v), ANNOTATION_LIMIT),
        ]),
      ),
    },
    startsAt: new Date().toISOString(),
    ...(notice.runUrl ? { generatorURL: notice.runUrl } : {}),
  };
}

/** The steps as a numbered list: `1. restart: failed (why)`. */
export function tried(notice: EscalationNotice): string {
  return notice.steps.map((s, i) => `${i + 1}. ${s.name}: ${s.status}${s.reason ? ` (${s.reason})` : ''}`).join('\n');
}
