import { createHash } from 'node:crypto';
import type { Request, Response } from 'express';
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import { checkToken } from '../../../src/config.js';
import { bearerAuth, type AuthSettings } from '../../../src/receiver/auth.js';

const TOKEN = 'unit-token-0123456789abcdef';

/** Runs the middleware on a request with this Authorization header; what it answered, or 'next'. */
function check(
  authorization: string | undefined,
  auth: AuthSettings = { token: TOKEN },
): { result: 'next' | number; headers: Record<string, string>; body: unknown; rejected: number } {
  let status = 0;
  let body: unknown;
  const headers: Record<string, string> = {};
  let rejected = 0;
  const res = {
    status(s: number) {
      status = s;
      return res;
    },
    set(k: string, v: string) {
      headers[k] = v;
      return res;
    },
    json(b: unknown) {
      body = b;
      return res;
    },
  } as unknown as Response;
  const req = { headers: authorization === undefined ? {} : { authorization } } as Request;
  const next = vi.fn();
  bearerAuth(auth, () => rejected++)(req, res, next);
  return { result: next.mock.calls.length === 1 ? 'next' : status, headers, body, rejected };
}

describe('receiver/auth bearerAuth', () => {
  // Secure by default (issue 9): no token configured is not "open"; only the explicit opt-in is.
  it('refuses everything when no token is configured, unless ALLOW_UNAUTHENTICATED', () => {
    expect(check(undefined, {}).result).toBe(401);
    expect(check('Bearer anything', {}).result).toBe(401);
    expect(check(undefined, { allowUnauthenticated: false }).result).toBe(401);
    expect(check(undefined, { allowUnauthenticated: true }).result).toBe('next');
    expect(check('Bearer anything', { allowUnauthenticated: true }).result).toBe('next');
    // A token set wins over the opt-in.
    expect(check(undefined, { token: TOKEN, allowUnauthenticated: true }).result).toBe(401);
  });

  it('config: the token is trimmed and must be 16+ visible ASCII characters (property)', () => {
    expect(checkToken(`${TOKEN}\n`)).toEqual({ token: TOKEN });
    expect(checkToken(`  ${TOKEN}\r\n`)).toEqual({ token: TOKEN });
    expect('problem' in checkToken('short-token')).toBe(true);
    expect('problem' in checkToken('\n\n')).toBe(true);
    expect('problem' in checkToken('a token with spaces inside')).toBe(true);
    expect('problem' in checkToken('tökenwithumlaut-0123456789')).toBe(true);
    fc.assert(
      fc.property(fc.string({ minLength: 16 }), fc.constantFrom('', ' ', '\n', '\r\n', '\t'), (raw, pad) => {
        const r = checkToken(`${pad}${raw}${pad}`);
        if ('token' in r) {
          expect(r.token).toBe(r.token.trim());
          expect(r.token).toMatch(/^[\x21-\x7e]{16,}$/);
        } else if (raw.trim().length >= 8) expect(JSON.stringify(r)).not.toContain(raw.trim());
      }),
      { numRuns: 300 },
    );
  });

  it.each([
    ['the token', `Bearer ${TOKEN}`, 'next'],
    // RFC 9110 §11.1: the auth scheme is case-insensitive, so `bearer` and `BEARER` are accepted.
    ['lower-case scheme', `bearer ${TOKEN}`, 'next'],
    ['upper-case scheme', `BEARER ${TOKEN}`, 'next'],
    // Whitespace around the token is not part of it (Node trims header values; the middleware trims too).
    ['several spaces', `Bearer   ${TOKEN}`, 'next'],
    ['a tab', `Bearer\t${TOKEN}`, 'next'],
    ['trailing space', `Bearer ${TOKEN} `, 'next'],
    ['missing header', undefined, 401],
    ['empty header', '', 401],
    ['scheme only', 'Bearer', 401],
    ['scheme and space', 'Bearer ', 401],
    ['no scheme', TOKEN, 401],
    ['wrong scheme (Basic)', `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}`, 401],
    ['wrong scheme (Token)', `Token ${TOKEN}`, 401],
    ['no space after scheme', `Bearer${TOKEN}`, 401],
    ['wrong token', 'Bearer wrong-token-wrong-token', 401],
    ['a prefix of the token', `Bearer ${TOKEN.slice(0, -1)}`, 401],
    ['the first character', `Bearer ${TOKEN[0]}`, 401],
    ['token + suffix', `Bearer ${TOKEN}x`, 401],
    ['token twice', `Bearer ${TOKEN}${TOKEN}`, 401],
    ['token, comma, token', `Bearer ${TOKEN}, Bearer ${TOKEN}`, 401],
    ['upper-cased token', `Bearer ${TOKEN.toUpperCase()}`, 401],
    ['token with a NUL after it', `Bearer ${TOKEN}\0`, 401],
    ['the sha256 of the token', `Bearer ${createHash('sha256').update(TOKEN).digest('hex')}`, 401],
  ] as const)('%s → %s', (_what, header, expected) => {
    const r = check(header);
    expect(r.result).toBe(expected);
    if (expected === 401) {
      expect(r.headers['WWW-Authenticate']).toBe('Bearer realm="remediator"');
      expect(r.body).toEqual({ error: 'missing or wrong bearer token' });
      expect(r.rejected).toBe(1);
    }
  });

  it('a 401 never carries the token, whatever was sent', () => {
    fc.assert(
      fc.property(fc.string(), (given) => {
        const r = check(`Bearer ${given}`);
        if (given.trim() === TOKEN) return;
        expect(r.result).toBe(401);
        expect(JSON.stringify(r.body) + JSON.stringify(r.headers)).not.toContain(TOKEN);
      }),
      { numRuns: 300 },
    );
  });

  it('accepts exactly the token: no other string passes (property)', () => {
    const near = fc.oneof(
      fc.string(),
      fc.nat({ max: TOKEN.length - 1 }).map((n) => TOKEN.slice(0, n)),
      fc.string({ minLength: 1 }).map((s) => TOKEN + s.replace(/\s/g, 'x')),
      fc
        .tuple(fc.nat({ max: TOKEN.length - 1 }), fc.string({ minLength: 1, maxLength: 1 }))
        .map(([i, c]) => TOKEN.slice(0, i) + c + TOKEN.slice(i + 1)),
    );
    fc.assert(
      fc.property(near, (given) => {
        const r = check(`Bearer ${given}`);
        expect(r.result).toBe(given.trim() === TOKEN ? 'next' : 401);
      }),
      { numRuns: 1000 },
    );
  });
});
