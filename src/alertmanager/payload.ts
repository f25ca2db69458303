import { z } from 'zod';

/**
 * Alertmanager's webhook payload, version 4: only the fields remediator uses, unknown keys accepted
 * (newer Alertmanagers add notification_reason, routeLabels). See Alertmanager's webhook documentation; captured payloads are in test/fixtures/alertmanager/.
 */

/** Go's RFC 3339: fraction of 0..9 digits, `Z` or an offset. Firing alerts carry the zero time as endsAt. */
const GoTime = z.iso.datetime({ offset: true });

/**
 * Bounds on what one payload may hold (issue 9, amplification): every field that is stored or worked on per alert
 * has a size, and a payload over one is a 400 naming the field. Alertmanager's own payloads are far below them.
 */
export const PAYLOAD_LIMITS = {
  /** Label (and annotation) names and values. */
  labelName: 1024,
  labelValue: 16 * 1024,
  /** Labels (or annotations) in one set. */
  labelsPerSet: 128,
  /** One alert's labels and annotations together, names and values, in characters. */
  alertLabelBytes: 64 * 1024,
  receiver: 1024,
  groupKey: 8 * 1024,
  externalURL: 4096,
  generatorURL: 8192,
  /** The schema's own ceiling; WEBHOOK_MAX_ALERTS (default 1000) is the one in force. */
  alerts: 10_000,
} as const;

const LabelSet = z
  .record(z.string().min(1).max(PAYLOAD_LIMITS.labelName), z.string().max(PAYLOAD_LIMITS.labelValue))
  .refine((l) => Object.keys(l).length <= PAYLOAD_LIMITS.labelsPerSet, {
    message: `at most ${PAYLOAD_LIMITS.labelsPerSet} entries`,
  });

const size = (set: Record<string, string> | undefined) =>
  Object.entries(set ?? {}).reduce((n, [k, v]) => n + k.length + v.length, 0);

export const Alert = z
  .looseObject({
    status: z.enum(['firing', 'resolved']),
    labels: LabelSet.refine((l) => typeof l.alertname === 'string' && l.alertname.length > 0, {
      message: 'every alert needs an alertname label',
    }),
    annotations: LabelSet.default({}),
    startsAt: GoTime,
    endsAt: GoTime.optional(),
    generatorURL: z.string().max(PAYLOAD_LIMITS.generatorURL).optional(),
    fingerprint: z.string().regex(/^[0-9a-f]{16}$/, 'expected 16 lower-case hex digits'),
  })
  .superRefine((a, ctx) => {
    if (size(a.labels) + size(a.annotations) > PAYLOAD_LIMITS.alertLabelBytes)
      ctx.addIssue({
        code: 'custom',
        path: ['annotations'],
        message: `labels and annotations of one alert may hold at most ${PAYLOAD_LIMITS.alertLabelBytes} characters together`,
      });
  });
export type Alert = z.infer<typeof Alert>;

export const WebhookPayload = z.looseObject({
  version: z.literal('4', { error: 'only Alertmanager webhook payload version "4" is supported' }),
  groupKey: z.string().max(PAYLOAD_LIMITS.groupKey).optional(),
  truncatedAlerts: z.number().int().min(0).optional(),
  receiver: z.string().max(PAYLOAD_LIMITS.receiver).optional(),
  status: z.enum(['firing', 'resolved']),
  alerts: z.array(Alert).max(PAYLOAD_LIMITS.alerts),
  groupLabels: LabelSet.optional(),
  commonLabels: LabelSet.optional(),
  commonAnnotations: LabelSet.optional(),
  externalURL: z.string().max(PAYLOAD_LIMITS.externalURL).optional(),
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

/**
 * The schema's verdict without zod's machinery, for the payloads that obviously pass (issue 13: zod was a tenth of
 * the receiver's CPU per webhook): the same checks written out, conservatively. It answers only "passes, and this is
 * the parsed payload", exactly what WebhookPayload.safeParse would return (the body itself, with a missing
 * `annotations` set to `{}` as the schema's default does, on a copy), or undefined for
 * anything else, a doubtful case included (a `__proto__` key, which zod's records drop; a number it would have to
 * think about): then zod decides, and names the field of whatever fails. test/unit/alertmanager/payload.test.ts
 * holds it to zod's answer.
 */
export function obviouslyValidPayload(body: unknown): WebhookPayload | undefined {
  if (!isPlainObject(body)) return undefined;
  const p = body;
  if (p.version !== '4' || (p.status !== 'firing' && p.status !== 'resolved')) return undefined;
  if (!optionalString(p.groupKey, PAYLOAD_LIMITS.groupKey) || !optionalString(p.receiver, PAYLOAD_LIMITS.receiver))
    return undefined;
  if (!optionalString(p.externalURL, PAYLOAD_LIMITS.externalURL)) return undefined;
  if (
    p.truncatedAlerts !== undefined &&
    !(Number.isInteger(p.truncatedAlerts) && (p.truncatedAlerts as number) >= 0 && (p.truncatedAlerts as number) < 2 ** 31)
  )
    return undefined;
  for (const set of [p.groupLabels, p.commonLabels, p.commonAnnotations])
    if (set !== undefined && labelSetSize(set) < 0) return undefined;
  if (!Array.isArray(p.alerts) || p.alerts.length > PAYLOAD_LIMITS.alerts) return undefined;
  for (const a of p.alerts as unknown[]) if (!obviouslyValidAlert(a)) return undefined;
  // Only now, when every check passed: the schema's default for a missing `annotations` (on copies: the body is
  // not changed).
  const alerts = p.alerts as Record<string, unknown>[];
  if (alerts.every((a) => a.annotations !== undefined)) return p as WebhookPayload;
  return { ...p, alerts: alerts.map((a) => (a.annotations === undefined ? { ...a, annotations: {} } : a)) } as WebhookPayload;
}

const FINGERPRINT = /^[0-9a-f]{16}$/;
const GO_TIME = (GoTime._zod.def as { pattern: RegExp }).pattern;

function obviouslyValidAlert(a: unknown): boolean {
  if (!isPlainObject(a)) return false;
  if (a.status !== 'firing' && a.status !== 'resolved') return false;
  if (typeof a.fingerprint !== 'string' || !FINGERPRINT.test(a.fingerprint)) return false;
  if (typeof a.startsAt !== 'string' || !GO_TIME.test(a.startsAt)) return false;
  if (a.endsAt !== undefined && (typeof a.endsAt !== 'string' || !GO_TIME.test(a.endsAt))) return false;
  if (!optionalString(a.generatorURL, PAYLOAD_LIMITS.generatorURL)) return false;
  const labels = labelSetSize(a.labels);
  if (labels < 0) return false;
  const alertname = (a.labels as Record<string, unknown>).alertname;
  if (typeof alertname !== 'string' || alertname.length === 0) return false;
  const annotations = a.annotations === undefined ? 0 : labelSetSize(a.annotations);
  return annotations >= 0 && labels + annotations <= PAYLOAD_LIMITS.alertLabelBytes;
}

/** A label set's size in characters (names and values) when it obviously passes LabelSet, else -1. */
function labelSetSize(set: unknown): number {
  if (!isPlainObject(set)) return -1;
  let size = 0;
  let count = 0;
  for (const key in set) {
    if (!Object.hasOwn(set, key)) return -1;
    const value = set[key];
    if (key.length === 0 || key.length > PAYLOAD_LIMITS.labelName || key === '__proto__') return -1;
    if (typeof value !== 'string' || value.length > PAYLOAD_LIMITS.labelValue) return -1;
    size += key.length + value.length;
    count++;
  }
  return count <= PAYLOAD_LIMITS.labelsPerSet ? size : -1;
}

function optionalString(value: unknown, max: number): boolean {
  return value === undefined || (typeof value === 'string' && value.length <= max);
}

/** What JSON.parse makes of `{…}`: an object whose prototype is Object.prototype. */
function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype;
}
