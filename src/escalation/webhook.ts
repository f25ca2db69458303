import { createHttpClient, expectOk } from '../http/client.js';
import { redactUrl } from '../http/redact.js';
import { cap, urlFromEnv } from './env.js';
import type { EscalationNotice, EscalationTarget } from './types.js';

const client = createHttpClient({ maxBytes: 1024 * 1024 });
/** The JSON body is capped: attachments (step outputs) are capped per step already; this bounds the whole. */
const MAX_BODY_CHARS = 1024 * 1024;
const TEXT_LIMIT = 8 * 1024;

/**
 * A JSON POST of the notice to ESCALATION_WEBHOOK_URL (any 2xx is delivered): the run, its steps, the
 * attachments and a link to the run. Also the fallback when nothing a rule listed could be reached.
 */
export const webhook: EscalationTarget<string> = {
  kind: 'webhook',
  needs: 'ESCALATION_WEBHOOK_URL',
  title: 'the escalation webhook',
  configure: (env) => urlFromEnv(env, 'ESCALATION_WEBHOOK_URL'),
  describe: (url) => `webhook ${redactUrl(url, 'origin')}`,
  async send(notice, url, ctx) {
    const json = notice.kind === 'remediation-escalated' ? payload(notice) : notice;
    const res = await client.request({ method: 'POST', url, json, signal: ctx.signal, timeoutMs: ctx.timeoutMs });
    expectOk(res, 'escalation webhook', url);
  },
};

/**
 * The payload as it has always been (labels belong to targets that have labels), capped: texts to 8 KiB each,
 * and the attachments left out when the whole would pass 1 MiB.
 */
function payload(notice: EscalationNotice): Omit<EscalationNotice, 'labels'> {
  const { labels: _labels, ...rest } = notice;
  const capped = {
    ...rest,
    ...(rest.reason !== undefined ? { reason: cap(rest.reason, TEXT_LIMIT) } : {}),
    message: cap(rest.message, TEXT_LIMIT),
    steps: rest.steps.map((s) => ({ ...s, ...(s.reason !== undefined ? { reason: cap(s.reason, TEXT_LIMIT) } : {}) })),
  };
  if (JSON.stringify(capped).length <= MAX_BODY_CHARS) return capped;
  return {
    ...capped,
    attachments: { truncated: `attachments left out: the escalation would pass ${MAX_BODY_CHARS} characters` },
  };
}
