import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { alertFingerprint, isZeroTime, normaliseTime, WebhookPayload } from '../../../src/alertmanager/payload.js';
import { formatPath } from '../../../src/receiver/webhook.js';

interface HostileCase {
  name: string;
  file?: string;
  expect: { status: number; path?: string };
}
const corpusDir = new URL('../../fixtures/hostile/', import.meta.url);
const corpus = (JSON.parse(readFileSync(new URL('index.json', corpusDir), 'utf8')) as { cases: HostileCase[] }).cases;
/** Corpus files that are JSON (the invalid-JSON ones are .txt and never reach the parser). */
const jsonCases = corpus.filter((c) => c.file?.endsWith('.json'));

/** What the parser says: the data, or the issue paths as the webhook answers them. */
function parse(body: unknown): { ok: true; data: WebhookPayload } | { ok: false; paths: string[] } {
  const r = WebhookPayload.safeParse(body);
  return r.success ? { ok: true, data: r.data } : { ok: false, paths: r.error.issues.map((i) => formatPath(i.path)) };
}

// ---------- generators of valid payloads ----------

const pad = (n: number, w = 2) => String(n).padStart(w, '0');
/** Go's RFC 3339 as Alertmanager writes it: 0..9 fraction digits, `Z` or an offset (±HH:MM). */
const goTime = fc
  .record({
    ms: fc.integer({ min: Date.UTC(1971, 0, 1), max: Date.UTC(2200, 0, 1) }),
    digits: fc.integer({ min: 0, max: 9 }),
    fraction: fc.integer({ min: 0, max: 999_999_999 }),
    offset: fc.oneof(
      fc.constant('Z'),
      fc
        .tuple(fc.constantFrom('+', '-'), fc.integer({ min: 0, max: 23 }), fc.integer({ min: 0, max: 59 }))
        .map(([s, h, m]) => `${s}${pad(h)}:${pad(m)}`),
    ),
  })
  .map(({ ms, digits, fraction, offset }) => {
    const base = new Date(ms).toISOString().slice(0, 19);
    const frac = digits === 0 ? '' : `.${String(fraction).padStart(9, '0').slice(0, digits)}`;
    return `${base}${frac}${offset}`;
  });
const zeroTime = fc.constant('0001-01-01T00:00:00Z');
const labelName = fc.stringMatching(/^[a-zA-Z_][a-zA-Z0-9_]{0,30}$/);
/** Label values: anything a string can hold, lone surrogates and control characters included. */
const labelValue = fc.oneof(
  fc.string({ maxLength: 50 }),
  fc.string({ unit: 'binary', maxLength: 50 }),
  fc.constantFrom('"} or vector(1) or {"', '$(id)', '../../etc/passwd', '-rf', 'a\r\nb', '\ud800', ''),
);
const labelSet = fc
  .dictionary(labelName, labelValue, { maxKeys: 8 })
  .chain((l) => fc.string({ minLength: 1, maxLength: 40 }).map((alertname) => ({ ...l, alertname })));
const unknownKeys = fc.dictionary(
  fc
    .stringMatching(/^[a-z][a-zA-Z_]{0,15}$/)
    .filter(
      (k) =>
        ![
          'status',
          'labels',
          'annotations',
          'startsAt',
          'endsAt',
          'generatorURL',
          'fingerprint',
          'version',
          'groupKey',
          'truncatedAlerts',
          'receiver',
          'alerts',
          'groupLabels',
          'commonLabels',
          'commonAnnotations',
          'externalURL',
          '__proto__',
          'constructor',
        ].includes(k),
    ),
  fc.jsonValue({ maxDepth: 2 }),
  { maxKeys: 3 },
);
const fingerprint = fc.stringMatching(/^[0-9a-f]{16}$/);
const validAlert = fc
  .record({
    status: fc.constantFrom('firing', 'resolved'),
    labels: labelSet,
    annotations: fc.option(fc.dictionary(labelName, labelValue, { maxKeys: 4 }), { nil: undefined }),
    startsAt: goTime,
    endsAt: fc.option(fc.oneof(goTime, zeroTime), { nil: undefined }),
    generatorURL: fc.option(fc.webUrl(), { nil: undefined }),
    fingerprint,
    extra: unknownKeys,
  })
  .map(({ extra, ...a }) => ({ ...extra, ...Object.fromEntries(Object.entries(a).filter(([, v]) => v !== undefined)) }));
const validPayload = fc
  .record({
    status: fc.constantFrom('firing', 'resolved'),
    alerts: fc.array(validAlert, { maxLength: 5 }),
    receiver: fc.string(),
    groupKey: fc.string({ maxLength: 100 }),
    truncatedAlerts: fc.nat(),
    groupLabels: fc.dictionary(labelName, labelValue, { maxKeys: 3 }),
    externalURL: fc.webUrl(),
    extra: unknownKeys,
  })
  .map(({ extra, ...p }) => ({ ...extra, version: '4', ...p }));

describe('alertmanager/payload', () => {
  describe('the hostile corpus (test/fixtures/hostile)', () => {
    const refused = jsonCases.filter((c) => c.expect.status === 400);
    it('has cases', () => {
      expect(refused.length).toBeGreaterThan(40);
    });
    it.each(refused.map((c) => [c.name, (c.expect.path ?? '').slice(0, 40), c] as const))(
      '%s: refused, naming %s',
      (_name, _path, c) => {
        const body: unknown = JSON.parse(readFileSync(new URL(c.file!, corpusDir), 'utf8'));
        const r = parse(body);
        expect(r.ok).toBe(false);
        if (!r.ok) expect(r.paths).toContain(c.expect.path);
      },
    );
    it.each(jsonCases.filter((c) => c.expect.status === 202).map((c) => [c.name, c] as const))('%s: accepted', (_name, c) => {
      const body: unknown = JSON.parse(readFileSync(new URL(c.file!, corpusDir), 'utf8'));
      expect(parse(body)).toMatchObject({ ok: true });
    });
  });

  it('accepts the payloads Alertmanager 0.25 sent, and computes the fingerprints it sent', () => {
    for (const name of ['firing-v0.25.json', 'resolved-v0.25.json', 'mixed-group-v0.25.json']) {
      const body: unknown = JSON.parse(readFileSync(new URL(`../../fixtures/alertmanager/${name}`, import.meta.url), 'utf8'));
      const r = parse(body);
      expect(r.ok, name).toBe(true);
      if (r.ok) for (const a of r.data.alerts) expect(alertFingerprint(a.labels)).toBe(a.fingerprint);
    }
  });

  it('strips __proto__ keys: nothing is inherited from a forged prototype, at any level', () => {
    const text =
      '{"version":"4","status":"firing","__proto__":{"receiver":{"evil":1},"groupKey":42},"alerts":[{"status":"firing",' +
      '"labels":{"alertname":"A","__proto__":{"instance":"forged","procedure":"P1-001"}},"__proto__":{"endsAt":"not a time","generatorURL":{"x":1}},' +
      '"startsAt":"2026-01-01T00:00:00Z","fingerprint":"0123456789abcdef"}]}';
    const r = parse(JSON.parse(text));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.data.receiver).toBeUndefined();
    expect(r.data.groupKey).toBeUndefined();
    const a = r.data.alerts[0]!;
    expect(a.endsAt).toBeUndefined();
    expect(a.generatorURL).toBeUndefined();
    expect(a.labels.instance).toBeUndefined();
    expect(a.labels.procedure).toBeUndefined();
    expect(Object.getPrototypeOf(a.labels)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).instance).toBeUndefined();
  });

  it('limits: 10,000 alerts, 16 KiB label values, 1 KiB label names', () => {
    const alert = {
      status: 'firing',
      labels: { alertname: 'A' },
      startsAt: '2026-01-01T00:00:00Z',
      fingerprint: '0123456789abcdef',
    };
    expect(parse({ version: '4', status: 'firing', alerts: Array(10_000).fill(alert) }).ok).toBe(true);
    expect(parse({ version: '4', status: 'firing', alerts: Array(10_001).fill(alert) })).toEqual({
      ok: false,
      paths: ['alerts'],
    });
    const big = (x: string) => ({ version: '4', status: 'firing', alerts: [{ ...alert, labels: { alertname: 'A', x } }] });
    expect(parse(big('v'.repeat(16 * 1024))).ok).toBe(true);
    expect(parse(big('v'.repeat(16 * 1024 + 1)))).toEqual({ ok: false, paths: ['alerts[0].labels.x'] });
  });

  describe('properties', () => {
    it('never throws on arbitrary JSON: success, or a ZodError whose issues each have a path and a message', () => {
      fc.assert(
        fc.property(
          fc.oneof(
            fc.jsonValue(),
            fc.jsonValue().map((v) => ({ version: '4', status: 'firing', alerts: [v] })),
            fc.jsonValue().map((v) => ({
              version: '4',
              status: 'firing',
              alerts: [{ status: 'firing', labels: v, startsAt: v, fingerprint: v }],
            })),
          ),
          (body) => {
            const r = WebhookPayload.safeParse(body);
            if (!r.success) {
              expect(r.error).toBeInstanceOf(z.ZodError);
              expect(r.error.issues.length).toBeGreaterThan(0);
              for (const i of r.error.issues) {
                expect(Array.isArray(i.path)).toBe(true);
                expect(typeof i.message).toBe('string');
                expect(typeof formatPath(i.path)).toBe('string');
              }
            }
          },
        ),
        { numRuns: 1000 },
      );
    });

    it('never throws on arbitrary JavaScript values either (what a lax body parser could hand over)', () => {
      fc.assert(
        fc.property(
          fc.anything({
            withBigInt: true,
            withDate: true,
            withMap: true,
            withSet: true,
            withNullPrototype: true,
            withTypedArray: true,
            withSparseArray: true,
          }),
          (body) => {
            expect(() => WebhookPayload.safeParse(body)).not.toThrow();
          },
        ),
        { numRuns: 500 },
      );
    });

    it('accepts every valid payload: any label set, 0..9 fraction digits, any offset, unknown keys; labels kept as sent', () => {
      fc.assert(
        fc.property(validPayload, (body) => {
          const r = parse(body);
          if (!r.ok) throw new Error(`refused ${JSON.stringify(r.paths)} for ${JSON.stringify(body).slice(0, 500)}`);
          expect(r.data.alerts.map((a) => a.labels)).toEqual(body.alerts.map((a) => a.labels));
          expect(r.data.alerts.map((a) => a.fingerprint)).toEqual(body.alerts.map((a) => a.fingerprint));
        }),
        { numRuns: 500 },
      );
    });

    it('every time it accepts is a real instant: normaliseTime never throws and keeps the instant to the millisecond', () => {
      fc.assert(
        fc.property(goTime, (t) => {
          const r = parse({
            version: '4',
            status: 'firing',
            alerts: [{ status: 'firing', labels: { alertname: 'A' }, startsAt: t, fingerprint: '0123456789abcdef' }],
          });
          expect(r.ok).toBe(true);
          const iso = normaliseTime(t);
          expect(iso).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
          expect(isZeroTime(t)).toBe(false);
        }),
        { numRuns: 500 },
      );
    });

    it('no string the time schema accepts makes new Date() fail (or a 400 would turn into a 503)', () => {
      const timeLike = fc
        .tuple(
          fc.integer({ min: 0, max: 9999 }),
          fc.integer({ min: 0, max: 99 }),
          fc.integer({ min: 0, max: 99 }),
          fc.integer({ min: 0, max: 99 }),
          fc.integer({ min: 0, max: 99 }),
          fc.integer({ min: 0, max: 99 }),
          fc.constantFrom('', '.5', '.123456789', '.1234567890'),
          fc.oneof(
            fc.constant('Z'),
            fc
              .tuple(fc.constantFrom('+', '-'), fc.integer({ min: 0, max: 99 }), fc.integer({ min: 0, max: 99 }))
              .map(([s, h, m]) => `${s}${pad(h)}:${pad(m)}`),
          ),
        )
        .map(([y, mo, d, h, mi, s, f, o]) => `${pad(y, 4)}-${pad(mo)}-${pad(d)}T${pad(h)}:${pad(mi)}:${pad(s)}${f}${o}`);
      fc.assert(
        fc.property(timeLike, (t) => {
          const r = parse({
            version: '4',
            status: 'firing',
            alerts: [{ status: 'firing', labels: { alertname: 'A' }, startsAt: t, fingerprint: '0123456789abcdef' }],
          });
          if (r.ok) expect(() => normaliseTime(t), t).not.toThrow();
          else expect(r.paths).toEqual(['alerts[0].startsAt']);
        }),
        { numRuns: 2000 },
      );
    });

    it('one wrong field in a valid payload is refused, and the answer names that field', () => {
      type Mutation = readonly [string, (p: Record<string, unknown>) => unknown];
      const mutations: Mutation[] = [
        ['version', (p: Record<string, unknown>) => (p.version = 4)],
        ['status', (p: Record<string, unknown>) => (p.status = 'FIRING')],
        [
          'alerts[0].startsAt',
          (p: Record<string, unknown>) => ((p.alerts as Record<string, unknown>[])[0]!.startsAt = 'yesterday'),
        ],
        [
          'alerts[0].fingerprint',
          (p: Record<string, unknown>) => ((p.alerts as Record<string, unknown>[])[0]!.fingerprint = 'XYZ'),
        ],
        [
          'alerts[0].labels',
          (p: Record<string, unknown>) =>
            delete ((p.alerts as Record<string, unknown>[])[0]!.labels as Record<string, unknown>).alertname,
        ],
        ['alerts[0].status', (p: Record<string, unknown>) => ((p.alerts as Record<string, unknown>[])[0]!.status = 1)],
      ];
      const mutation = fc.constantFrom(...mutations);
      fc.assert(
        fc.property(
          validPayload.filter((p) => p.alerts.length > 0),
          mutation,
          (body, [path, mutate]) => {
            const copy = structuredClone(body) as Record<string, unknown>;
            mutate(copy);
            const r = parse(copy);
            expect(r.ok).toBe(false);
            if (!r.ok) expect(r.paths).toContain(path);
          },
        ),
        { numRuns: 300 },
      );
    });
  });
});
