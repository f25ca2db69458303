import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Console sessions without server state: a cookie holding the operator's name, an expiry and a nonce, signed
 * with a key derived from WEBHOOK_TOKEN (rotating the token ends every session). The token itself is never put in
 * the cookie, a URL or the page. Forms carry a CSRF token derived from the session nonce.
 */
export interface Session {
  name: string;
  nonce: string;
  expires: number;
}

export const SESSION_COOKIE = 'remediator_session';
const TTL_MS = 12 * 3_600_000;

const b64 = (b: Buffer | string) => Buffer.from(b).toString('base64url');

function equal(a: string, b: string): boolean {
  const x = createHash('sha256').update(a).digest();
  const y = createHash('sha256').update(b).digest();
  return timingSafeEqual(x, y);
}

export interface Sessions {
  /** False when no token is configured: the console is open, like the API. */
  readonly required: boolean;
  /** Constant-time check of a token typed into the login form. */
  tokenMatches(given: string): boolean;
  issue(name: string): { cookie: string; session: Session };
  verify(cookie: string | undefined): Session | undefined;
  csrf(session: Session): string;
  csrfMatches(session: Session, given: unknown): boolean;
  /** The Set-Cookie value (HttpOnly, SameSite=Strict; Secure when served over https). */
  setCookie(value: string, secure: boolean): string;
  clearCookie(secure: boolean): string;
}

export function createSessions(token: string | undefined): Sessions {
  // Without a token there is nothing to derive from: a per-process key (sessions end with the process).
  const key = token !== undefined ? createHmac('sha256', 'remediator-console-session').update(token).digest() : randomBytes(32);
  const sign = (text: string) => b64(createHmac('sha256', key).update(text).digest());
  const attrs = (secure: boolean) => `Path=/; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
  return {
    required: token !== undefined,
    tokenMatches: (given) => token !== undefined && equal(given, token),
    issue(name) {
      const session: Session = { name, nonce: b64(randomBytes(16)), expires: Date.now() + TTL_MS };
      const payload = b64(JSON.stringify(session));
      return { cookie: `${payload}.${sign(payload)}`, session };
    },
    verify(cookie) {
      if (!cookie) return undefined;
      const [payload, mac] = cookie.split('.');
      if (!payload || !mac || !equal(mac, sign(payload))) return undefined;
      try {
        const s = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as Session;
        return typeof s.name === 'string' && typeof s.nonce === 'string' && s.expires > Date.now() ? s : undefined;
      } catch {
        return undefined;
      }
    },
    csrf: (session) => sign(`csrf:${session.nonce}`),
    csrfMatches: (session, given) => typeof given === 'string' && equal(given, sign(`csrf:${session.nonce}`)),
    setCookie: (value, secure) => `${SESSION_COOKIE}=${value}; ${attrs(secure)}; Max-Age=${TTL_MS / 1000}`,
    clearCookie: (secure) => `${SESSION_COOKIE}=; ${attrs(secure)}; Max-Age=0`,
  };
}

/** The value of one cookie from a Cookie header. */
export function readCookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return v.join('=');
  }
  return undefined;
}
