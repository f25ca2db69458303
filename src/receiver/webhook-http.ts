import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { authorizationMatches, type AuthSettings } from './auth.js';
import { jsonAnswer, writeAnswer } from './plain-http.js';
import { handleWebhook, type WebhookDeps } from './webhook.js';

/**
 * POST /webhook on plain node:http, in front of Express (issue 13: Express's request/response path, body-parser and
 * the router were a fifth of the receiver's CPU per webhook). It takes only the common request, the one Alertmanager
 * sends, and decides that from the headers alone, before a byte of the body is read:
 *
 *   POST, the path exactly `/webhook`, not shutting down, the right token, `Content-Type: application/json`
 *   (optionally `; charset=utf-8`), no Content-Encoding, a Content-Length of 1 to WEBHOOK_MAX_BYTES bytes.
 *
 * Every other request (another path or spelling of it, a wrong or missing token, another content type or charset, a
 * compressed, chunked, empty or oversized body, a draining process) goes to the Express app unchanged, which answers
 * it exactly as before (401, 415, 413, 503, ...), counts it and logs it. What this path answers itself is what the
 * Express route answered for the same request: the same handler (handleWebhook: zod validation naming the field,
 * 202 only after Redis answered every write, 503 on a Redis failure), a JSON parse error as the same 400, an
 * unexpected error as the same 503 and log line, the same JSON bodies and Content-Type, and the same metrics. Not
 * sent: Express's ETag header (a hash of a POST's answer, which no client of a webhook reads).
 */
export interface WebhookHttpDeps {
  webhook: WebhookDeps;
  auth: AuthSettings;
  maxBodyBytes: number;
  log: Logger;
  shuttingDown?: () => boolean;
  /** Counts the answer (remediator_webhook_requests_total, remediator_webhook_duration_seconds). */
  count(code: number, started: bigint): void;
}

/** `application/json`, alone or with `charset=utf-8`: what body-parser reads as UTF-8 JSON without a question. */
const PLAIN_JSON = /^application\/json\s*(?:;\s*charset\s*=\s*"?utf-8"?\s*)?$/i;

/** The answer as Express's res.json writes it (plain-http.ts). */
const answer = (res: ServerResponse, status: number, body: unknown) => writeAnswer(res, jsonAnswer(status, body));

/** Whether this request is the common one, decided from its headers (see above). */
function takes(req: IncomingMessage, deps: WebhookHttpDeps): boolean {
  if (req.method !== 'POST' || req.url !== '/webhook') return false;
  const h = req.headers;
  if (h['content-encoding'] !== undefined || h['transfer-encoding'] !== undefined) return false;
  const length = h['content-length'];
  if (length === undefined || !/^[1-9]\d{0,15}$/.test(length) || Number(length) > deps.maxBodyBytes) return false;
  if (h['content-type'] === undefined || !PLAIN_JSON.test(h['content-type'])) return false;
  if (deps.shuttingDown?.()) return false;
  return authorizationMatches(deps.auth, h.authorization);
}

/** The handler: true when it took the request, false when the caller (Express) should. */
export function webhookFastPath(deps: WebhookHttpDeps): (req: IncomingMessage, res: ServerResponse) => boolean {
  return (req, res) => {
    if (!takes(req, deps)) return false;
    const started = process.hrtime.bigint();
    res.on('finish', () => deps.count(res.statusCode, started));
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    // A client gone mid-body (node:http ends the body only once Content-Length bytes came): nothing to answer.
    req.on('error', () => {});
    req.on('end', () => {
      let text = (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks)).toString('utf8');
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1); // body-parser's decoder drops a UTF-8 BOM
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch (err) {
        answer(res, 400, { error: `body is not valid JSON: ${(err as Error).message}` });
        return;
      }
      handleWebhook(body, deps.webhook).then(
        (result) => answer(res, result.status, result.body),
        (err: Error) => {
          deps.log.error({ err: err.message }, 'request failed');
          answer(res, 503, { error: 'internal error; retry later' });
        },
      );
    });
    return true;
  };
}
