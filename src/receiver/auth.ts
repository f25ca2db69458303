import { createHash, timingSafeEqual } from 'node:crypto';
import type { RequestHandler } from 'express';

/**
 * Bearer token check in constant time: both sides are hashed first so neither the length nor a prefix
 * of the token leaks through timing. The token never appears in logs or responses.
 */
export function bearerAuth(token: string | undefined, onReject?: () => void): RequestHandler {
  if (token === undefined) return (_req, _res, next) => next();
  const expected = createHash('sha256').update(token).digest();
  return (req, res, next) => {
    const header = req.headers.authorization ?? '';
    const match = /^Bearer\s+(.+)$/i.exec(header);
    const given = createHash('sha256')
      .update(match?.[1]?.trim() ?? '')
      .digest();
    if (match && timingSafeEqual(given, expected)) return next();
    onReject?.();
    res.status(401).set('WWW-Authenticate', 'Bearer realm="remediator"').json({ error: 'missing or wrong bearer token' });
  };
}
