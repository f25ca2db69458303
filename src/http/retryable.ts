/**
 * Whether trying again could help: decided once, at the edge where the failure is seen
 * (like Alertmanager's `Retrier.Check`). Used by every outgoing request (http/client.ts).
 *
 * - an HTTP status: 5xx and 429 yes; every other status no (a 4xx will fail the same way again);
 * - an error: a response status inside it decides; otherwise connection-level failures
 *   (refused, reset, DNS lookups, timeouts) yes; anything else (a bad URL, a caller's abort) no.
 */
const NETWORK_CODES: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED', // axios: the request timed out
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
  'ENOTFOUND',
  'EADDRNOTAVAIL',
  'UND_ERR_SOCKET',
  'ERR_NETWORK', // axios: "Network Error"
]);

export function isRetryable(statusOrError: unknown): boolean {
  return check(statusOrError, 0);
}

function check(statusOrError: unknown, depth: number): boolean {
  if (typeof statusOrError === 'number') return statusOrError >= 500 || statusOrError === 429;
  if (typeof statusOrError !== 'object' || statusOrError === null) return false;
  const err = statusOrError as { code?: unknown; response?: { status?: unknown }; status?: unknown; cause?: unknown };
  const status = typeof err.response?.status === 'number' ? err.response.status : err.status;
  if (typeof status === 'number') return check(status, depth);
  if (typeof err.code === 'string' && NETWORK_CODES.has(err.code)) return true;
  // Node wraps some socket errors (`fetch failed` with cause { code: 'ECONNREFUSED' }); follow a short chain.
  return depth < 4 && err.cause !== undefined && check(err.cause, depth + 1);
}
