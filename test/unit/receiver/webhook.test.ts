import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { RunRecord } from '../../../src/engine/record.js';
import { silentLogger } from '../../../src/log.js';
import { createMetrics } from '../../../src/metrics.js';
import type { RunJob } from '../../../src/queue/queue.js';
import { formatPath, handleWebhook, type WebhookDeps } from '../../../src/receiver/webhook.js';
import { parseRuleFile } from '../../../src/rules/load.js';
import type { Procedure } from '../../../src/rules/schema.js';

function procedure(id: string, match: string[], target = '{{ labels.instance }}'): Procedure {
  const text = `id: ${id}
title: ${id}
match: ${JSON.stringify(match)}
target: "${target}"
steps:
  - name: look
    action: { exec: { command: ["true", "{{ labels.instance }}"] } }
`;
  const { procedure: p, problems } = parseRuleFile(`${id}.yaml`, text, {});
  if (!p) throw new Error(problems.map((x) => x.message).join('; '));
  return p;
}

const PROBE = procedure('PROBE-001', ['alertname="Probe"']);
const metrics = createMetrics([PROBE]);

interface Fake extends WebhookDeps {
  records: RunRecord[];
  jobs: RunJob[];
  resolved: string[];
}

/** Deps that keep everything in memory; `fail` makes storage throw (Redis away). */
function fakeDeps(fail?: 'record' | 'enqueue'): Fake {
  const seen = new Set<string>();
  const deps: Fake = {
    records: [],
    jobs: [],
    resolved: [],
    procedures: [PROBE],
    createRecord: async (r) => {
      if (fail === 'record') throw new Error('redis away');
      if (seen.has(r.id)) return false;
      seen.add(r.id);
      deps.records.push(r);
      return true;
    },
    enqueue: async (j) => {
      if (fail === 'enqueue') throw new Error('redis away');
      deps.jobs.push(j);
    },
    markResolved: async (id) => {
      deps.resolved.push(id);
      return seen.has(id);
    },
    wake: async () => {},
    metrics,
    log: silentLogger,
    dryRun: false,
    env: {},
    maxIncidentAgeMs: Number.MAX_SAFE_INTEGER, // the fixtures carry fixed dates
  };
  return deps;
}

const alert = (labels: Record<string, string>, extra: Record<string, unknown> = {}) => ({
  status: 'firing',
  labels,
  annotations: {},
  startsAt: '2026-11-28T07:17:26.321Z',
  endsAt: '0001-01-01T00:00:00Z',
  fingerprint: '0123456789abcdef',
  ...extra,
});
const payload = (...alerts: unknown[]) => ({ version: '4', status: 'firing', receiver: 'r', groupKey: '{}:{}', alerts });

const labelValue = fc.oneof(
  fc.string({ maxLength: 30 }),
  fc.string({ unit: 'binary', maxLength: 30 }),
  fc.constantFrom('"} or vector(1) or {"', '$(id)', '../../etc/passwd', '-rf', 'a\r\nb', '\ud800', '', '{{ env.WEBHOOK_TOKEN }}'),
);
const labels = fc.record(
  {
    alertname: fc.constantFrom('Probe', 'Other', 'probe', 'Probe '),
    instance: labelValue,
    procedure: fc.constantFrom('PROBE-001', 'P1-001'),
    x: labelValue,
  },
  { requiredKeys: ['alertname'] },
);
const validAlert = fc.record({
  status: fc.constantFrom('firing', 'resolved'),
  labels,
  startsAt: fc.constantFrom('2026-11-28T07:17:26.321Z', '2026-11-28T07:17:26Z', '2026-11-28T15:17:26.321123456+08:00'),
  fingerprint: fc.stringMatching(/^[0-9a-f]{16}$/),
});

describe('receiver/webhook handleWebhook (fake deps)', () => {
  it('formats zod paths as people write them', () => {
    expect(formatPath([])).toBe('(root)');
    expect(formatPath(['alerts', 0, 'labels', 'alertname'])).toBe('alerts[0].labels.alertname');
    expect(formatPath(['version'])).toBe('version');
  });

  it('names the field of a bad payload in a 400 and stores nothing', async () => {
    const deps = fakeDeps();
    const res = await handleWebhook(payload(alert({ alertname: 'Probe', instance: 'a' }, { startsAt: 'yesterday' })), deps);
    expect(res).toEqual({
      status: 400,
      body: {
        error: 'invalid Alertmanager webhook payload',
        issues: [{ path: 'alerts[0].startsAt', message: expect.any(String) }],
      },
    });
    expect(deps.records).toEqual([]);
    expect(deps.jobs).toEqual([]);
  });

  it('caps the issues it answers with at 50', async () => {
    const res = await handleWebhook(payload(...Array.from({ length: 200 }, () => ({}))), fakeDeps());
    expect(res.status).toBe(400);
    expect((res.body as { issues: unknown[] }).issues).toHaveLength(50);
  });

  it('ignores a forged procedure label: only the match selects a procedure', async () => {
    const deps = fakeDeps();
    const res = await handleWebhook(
      payload(
        alert({ alertname: 'Other', procedure: 'PROBE-001', instance: 'a' }),
        alert({ alertname: 'Other', procedure: 'P1-001', instance: 'b' }, { fingerprint: 'fedcba9876543210' }),
      ),
      deps,
    );
    expect(res.status).toBe(202);
    expect(res.body).toMatchObject({
      enqueued: 0,
      ignored: 2,
      alerts: [
        { result: 'ignored', reason: 'no procedure matched' },
        { result: 'ignored', reason: 'no procedure matched' },
      ],
    });
    expect(deps.records).toEqual([]);
    expect(deps.jobs).toEqual([]);
  });

  it('ignores an alert whose target cannot be rendered (missing label), saying why', async () => {
    const deps = fakeDeps();
    const res = await handleWebhook(payload(alert({ alertname: 'Probe' })), deps);
    expect(res).toMatchObject({
      status: 202,
      body: {
        ignored: 1,
        alerts: [{ result: 'ignored', procedure: 'PROBE-001', reason: expect.stringContaining('labels.instance') }],
      },
    });
    expect(deps.jobs).toEqual([]);
  });

  it('answers 503 (so Alertmanager retries) when the job cannot be stored', async () => {
    for (const fail of ['record', 'enqueue'] as const) {
      const res = await handleWebhook(payload(alert({ alertname: 'Probe', instance: 'a' })), fakeDeps(fail));
      expect(res).toEqual({ status: 503, body: { error: 'remediation queue unavailable; retry later' } });
    }
  });

  describe('properties', () => {
    it('answers only 202 or 400 for any JSON body, never throws, and a 400 lists paths and messages', async () => {
      const body = fc.oneof(
        fc.jsonValue(),
        fc.jsonValue().map((v) => ({ version: '4', status: 'firing', alerts: v })),
        fc.jsonValue().map((v) => payload(v)),
        fc.jsonValue().map((v) =>
          payload({
            status: 'firing',
            labels: { alertname: 'Probe', instance: v },
            startsAt: '2026-01-01T00:00:00Z',
            fingerprint: '0123456789abcdef',
          }),
        ),
        fc.array(validAlert, { maxLength: 4 }).map((alerts) => payload(...alerts)),
      );
      await fc.assert(
        fc.asyncProperty(body, async (b) => {
          const res = await handleWebhook(b, fakeDeps());
          expect([202, 400]).toContain(res.status);
          if (res.status === 400) {
            const issues = (res.body as { issues: { path: unknown; message: unknown }[] }).issues;
            expect(issues.length).toBeGreaterThan(0);
            for (const i of issues) {
              expect(typeof i.path).toBe('string');
              expect(typeof i.message).toBe('string');
            }
          }
        }),
        { numRuns: 1000 },
      );
    });

    it('accounts for every alert, runs only what the match selects, and stores one record per incident', async () => {
      await fc.assert(
        fc.asyncProperty(fc.array(validAlert, { minLength: 1, maxLength: 6 }), async (alerts) => {
          const deps = fakeDeps();
          const res = await handleWebhook(payload(...alerts), deps);
          expect(res.status).toBe(202);
          const body = res.body as {
            enqueued: number;
            duplicate: number;
            ignored: number;
            resolved: number;
            alerts: { result: string; procedure?: string; target?: string }[];
          };
          expect(body.alerts).toHaveLength(alerts.length);
          expect(body.enqueued + body.duplicate + body.ignored + body.resolved).toBe(alerts.length);
          // Only alerts whose alertname is exactly "Probe" (and with a non-empty instance: an empty target would share
          // one lease with every other empty one, issue 9) may run; the procedure label never matters.
          const runnable = alerts.filter((a) => a.labels.alertname === 'Probe' && !!a.labels.instance && a.status === 'firing');
          expect(deps.jobs.length).toBe(runnable.length);
          for (const j of deps.jobs) {
            expect(j.procedure).toBe('PROBE-001');
            expect(j.alert.labels.alertname).toBe('Probe');
            // The target is the label as sent (target sink): it is a lock key, never a command.
            expect(j.target).toBe(j.alert.labels.instance);
          }
          expect(new Set(deps.records.map((r) => r.id)).size).toBe(deps.records.length);
          expect(deps.records.length).toBe(body.enqueued);
        }),
        { numRuns: 300 },
      );
    });
  });
});
