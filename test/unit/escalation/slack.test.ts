import { describe, expect, it } from 'vitest';
import { slack, slackText } from '../../../src/escalation/slack.js';
import { describeTargetContract, escalationNotice } from './contract.js';

describe('escalation/slack', () => {
  it('escapes alert values, so a label cannot mention @channel or smuggle a link', () => {
    const text = slackText(escalationNotice({ target: '<!channel> & <http://evil|click>', message: 'a <b> c' }));
    expect(text).toContain('&lt;!channel&gt; &amp; &lt;http://evil|click&gt;');
    expect(text).toContain('a &lt;b&gt; c');
    expect(text).not.toMatch(/<!channel>/);
  });

  it('names the procedure, the outcome and the target, the steps tried, and links the run', () => {
    const text = slackText(escalationNotice());
    expect(text).toContain('*P1-003: Dashboard IPC Disconnected*: failed on `sup-1:9466`');
    expect(text).toContain('1. restart-relay: failed (expected 1, got 0)');
    expect(text).toContain('<http://127.0.0.1:9095/api/remediations/P1-003-0123456789abcdef-1700000000000|run P1-003-');
  });
});

describeTargetContract(slack, {
  configure: (url) => ({ env: { ESCALATION_SLACK_URL: url } }),
  delivered: (hit, notice) => {
    expect(hit.method).toBe('POST');
    expect(Object.keys(hit.body as object)).toEqual(['text']);
    expect((hit.body as { text: string }).text).toBe(slackText(notice));
  },
  maxBodyChars: 4096,
});
