import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { canonicalTarget, incidentJobId, redisKeys, sha256Hex } from '../../../src/queue/keys.js';

describe('queue/keys', () => {
  it('incident ids and key digests are the SHA-256 they always were (ids stored by every version must match)', () => {
    expect(incidentJobId('P-1', '0123456789abcdef', '2026-11-28T07:17:26.321Z')).toBe(
      `inc-${createHash('sha256').update('P-1|0123456789abcdef|2026-11-28T07:17:26.321Z').digest('hex').slice(0, 40)}`,
    );
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (text) => {
        expect(sha256Hex(text)).toBe(createHash('sha256').update(text).digest('hex'));
      }),
    );
  });

  // Issue 9: spellings of one target must share one lease and one budget, not multiply them.
  it.each([
    ['host-1', 'host-1'],
    ['HOST-1', 'host-1'],
    [' host-1 ', 'host-1'],
    ['host-1\n', 'host-1'],
    ['host\u200b-1', 'host-1'],
    ['\u202ehost-1', 'host-1'],
    ['ｈｏｓｔ－１', 'host-1'],
    ['host-1:9100', 'host-1'],
    ['HOST-1:09100', 'host-1'],
    ['host-1.', 'host-1'],
    ['10.0.0.1:9100', '10.0.0.1'],
    ['[::1]:9100', '[::1]'],
    ['ns/pod-1', 'ns/pod-1'],
    ['NS / Pod-1', 'ns/pod-1'],
  ])('canonicalTarget(%j) = %j', (given, canonical) => {
    expect(canonicalTarget(given)).toBe(canonical);
  });

  it('every spelling of a target maps to the same lease and budget key (property)', () => {
    const keys = redisKeys('p');
    const noise = fc.constantFrom('', ' ', '\t', '\u200b', '\u200d', '\ufeff', '\u202e', '\u00a0');
    const base = fc.stringMatching(/^[a-z][a-z0-9-]{0,20}$/);
    fc.assert(
      fc.property(
        base,
        fc.array(fc.tuple(fc.nat(), noise)),
        fc.boolean(),
        fc.integer({ min: 1, max: 65535 }),
        (host, inserts, upper, port) => {
          let variant = upper ? host.toUpperCase() : host;
          for (const [at, c] of inserts) {
            const i = at % (variant.length + 1);
            variant = variant.slice(0, i) + c + variant.slice(i);
          }
          if (port % 2 === 0) variant += `:${port}`;
          expect(canonicalTarget(variant)).toBe(host);
          expect(keys.lease(variant)).toBe(keys.lease(host));
          expect(keys.budget('P', variant)).toBe(keys.budget('P', host));
          expect(canonicalTarget(canonicalTarget(variant))).toBe(canonicalTarget(variant));
        },
      ),
      { numRuns: 1000 },
    );
  });

  it('visible ASCII takes a shortcut (case folding only) with the same result as the Unicode path (property)', () => {
    const full = (t: string) =>
      t
        .normalize('NFKC')
        .replace(/[\p{Cc}\p{Cf}\p{Z}\s]/gu, '')
        .toLowerCase()
        .replace(/^(\[[^\]]*\]|[^:/[\]]+):\d+$/, '$1')
        .replace(/^([^/]+)\.$/, '$1');
    const ascii = fc.string({ unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)), maxLength: 40 });
    fc.assert(
      fc.property(ascii, (t) => {
        expect(canonicalTarget(t)).toBe(full(t));
      }),
      { numRuns: 5000 },
    );
    for (let c = 0x21; c <= 0x7e; c++)
      expect(canonicalTarget(`H${String.fromCharCode(c)}:1`)).toBe(full(`H${String.fromCharCode(c)}:1`));
  });

  it('different targets stay apart', () => {
    const keys = redisKeys('p');
    expect(keys.lease('host-1')).not.toBe(keys.lease('host-2'));
    expect(keys.lease('ns-a/pod')).not.toBe(keys.lease('ns-b/pod'));
  });
});
