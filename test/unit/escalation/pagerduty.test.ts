import { describe, expect, it } from 'vitest';
import { pagerduty, pagerDutyEvent, PAGERDUTY_EVENTS_URL } from '../../../src/escalation/pagerduty.js';
import { describeTargetContract, escalationNotice } from './contract.js';

const KEY = 'R0123456789abcdef0123456789abcdE';

describe('escalation/pagerduty', () => {
  it('sends to the Events API v2 unless told otherwise, and refuses a malformed routing key naming the variable only', () => {
    expect(pagerduty.configure({ ESCALATION_PAGERDUTY_ROUTING_KEY: KEY }, {})).toEqual({
      url: PAGERDUTY_EVENTS_URL,
      routingKey: KEY,
    });
    expect(() => pagerduty.configure({ ESCALATION_PAGERDUTY_ROUTING_KEY: 'not a key!' }, {})).toThrow(
      /^ESCALATION_PAGERDUTY_ROUTING_KEY: expected an integration key/,
    );
  });

  it('a trigger event deduplicated by run, with the run linked and the steps tried', () => {
    const event = pagerDutyEvent(escalationNotice(), KEY);
    expect(event).toMatchObject({
      routing_key: KEY,
      event_action: 'trigger',
      dedup_key: 'P1-003-0123456789abcdef-1700000000000',
      payload: {
        source: 'sup-1:9466',
        severity: 'critical',
        component: 'P1-003',
        group: 'DashboardIPCDisconnected',
        class: 'failed',
      },
      links: [{ href: 'http://127.0.0.1:9095/api/remediations/P1-003-0123456789abcdef-1700000000000' }],
    });
    expect((event.payload as { custom_details: { tried: string } }).custom_details.tried).toBe(
      '1. restart-relay: failed (expected 1, got 0)',
    );
  });
});

describeTargetContract(pagerduty, {
  configure: (url) => ({ env: { ESCALATION_PAGERDUTY_ROUTING_KEY: KEY, ESCALATION_PAGERDUTY_URL: url } }),
  delivered: (hit, notice) => {
    expect(hit.method).toBe('POST');
    expect(hit.body).toEqual(pagerDutyEvent(notice, KEY));
  },
  maxBodyChars: 40 * 1024,
});
