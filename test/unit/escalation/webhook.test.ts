import { expect } from 'vitest';
import { webhook } from '../../../src/escalation/webhook.js';
import { describeTargetContract } from './contract.js';

describeTargetContract(webhook, {
  configure: (url) => ({ env: { ESCALATION_WEBHOOK_URL: url } }),
  delivered: (hit, notice) => {
    expect(hit.method).toBe('POST');
    // The payload as it has always been: the notice, without the labels (they belong to targets with labels).
    const { labels: _labels, ...payload } = notice as unknown as Record<string, unknown>;
    expect(hit.body).toEqual(payload);
  },
  maxBodyChars: 1024 * 1024 + 1024,
});
