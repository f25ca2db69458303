import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createRedactor, envRedactor } from '../../src/redact.js';
import { escapePromqlString } from '../../src/template.js';

const SECRET = 's3cr3t-"token"\\/value';

describe('redact', () => {
  it('replaces every form of a secret (as is, JSON, PromQL, URL-encoded) in plain data, deeply, as a copy', () => {
    const redact = createRedactor([{ name: 'API_TOKEN', value: SECRET }]);
    const record = {
      spec: { url: `http://h/x?key=${encodeURIComponent(SECRET)}`, headers: { Authorization: `Bearer ${SECRET}` } },
      output: `HTTP 401\n{"echo":${JSON.stringify(SECRET)}}`,
      query: `up{t="${escapePromqlString(SECRET)}"}`,
      list: [SECRET, 1, null, true],
      [SECRET]: 'as a key too',
    };
    const out = redact(record);
    expect(JSON.stringify(out)).not.toContain('s3cr3t');
    expect(out.spec.headers.Authorization).toBe('Bearer [redacted env.API_TOKEN]');
    expect(out.list).toEqual(['[redacted env.API_TOKEN]', 1, null, true]);
    expect(record.list[0]).toBe(SECRET); // the input is left as it was
  });

  it('names only the env variables the procedure uses, and leaves values under 4 characters alone', () => {
    const procedure = { steps: [{ action: { exec: { command: ['x'], env: { T: '{{ env.TOKEN }}', R: '{{env.REGION}}' } } } }] };
    const redact = envRedactor(procedure, { TOKEN: 'tok-123456', REGION: 'eu', OTHER: 'other-value' });
    expect(redact({ a: 'tok-123456 in eu with other-value' })).toEqual({ a: '[redacted env.TOKEN] in eu with other-value' });
  });

  it('no form of any secret survives (property)', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 4, maxLength: 40 }), fc.string(), fc.string(), (secret, before, after) => {
        const redact = createRedactor([{ name: 'S', value: secret }]);
        for (const form of [secret, JSON.stringify(secret).slice(1, -1), escapePromqlString(secret)]) {
          const out = redact({ text: `${before}${form}${after}` }).text;
          expect(out.includes(`${before}${form}${after}`) && form.length > 0 && !`${before}${after}`.includes(form)).toBe(false);
          expect(out).toContain('[redacted env.S]');
        }
      }),
      { numRuns: 500 },
    );
  });
});
