import { expect } from 'vitest';
import { AlertmanagerClient } from '../../../src/alertmanager/client.js';
import { alertmanager, toAlert } from '../../../src/escalation/alertmanager.js';
import { describeTargetContract } from './contract.js';

describeTargetContract(alertmanager, {
  configure: (url) => ({ env: {}, shared: { alertmanager: new AlertmanagerClient(url, 2000) } }),
  delivered: (hit, notice) => {
    expect(hit.method).toBe('POST');
    expect(hit.path).toMatch(/\/api\/v2\/alerts$/);
    const [alert] = hit.body as ReturnType<typeof toAlert>[];
    const want = toAlert(notice);
    expect(alert).toEqual({ ...want, startsAt: expect.any(String) });
    expect(alert!.labels.alertname).toBe(notice.kind === 'remediation-paused' ? 'RemediationPaused' : 'RemediationEscalated');
  },
  // Seven annotations of at most 8 KiB each, and the labels.
  maxBodyChars: 64 * 1024,
});
