import { z } from 'zod';
import { Alert, WebhookPayload, alertFingerprint } from './payload.js';

/**
 * Alerts as operators have them at hand, for `remediator plan`: a webhook payload (version 4), one webhook alert or a
 * list of them, `amtool alert query -o json` output, or Alertmanager API v2 alerts (`GET /api/v2/alerts`, whose
 * `status` is an object and which only lists unresolved alerts; or postable ones as `amtool alert add` sends, which
 * may lack startsAt and fingerprint).
 */
const GettableAlert = z.looseObject({
  labels: z.record(z.string(), z.string()),
  annotations: z.record(z.string(), z.string()).optional(),
  startsAt: z.string().optional(),
  endsAt: z.string().optional(),
  generatorURL: z.string().optional(),
  fingerprint: z.string().optional(),
  status: z.looseObject({ state: z.string() }).optional(),
});

export class AlertInputError extends Error {
  override readonly name = 'AlertInputError';
}

export function alertsFrom(json: unknown, source: string): Alert[] {
  const asPayload = WebhookPayload.safeParse(json);
  if (asPayload.success) return asPayload.data.alerts;
  const list = Array.isArray(json) ? json : [json];
  const asWebhookAlerts = z.array(Alert).safeParse(list);
  if (asWebhookAlerts.success) return asWebhookAlerts.data;
  const asV2 = z.array(GettableAlert).safeParse(list);
  if (asV2.success) {
    const now = new Date().toISOString();
    const converted = asV2.data.map((a) => {
      const ended = a.endsAt !== undefined && Date.parse(a.endsAt) > 0 && Date.parse(a.endsAt) <= Date.now();
      return {
        status: ended ? 'resolved' : 'firing',
        labels: a.labels,
        annotations: a.annotations ?? {},
        startsAt: a.startsAt ?? now,
        ...(a.endsAt ? { endsAt: a.endsAt } : {}),
        ...(a.generatorURL ? { generatorURL: a.generatorURL } : {}),
        fingerprint: a.fingerprint ?? alertFingerprint(a.labels),
      };
    });
    const checked = z.array(Alert).safeParse(converted);
    if (checked.success) return checked.data;
    throw new AlertInputError(`${source}: Alertmanager API v2 alerts, but not usable:\n${z.prettifyError(checked.error)}`);
  }
  throw new AlertInputError(
    `${source}: neither an Alertmanager webhook payload, webhook alerts, nor API v2 / amtool -o json alerts:\n${z.prettifyError(asPayload.error)}`,
  );
}
