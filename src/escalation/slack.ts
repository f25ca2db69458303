import { createHttpClient, expectOk } from '../http/client.js';
import { redactUrl } from '../http/redact.js';
import { tried } from './alertmanager.js';
import { cap, urlFromEnv } from './env.js';
import type { EscalationTarget, Notice } from './types.js';

const client = createHttpClient({ maxBytes: 64 * 1024 });
/** Slack shows up to 40,000 characters and advises far fewer; a page should be read at a glance. */
const TEXT_LIMIT = 3500;

/**
 * A message to a Slack incoming webhook (ESCALATION_SLACK_URL), or to anything that takes Slack's payload
 * (Mattermost, Rocket.Chat, Zulip's Slack-compatible endpoint): `{ "text": "…" }` in Slack's mrkdwn. The URL
 * is the secret (its path is the token), so only its origin is ever shown. Alert values are escaped (`<`, `>`,
 * `&`), so a label cannot mention `<!channel>` or smuggle a link. 429 (rate limited) and 5xx are retried.
 */
export const slack: EscalationTarget<string> = {
  kind: 'slack',
  needs: 'ESCALATION_SLACK_URL',
  title: 'Slack',
  configure: (env) => urlFromEnv(env, 'ESCALATION_SLACK_URL'),
  describe: (url) => `Slack-compatible webhook ${redactUrl(url, 'origin')}`,
  async send(notice, url, ctx) {
    const res = await client.request({
      method: 'POST',
      url,
      json: { text: slackText(notice) },
      signal: ctx.signal,
      timeoutMs: ctx.timeoutMs,
    });
    expectOk(res, 'Slack webhook', url);
  },
};

/** The message in Slack's mrkdwn, capped. */
export function slackText(notice: Notice): string {
  if (notice.kind === 'remediation-paused') {
    return cap(`:double_vertical_bar: *Automatic remediation paused*\n${escape(notice.message)}`, TEXT_LIMIT);
  }
  const run = notice.runUrl ? `<${notice.runUrl}|run ${escape(notice.runId)}>` : `run ${escape(notice.runId)}`;
  const lines = [
    `:rotating_light: *${escape(notice.procedure)}: ${escape(notice.title)}*: ${escape(notice.outcome)} on \`${escape(notice.target)}\``,
    escape(notice.message),
    ...(notice.reason ? [`_${escape(notice.reason)}_`] : []),
    '```',
    escape(tried(notice)),
    '```',
    run,
  ];
  return cap(lines.join('\n'), TEXT_LIMIT);
}

/** Slack's three control characters in mrkdwn; everything else shows as written. */
function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
