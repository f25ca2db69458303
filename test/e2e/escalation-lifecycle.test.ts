/**
 * Escalations in a real Alertmanager: a failed run's RemediationEscalated alert stays firing while the problem
 * persists (re-sent before it would end), links to the console's run page at REMEDIATOR_EXTERNAL_URL and to the
 * runbook, and is resolved when a later run verifies the target healthy, or when an operator acknowledges it.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunRecord } from '../../src/engine/record.js';
import { freePort } from '../helpers/ports.js';
import { webhookPayload } from '../helpers/payload.js';
import { cleanupPrefix, REDIS_URL, requireRedis, testPrefix } from '../helpers/redis.js';
import { startRemediator, type RemediatorProcess } from '../helpers/remediator.js';
import { startStack, type Stack } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

const TOKEN = 'escalation-e2e-token-0123456789ab';
const EXTERNAL = 'https://remediator.example.test/ops';

interface AmAlert {
  labels: Record<string, string>;
  annotations: Record<string, string>;
  startsAt: string;
  endsAt: string;
  generatorURL: string;
  status: { state: string };
}

function startTarget(): Promise<{ server: Server; url: string; healthy: Map<string, boolean> }> {
  const healthy = new Map<string, boolean>();
  const server = createServer((req, res) => {
    if (req.url === '/metrics')
      res
        .writeHead(200, { 'content-type': 'text/plain; version=0.0.4' })
        .end([...healthy].map(([t, h]) => `esc_target_healthy{target="${t}"} ${h ? 1 : 0}\n`).join(''));
    else res.writeHead(200, { 'content-type': 'application/json' }).end('{"tried":true}');
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, healthy }),
    ),
  );
}

describe('e2e: escalations that work in a real Alertmanager', () => {
  const prefix = testPrefix('escalation');
  let stack: Stack;
  let remediator: RemediatorProcess;
  let target: Awaited<ReturnType<typeof startTarget>>;
  let fingerprint = 0xe5c000;

  const api = async <T>(path: string, init: RequestInit = {}) =>
    (await (
      await fetch(`${remediator.url}${path}`, {
        ...init,
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', 'x-remediator-user': 'erin' },
      })
    ).json()) as T;
  const escalationAlerts = async (t: string) =>
    (
      (await (
        await fetch(`${stack.alertmanagerUrl}/api/v2/alerts?filter=${encodeURIComponent('alertname="RemediationEscalated"')}`)
      ).json()) as AmAlert[]
    ).filter((a) => a.labels.target === t);
  const fire = async (t: string) => {
    const res = await fetch(`${remediator.url}/webhook`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(
        webhookPayload({
          alertname: 'EscTargetDown',
          labels: { target: t },
          annotations: { runbook_url: 'https://runbooks.example.test/esc-001' },
          startsAt: new Date().toISOString(),
          fingerprint: (fingerprint++).toString(16).padStart(16, '0'),
        }),
      ),
    });
    expect(res.status).toBe(202);
    const runId = ((await res.json()) as { alerts: { runId: string }[] }).alerts[0]!.runId;
    return waitFor(
      `run ${runId} to end`,
      async () => {
        const run = await api<RunRecord>(`/api/remediations/${runId}`);
        return ['succeeded', 'failed', 'escalated'].includes(run.state) ? run : undefined;
      },
      20_000,
    );
  };

  beforeAll(async () => {
    await requireRedis();
    target = await startTarget();
    target.healthy.set('t1', false);
    target.healthy.set('t2', false);
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'remediator-escalation-'));
    const rulesDir = join(dir, 'procedures');
    mkdirSync(rulesDir);
    writeFileSync(
      join(rulesDir, 'esc.yaml'),
      `id: ESC-001
title: Escalation probe
match: ['alertname="EscTargetDown"']
target: "{{ labels.target }}"
vars: { target_url: "${target.url}" }
steps:
  - name: try
    action: { http: { method: POST, url: "{{ vars.target_url }}/try", timeout: 2s } }
    expect: { promql: 'esc_target_healthy{target="{{ labels.target }}"}', op: "==", value: 1, within: 2s }
escalation:
  - when: failed
    to: [alertmanager]
    message: "{{ labels.target }} is still down after the automatic fix"
`,
    );
    stack = await startStack({
      webhookUrl: `http://127.0.0.1:${port}/webhook`,
      webhookToken: TOKEN,
      scrapeTargets: [{ job: 'esc', target: new URL(target.url).host }],
      ruleFiles: [],
    });
    remediator = await startRemediator({
      PORT: String(port),
      REDIS_URL,
      QUEUE_PREFIX: prefix,
      PROMETHEUS_URL: stack.prometheusUrl,
      ALERTMANAGER_URL: stack.alertmanagerUrl,
      RULES_DIR: rulesDir,
      WEBHOOK_TOKEN: TOKEN,
      POLL_INTERVAL: '250ms',
      ESCALATION_RESEND_INTERVAL: '1s',
      REMEDIATOR_EXTERNAL_URL: EXTERNAL,
    });
  });

  afterAll(async () => {
    await remediator?.stop();
    await stack?.stop();
    target?.server.close();
    await cleanupPrefix(prefix);
  });

  let failedRun: RunRecord;

  it('a failed run raises RemediationEscalated with links to its console page and the runbook', async () => {
    failedRun = await fire('t1');
    expect(failedRun.state).toBe('escalated');
    const [alert] = await waitFor('the escalation in Alertmanager', async () => {
      const found = await escalationAlerts('t1');
      return found.length === 1 && found[0]!.annotations.run_url ? found : undefined;
    });
    expect(alert!.labels).toMatchObject({
      alertname: 'RemediationEscalated',
      procedure: 'ESC-001',
      target: 't1',
      reason: 'failed',
    });
    expect(alert!.status.state).toBe('active');
    expect(alert!.generatorURL).toBe(`${EXTERNAL}/runs/${failedRun.id}`);
    expect(alert!.annotations).toMatchObject({
      run_url: `${EXTERNAL}/runs/${failedRun.id}`,
      runbook_url: 'https://runbooks.example.test/esc-001',
      summary: 't1 is still down after the automatic fix',
      run_id: failedRun.id,
    });
  });

  it('stays firing while the problem persists: re-sent with a later endsAt before the last one passes', async () => {
    // Once remediator has taken it over, its endsAt is bounded to 4 resend intervals (not Alertmanager's 5m).
    const first = await waitFor('the escalation to be re-sent with a bounded endsAt', async () => {
      const [a] = await escalationAlerts('t1');
      const ends = a ? Date.parse(a.endsAt) : Infinity;
      return ends < Date.now() + 10_000 ? ends : undefined;
    });
    // Wait until the first endsAt is in the past: without re-sending, Alertmanager would have resolved it by then.
    const later = await waitFor(
      'the escalation to outlive its first endsAt',
      async () => {
        if (Date.now() < first + 500) return undefined;
        const [a] = await escalationAlerts('t1');
        return a && Date.parse(a.endsAt) > first ? a : undefined;
      },
      15_000,
    );
    expect(later.status.state).toBe('active');
    expect(Date.parse(later.endsAt)).toBeGreaterThan(Date.now());
    const open = await api<{ open: { runId: string }[] }>('/api/escalations');
    expect(open.open.map((e) => e.runId)).toContain(failedRun.id);
  });

  it('is resolved when a later run verifies the target healthy', async () => {
    target.healthy.set('t1', true);
    await waitFor('Prometheus to see t1 healthy', async () => {
      const r = (await (await fetch(`${stack.prometheusUrl}/api/v1/query?query=esc_target_healthy{target="t1"}`)).json()) as {
        data: { result: { value: [number, string] }[] };
      };
      return r.data.result[0]?.value[1] === '1' ? true : undefined;
    });
    const healthyRun = await fire('t1');
    expect(healthyRun.state).toBe('succeeded');
    await waitFor('the escalation to be resolved in Alertmanager', async () =>
      (await escalationAlerts('t1')).length === 0 ? true : undefined,
    );
    const old = await api<RunRecord>(`/api/remediations/${failedRun.id}`);
    expect(old.audit).toEqual([
      expect.objectContaining({
        action: 'escalation-resolved',
        by: 'remediator',
        runId: healthyRun.id,
        reason: `run ${healthyRun.id} verified t1 healthy`,
      }),
    ]);
  });

  it('is resolved when an operator acknowledges it, recorded with who and why', async () => {
    const run = await fire('t2');
    expect(run.state).toBe('escalated');
    await waitFor('the t2 escalation', async () => ((await escalationAlerts('t2')).length === 1 ? true : undefined));
    const ack = await api<{ resolved: unknown[] }>(`/api/remediations/${run.id}/acknowledge`, {
      method: 'POST',
      body: JSON.stringify({ reason: 'known hardware fault, ticket OPS-1' }),
    });
    expect(ack.resolved).toHaveLength(1);
    await waitFor('the acknowledged escalation to be resolved', async () =>
      (await escalationAlerts('t2')).length === 0 ? true : undefined,
    );
    const after = await api<RunRecord>(`/api/remediations/${run.id}`);
    expect(after.audit).toEqual([
      expect.objectContaining({ action: 'acknowledge', by: 'erin', reason: 'known hardware fault, ticket OPS-1' }),
    ]);
    const again = await fetch(`${remediator.url}/api/remediations/${run.id}/acknowledge`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    expect(again.status).toBe(409);
  });
});
