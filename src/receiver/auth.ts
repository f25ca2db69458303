import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';

/**
 * Who may call what. `/metrics`, `/healthz`, `/readyz`, `/-/healthy` and `/-/ready` are open (probes and scrapes
 * carry no token, and they expose no alert data); everything else needs `Authorization: Bearer <WEBHOOK_TOKEN>`.
 *
 * - `token` set: only that token passes.
 * - no token and `allowUnauthenticated` (ALLOW_UNAUTHENTICATED=true, loopback only): everything passes.
 * - no token otherwise (a worker started without one): nothing passes; its /-/reload answers 401.
 */
export interface AuthSettings {
  token?: string;
  allowUnauthenticated?: boolean;
}

const digest = (text: string) => createHash('sha256').update(text).digest();

/** The configured token's digest, computed once per token rather than on every request. */
let tokenDigest: { token: string; digest: Buffer } | undefined;
function digestOfToken(token: string): Buffer {
  if (tokenDigest?.token !== token) tokenDigest = { token, digest: digest(token) };
  return tokenDigest.digest;
}

/**
 * Whether an Authorization header value carries the token, in constant time: both sides are hashed first so
 * neither the length nor a prefix of the token leaks through timing. The scheme is case-insensitive (RFC 9110
 * §11.1). The console's login checks a typed token through `tokenMatches` too, so both paths agree.
 */
export function authorizationMatches(auth: AuthSettings, header: string | undefined): boolean {
  if (auth.token === undefined) return auth.allowUnauthenticated === true;
  const match = /^Bearer\s+(.+)$/i.exec(header ?? '');
  return match !== null && tokenMatches(auth, match[1]!.trim());
}

/** Whether `given` is the token (constant time). With no token configured, only the unauthenticated mode passes. */
export function tokenMatches(auth: AuthSettings, given: string): boolean {
  if (auth.token === undefined) return auth.allowUnauthenticated === true;
  return timingSafeEqual(digest(given), digestOfToken(auth.token));
}

/** What a request without the token gets (bearerAuth, and a worker's /-/reload on plain node:http). */
export const UNAUTHORIZED = {
  status: 401,
  headers: { 'WWW-Authenticate': 'Bearer realm="remediator"' },
  body: { error: 'missing or wrong bearer token' },
} as const;

/** The middleware: 401 with `WWW-Authenticate` unless the token is there. The token never appears in logs or responses. */
export function bearerAuth(auth: AuthSettings, onReject?: () => void): RequestHandler {
  return (req, res, next) => {
    if (authorizationMatches(auth, req.headers.authorization)) return next();
    onReject?.();
    res.status(UNAUTHORIZED.status).set('WWW-Authenticate', UNAUTHORIZED.headers['WWW-Authenticate']).json(UNAUTHORIZED.body);
  };
}

/**
 * Bodies must say they are JSON. A web page can POST `text/plain` or a form to any address without a CORS
 * preflight; `application/json` needs one, so a browser cannot be used to send remediator a payload. A request
 * without a body passes (POST /api/resume from curl).
 */
export function requireJsonBody(): RequestHandler {
  return (req, res, next) => {
    const hasBody =
      req.headers['transfer-encoding'] !== undefined ||
      (req.headers['content-length'] !== undefined && req.headers['content-length'] !== '0');
    const charset = /;\s*charset\s*=\s*"?([^";\s]*)/i.exec(req.headers['content-type'] ?? '')?.[1]?.toLowerCase();
    const utf8 = charset === undefined || charset === 'utf-8' || charset === 'utf8';
    if (!hasBody || (req.is('application/json') === 'application/json' && utf8)) return next();
    res.status(415).json({
      error: `Content-Type must be application/json in UTF-8 (got ${req.headers['content-type'] === undefined ? 'none' : JSON.stringify(req.headers['content-type'].slice(0, 100))})`,
      field: 'content-type',
    });
  };
}
