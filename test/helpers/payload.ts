/**
 * The one builder of Alertmanager webhook payloads (v4, as Alertmanager 0.25+ sends them) for tests:
 *
 *   webhookPayload({ alertname: 'TargetDown', instance: 'db-1' })              // one firing alert
 *   webhookPayload({ alertname: 'A', instance: 'h', status: 'resolved' }, …)    // several, in one group
 *   { ...webhookPayload(spec), receiver: 'other' }                               // other top-level fields
 *
 * Labels are alertname, instance (when given), then `labels`; the fingerprint is computed from
 * them as Alertmanager does unless given. startsAt defaults to a fixed time (tests that send it run with a long
 * MAX_INCIDENT_AGE); pass `startsAt: new Date().toISOString()` for an alert that starts now.
 */
import { alertFingerprint } from '../../src/alertmanager/payload.js';

export const FIXED_STARTS_AT = '2026-11-28T07:00:00.000Z';
/** Alertmanager's endsAt of an alert that has not ended. */
export const NOT_ENDED = '0001-01-01T00:00:00Z';

export interface AlertSpec {
  alertname: string;
  instance?: string;
  /** More labels; they win over the defaults. */
  labels?: Record<string, string>;
  /** Default: a summary naming the instance. */
  annotations?: Record<string, string>;
  status?: 'firing' | 'resolved';
  startsAt?: string;
  /** Default: NOT_ENDED when firing, now when resolved. */
  endsAt?: string;
  /** Default: computed from the labels. */
  fingerprint?: string;
}

export interface WebhookAlert {
  status: 'firing' | 'resolved';
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  generatorURL: string;
  fingerprint: string;
}

export interface WebhookPayload {
  version: '4';
  groupKey: string;
  truncatedAlerts: number;
  status: 'firing' | 'resolved';
  receiver: string;
  groupLabels: Record<string, string>;
  commonLabels: Record<string, string>;
  commonAnnotations: Record<string, string>;
  externalURL: string;
  alerts: WebhookAlert[];
}

/** One alert of a webhook payload. */
export function webhookAlert(a: AlertSpec): WebhookAlert {
  const labels = {
    alertname: a.alertname,
    ...(a.instance !== undefined ? { instance: a.instance } : {}),
    ...a.labels,
  };
  const status = a.status ?? 'firing';
  return {
    status,
    labels,
    annotations: a.annotations ?? { summary: `${a.instance ?? a.alertname} is broken` },
    startsAt: a.startsAt ?? FIXED_STARTS_AT,
    endsAt: a.endsAt ?? (status === 'resolved' ? new Date().toISOString() : NOT_ENDED),
    generatorURL: 'http://prometheus.test:9090/graph',
    fingerprint: a.fingerprint ?? alertFingerprint(labels),
  };
}

/** A webhook payload with one alert per spec, grouped by the first alertname; resolved when all are. */
export function webhookPayload(...alerts: AlertSpec[]): WebhookPayload {
  return {
    version: '4',
    groupKey: `{}:{alertname="${alerts[0]?.alertname ?? ''}"}`,
    truncatedAlerts: 0,
    status: alerts.every((a) => a.status === 'resolved') ? 'resolved' : 'firing',
    receiver: 'remediator',
    groupLabels: {},
    commonLabels: {},
    commonAnnotations: {},
    externalURL: 'http://alertmanager.test:9093',
    alerts: alerts.map(webhookAlert),
  };
}
