import { createHttpClient, expectOk } from '../http/client.js';
import { redactUrl } from '../http/redact.js';
import { tried } from './alertmanager.js';
import { cap, urlFromEnv } from './env.js';
import { TargetConfigError, type EscalationTarget, type Notice } from './types.js';

/** PagerDuty's Events API v2 endpoint; ESCALATION_PAGERDUTY_URL overrides it (a proxy, a regional endpoint, tests). */
export const PAGERDUTY_EVENTS_URL = 'https://events.pagerduty.com/v2/enqueue';
const client = createHttpClient({ maxBytes: 64 * 1024 });
/** PagerDuty takes events up to 512 KiB and summaries up to 1024 characters. */
const SUMMARY_LIMIT = 1024;
const DETAIL_LIMIT = 8 * 1024;

interface PagerDutySettings {
  url: string;
  /** The integration's routing key: a secret (it lets anyone page), kept out of messages and logs. */
  routingKey: string;
}

/**
 * A PagerDuty incident through the Events API v2 (ESCALATION_PAGERDUTY_ROUTING_KEY): a `trigger` event whose
 * dedup_key is the run id, so the same run's escalations group into one incident; the run's link and the steps
 * tried ride along. 202 is delivered; 429 and 5xx are retried, other 4xx (a bad key, an invalid event) are not.
 */
export const pagerduty: EscalationTarget<PagerDutySettings> = {
  kind: 'pagerduty',
  title: 'PagerDuty',
  needs: 'ESCALATION_PAGERDUTY_ROUTING_KEY',
  configure(env) {
    const routingKey = env.ESCALATION_PAGERDUTY_ROUTING_KEY;
    if (routingKey === undefined || routingKey === '') return undefined;
    if (!/^[A-Za-z0-9]{20,64}$/.test(routingKey))
      throw new TargetConfigError('ESCALATION_PAGERDUTY_ROUTING_KEY: expected an integration key (32 letters and digits)');
    return { url: urlFromEnv(env, 'ESCALATION_PAGERDUTY_URL') ?? PAGERDUTY_EVENTS_URL, routingKey };
  },
  describe: (s) => `PagerDuty Events API v2 at ${redactUrl(s.url, 'origin')}`,
  async send(notice, s, ctx) {
    const res = await client.request({
      method: 'POST',
      url: s.url,
      json: pagerDutyEvent(notice, s.routingKey),
      signal: ctx.signal,
      timeoutMs: ctx.timeoutMs,
    });
    expectOk(res, 'PagerDuty Events API', s.url);
  },
};

/** The Events API v2 `trigger` event for a notice. */
export function pagerDutyEvent(notice: Notice, routingKey: string): Record<string, unknown> {
  if (notice.kind === 'remediation-paused') {
    return {
      routing_key: routingKey,
      event_action: 'trigger',
      dedup_key: `remediator-paused-${notice.at}`,
      payload: {
        summary: cap(notice.message, SUMMARY_LIMIT),
        source: 'remediator',
        severity: 'critical',
        custom_details: { example: notice.example },
      },
    };
  }
  return {
    routing_key: routingKey,
    event_action: 'trigger',
    dedup_key: notice.runId,
    payload: {
      summary: cap(`${notice.procedure} ${notice.outcome} on ${notice.target}: ${notice.message}`, SUMMARY_LIMIT),
      source: notice.target,
      severity: notice.outcome === 'succeeded' ? 'info' : 'critical',
      component: notice.procedure,
      group: notice.alert.labels.alertname,
      class: notice.outcome,
      custom_details: {
        reason: cap(notice.reason ?? '', DETAIL_LIMIT),
        tried: cap(tried(notice), DETAIL_LIMIT),
        labels: notice.labels,
        attachments: cap(JSON.stringify(notice.attachments), DETAIL_LIMIT),
      },
    },
    ...(notice.runUrl ? { links: [{ href: notice.runUrl, text: `remediator run ${notice.runId}` }] } : {}),
  };
}
