import { z } from 'zod';

/**
 * Alertmanager's webhook payload, version 4: only the fields remediator uses, unknown keys accepted
 * (newer Alertmanagers add notification_reason, routeLabels). See shared/reference §1.
 */

/** Go's RFC 3339: fraction of 0..9 digits, `Z` or an offset. Firing alerts carry the zero time as endsAt. */
const GoTime = z.iso.datetime({ offset: true });

const LabelSet = z.record(z.string().min(1).max(1024), z.string().max(16 * 1024));

export const Alert = z.looseObject({
  status: z.enum(['firing', 'resolved']),
  labels: LabelSet.refine((l) => typeof l.alertname === 'string' && l.alertname.length > 0, {
    message: 'every alert needs an alertname label',
  }),
  annotations: LabelSet.default({}),
  startsAt: GoTime,
  endsAt: GoTime.optional(),
  generatorURL: z.string().max(8192).optional(),
  fingerprint: z.string().regex(/^[0-9a-f]{16}$/, 'expected 16 lower-case hex digits'),
});
export type Alert = z.infer<typeof Alert>;

export const WebhookPayload = z.looseObject({
  version: z.literal('4', { error: 'only Alertmanager webhook payload version "4" is supported' }),
  groupKey: z
    .string()
    .max(64 * 1024)
    .optional(),
  truncatedAlerts: z.number().int().min(0).optional(),
  receiver: z.string().optional(),
  status: z.enum(['firing', 'resolved']),
  alerts: z.array(Alert).max(10_000),
  groupLabels: LabelSet.optional(),
  commonLabels: LabelSet.optional(),
  commonAnnotations: LabelSet.optional(),
  externalURL: z.string().optional(),
});
export type WebhookPayload = z.infer<typeof WebhookPayload>;

/** `0001-01-01T00:00:00Z` (Go's zero time) means "not set". */
export function isZeroTime(time: string | undefined): boolean {
  return time === undefined || new Date(time).getTime() <= 0;
}

/** One incident of one alert series: the same fingerprint refires with a new startsAt (reference §1.2). */
export function normaliseTime(time: string): string {
  return new Date(time).toISOString();
}

/** 64-bit FNV-1a over sorted label names and values, as Alertmanager computes alert fingerprints. */
export function alertFingerprint(labels: Record<string, string>): string {
  const PRIME = 0x100000001b3n;
  const MASK = (1n << 64n) - 1n;
  let h = 0xcbf29ce484222325n;
  const add = (b: number) => {
    h ^= BigInt(b);
    h = (h * PRIME) & MASK;
  };
  for (const name of Object.keys(labels).sort()) {
    for (const b of Buffer.from(name, 'utf8')) add(b);
    add(0xff);
    for (const b of Buffer.from(labels[name]!, 'utf8')) add(b);
    add(0xff);
  }
  return h.toString(16).padStart(16, '0');
}
