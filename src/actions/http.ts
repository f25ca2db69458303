import { z } from 'zod';
import { DurationText, parseDuration } from '../duration.js';
import { createHttpClient, HttpError } from '../http/client.js';
import { redactUrl } from '../http/redact.js';
import { isRetryable } from '../http/retryable.js';
import type { Render } from '../template.js';
import { ActionError, capOutput, type Action } from './types.js';

export const HttpSpec = z.strictObject({
  method: z.enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD']).default('POST'),
  /** Templated; alert values are percent-encoded so they cannot leave their path segment or query value. */
  url: z.string().min(1),
  headers: z.record(z.string(), z.string()).optional(),
  /** JSON body (strings inside are templated as text; JSON encoding escapes them). */
  body: z.unknown().optional(),
  timeout: DurationText.optional(),
  /** HTTP statuses that count as succeeded (default: any 2xx). */
  okStatus: z.array(z.number().int().min(100).max(599)).min(1).optional(),
});
export type HttpSpec = z.infer<typeof HttpSpec>;

/** A response body larger than this is refused (the attempt fails, not retryable). */
const MAX_BODY_BYTES = 10 * 1024 * 1024;
const client = createHttpClient({ maxBytes: MAX_BODY_BYTES });

/**
 * One HTTP request. Any response is a result: succeeded iff its status is in okStatus (default 2xx), with
 * httpStatus, the body (parsed when it is JSON, else text, capped) and a short output ("HTTP 200 OK" + body text).
 * No response at all (refused, reset, timeout): ActionError, retryable per isRetryable. Redirects are not followed.
 *
 * Error messages name the method and the URL's scheme and host only (user info, path and query may hold tokens),
 * and never a header value.
 */
export const http: Action<HttpSpec> = {
  kind: 'http',
  spec: HttpSpec,
  describe: (s) => `${s.method} ${redactUrl(s.url)}`,
  timeoutMs: (s) => (s.timeout !== undefined ? parseDuration(s.timeout) : undefined),
  render: (s, r) => ({
    ...s,
    url: r(s.url, 'url'),
    ...(s.headers !== undefined
      ? { headers: Object.fromEntries(Object.entries(s.headers).map(([k, v]) => [k, r(v, 'header')])) }
      : {}),
    ...(s.body !== undefined ? { body: renderBody(s.body, r) } : {}),
  }),
  async run(s, ctx) {
    const method = s.method ?? 'POST';
    const where = `${method} ${redactUrl(s.url, 'origin')}`;
    ctx.signal.throwIfAborted();
    let res;
    try {
      res = await client.request({
        method,
        url: s.url,
        ...(s.headers !== undefined ? { headers: s.headers } : {}),
        ...(s.body !== undefined ? { json: s.body } : {}),
        timeoutMs: s.timeout !== undefined ? parseDuration(s.timeout) : 0,
        signal: ctx.signal,
      });
    } catch (err) {
      throw requestError(where, s.timeout, err, ctx.signal);
    }

    const text = res.text;
    const body = parseBody(text, res.headers['content-type'] ?? '');
    const ok = s.okStatus !== undefined ? s.okStatus.includes(res.status) : res.status >= 200 && res.status < 300;
    const statusLine = `HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}`;
    return {
      status: ok ? 'succeeded' : 'failed',
      httpStatus: res.status,
      ...(ok ? {} : { retryable: isRetryable(res.status) }),
      ...(body !== undefined ? { body } : {}),
      output: capOutput(text === '' ? statusLine : `${statusLine}\n${text}`),
      detail: { request: `${method} ${redactUrl(s.url)}` },
    };
  },
};

/**
 * Strings anywhere in the JSON body are rendered as data (JSON encoding escapes them; an empty alert value is
 * refused, as `{"pod": ""}` can mean "all pods" to an API); keys and other values stay as written.
 */
function renderBody(value: unknown, r: Render): unknown {
  if (typeof value === 'string') return r(value, 'data');
  if (Array.isArray(value)) return value.map((v) => renderBody(v, r));
  if (typeof value === 'object' && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, renderBody(v, r)]));
  }
  return value;
}

/** JSON when it says so or looks so (and parses), else the text, capped; undefined for no body. */
function parseBody(text: string, contentType: string): unknown {
  if (text === '') return undefined;
  const trimmed = text.trimStart();
  if (/\bjson\b/i.test(contentType) || trimmed.startsWith('{') || trimmed.startsWith('[')) {
    try {
      return JSON.parse(text) as unknown;
    } catch {
      // not JSON after all
    }
  }
  return capOutput(text);
}

/** The shared client's HttpError in this action's words (the method and the URL's origin only). */
function requestError(where: string, timeout: string | undefined, err: unknown, signal: AbortSignal): ActionError {
  if (!(err instanceof HttpError)) return new ActionError(`${where} failed: ${(err as Error).message}`, false);
  const cause = err.cause !== undefined ? { cause: signal.aborted ? ((signal.reason as unknown) ?? err.cause) : err.cause } : {};
  switch (err.failure) {
    case 'aborted':
      return new ActionError(`${where} aborted`, false, cause);
    case 'timeout':
      return new ActionError(`${where} timed out after ${timeout ?? '?'}`, true, cause);
    case 'too-large':
      return new ActionError(`${where}: response body over ${MAX_BODY_BYTES} bytes`, false, cause);
    case 'invalid-url':
      return new ActionError(`http: url is not a valid URL (${where})`, false, cause);
    default:
      return new ActionError(`${where} failed: ${err.details.code ?? 'no response'}`, err.retryable, cause);
  }
}
