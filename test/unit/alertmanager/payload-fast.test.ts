import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { obviouslyValidPayload, PAYLOAD_LIMITS, WebhookPayload } from '../../../src/alertmanager/payload.js';

/**
 * obviouslyValidPayload (the receiver's shortcut past zod) may only ever say what zod says: when it answers, zod
 * accepts the same body and parses it to the same value; when in doubt it answers nothing and zod decides.
 */
function agreesWithZod(body: unknown): 'fast' | 'zod' {
  const before = JSON.stringify(body);
  const fast = obviouslyValidPayload(body);
  expect(JSON.stringify(body), 'the body is not changed').toBe(before);
  if (fast === undefined) return 'zod';
  const r = WebhookPayload.safeParse(body);
  expect(r.success, 'zod accepts what the shortcut accepts').toBe(true);
  if (r.success) expect(fast).toStrictEqual(r.data);
  return 'fast';
}

const corpusDir = new URL('../../fixtures/hostile/', import.meta.url);
const corpus = (
  JSON.parse(readFileSync(new URL('index.json', corpusDir), 'utf8')) as {
    cases: { name: string; file?: string; expect: { status: number } }[];
  }
).cases.filter((c) => c.file?.endsWith('.json'));

/** Mostly what Alertmanager sends, sometimes something else: the shortcut must agree with zod on both. */
const mostly = <T, U>(good: fc.Arbitrary<T>, bad: fc.Arbitrary<U>) =>
  fc.oneof({ arbitrary: good, weight: 12 }, { arbitrary: bad, weight: 1 });
const time = fc
  .tuple(
    fc.integer({ min: 0, max: Date.UTC(2200, 0, 1) }),
    mostly(fc.constantFrom('', '.1', '.123456789'), fc.constantFrom('junk', '.')),
    mostly(fc.constantFrom('Z', '+02:00', '-11:30'), fc.constantFrom('', '+24:00', 'z')),
  )
  .map(([ms, frac, off]) => `${new Date(ms).toISOString().slice(0, 19)}${frac}${off}`);
const text = mostly(fc.string({ maxLength: 20 }), fc.constantFrom('', '__proto__', 'constructor', 'a'.repeat(1025)));
const labelName = mostly(
  fc.string({ minLength: 1, maxLength: 20 }),
  fc.constantFrom('', '__proto__', 'constructor', 'n'.repeat(1025)),
);
const labels = fc.dictionary(labelName, mostly(fc.string({ maxLength: 30 }), fc.jsonValue({ maxDepth: 1 })), { maxKeys: 6 });
const alert = fc.record(
  {
    status: mostly(fc.constantFrom('firing', 'resolved'), fc.constantFrom('pending', 1)),
    labels: mostly(
      labels.map((l) => ({ ...l, alertname: 'A' })),
      fc.oneof(labels, fc.constant(null), fc.constant({ alertname: '' })),
    ),
    annotations: mostly(labels, fc.constant(null)),
    startsAt: mostly(time, fc.integer()),
    endsAt: time,
    generatorURL: mostly(fc.webUrl(), fc.constant('x'.repeat(PAYLOAD_LIMITS.generatorURL + 1))),
    fingerprint: mostly(fc.stringMatching(/^[0-9a-f]{16}$/), fc.constantFrom('0123456789ABCDEF', '0123', '')),
    extra: fc.jsonValue({ maxDepth: 1 }),
  },
  { requiredKeys: ['labels', 'startsAt', 'fingerprint'] },
);
const payload = fc.record(
  {
    version: mostly(fc.constant('4'), fc.constantFrom('3', 4)),
    status: mostly(fc.constantFrom('firing', 'resolved'), fc.constant('pending')),
    alerts: mostly(fc.array(alert, { maxLength: 4 }), fc.constant({})),
    receiver: mostly(fc.string(), fc.integer()),
    groupKey: text,
    truncatedAlerts: mostly(fc.nat(), fc.oneof(fc.integer({ min: -5, max: -1 }), fc.double(), fc.constant(2 ** 53))),
    groupLabels: labels,
    commonLabels: labels,
    commonAnnotations: labels,
    externalURL: mostly(fc.webUrl(), fc.constant(null)),
    extra: fc.jsonValue({ maxDepth: 1 }),
  },
  { requiredKeys: ['version', 'alerts'] },
);

describe('alertmanager/payload: the shortcut past zod', () => {
  it('takes the payloads Alertmanager sent, with zod’s result', () => {
    for (const name of ['firing-v0.25.json', 'resolved-v0.25.json', 'mixed-group-v0.25.json']) {
      const body: unknown = JSON.parse(readFileSync(new URL(`../../fixtures/alertmanager/${name}`, import.meta.url), 'utf8'));
      expect(agreesWithZod(body), name).toBe('fast');
    }
  });

  it('never takes a hostile case zod refuses, and agrees on those it accepts', () => {
    for (const c of corpus) {
      const body: unknown = JSON.parse(readFileSync(new URL(c.file!, corpusDir), 'utf8'));
      const how = agreesWithZod(body);
      if (c.expect.status === 400) expect(how, c.name).toBe('zod');
    }
  });

  it('whatever it takes, zod accepts and parses to the same value (property, JSON round trip as the receiver sees it)', () => {
    let fast = 0;
    fc.assert(
      fc.property(payload, (p) => {
        if (agreesWithZod(JSON.parse(JSON.stringify(p))) === 'fast') fast++;
      }),
      { numRuns: 3000 },
    );
    expect(fast).toBeGreaterThan(100);
  });
});
