import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunRecord } from '../../src/engine/record.js';
import { freePort } from '../helpers/ports.js';
import { testPrefix, TOPOLOGIES, useRedis, type TestRedis } from '../helpers/redis.js';
import { startRemediator, type RemediatorProcess } from '../helpers/remediator.js';
import { startStack, type Stack } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

const TOKEN = 'e2e-bearer-token-0123456789';

/**
 * A small scrape target whose health a test can break, and that heals on POST /heal.
 * The http action in the rule below is the only thing that heals it.
 */
function startTarget(): Promise<{ server: Server; url: string; setHealthy(v: boolean): void; heals: string[] }> {
  let healthy = true;
  const heals: string[] = [];
  const server = createServer((req, res) => {
    if (req.url === '/metrics') {
      res
        .writeHead(200, { 'content-type': 'text/plain; version=0.0.4' })
        .end(`# TYPE demo_target_healthy gauge\ndemo_target_healthy ${healthy ? 1 : 0}\n`);
    } else if (req.method === 'POST' && req.url?.startsWith('/heal')) {
      heals.push(req.url);
      healthy = true;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"healed":true}');
    } else res.writeHead(404).end();
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        server,
        url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        setHealthy: (v) => (healthy = v),
        heals,
      }),
    ),
  );
}

describe.each(TOPOLOGIES)(
  'e2e: real Alertmanager delivers, remediator heals, real Prometheus confirms (%s Redis)',
  (topology) => {
    const prefix = testPrefix('e2e-core');
    const stops: (() => unknown)[] = [];
    let redis: TestRedis;
    let stack: Stack;
    let remediator: RemediatorProcess;
    let target: Awaited<ReturnType<typeof startTarget>>;

    beforeAll(async () => {
      redis = await useRedis(topology, { add: (fn) => stops.push(fn) });
      target = await startTarget();
      const port = await freePort();
      const dir = mkdtempSync(join(tmpdir(), 'remediator-e2e-'));
      const alertRules = join(dir, 'demo.rules.yaml');
      writeFileSync(
        alertRules,
        `groups:
  - name: demo
    rules:
      - alert: DemoTargetUnhealthy
        expr: demo_target_healthy == 0
        for: 0s
        labels: { severity: page }
        annotations: { summary: "{{ $labels.instance }} is unhealthy" }
`,
      );
      const rulesDir = join(dir, 'procedures');
      (await import('node:fs')).mkdirSync(rulesDir);
      writeFileSync(
        join(rulesDir, 'demo.yaml'),
        `id: DEMO-001
title: Demo target unhealthy
match: ['alertname="DemoTargetUnhealthy"', 'severity="page"']
target: "{{ labels.instance }}"
vars: { target_url: "${target.url}" }
steps:
  - name: heal
    description: POST /heal to the target
    action: { http: { method: POST, url: "{{ vars.target_url }}/heal?instance={{ labels.instance }}", timeout: 2s } }
    expect: { promql: 'demo_target_healthy{instance="{{ labels.instance }}"}', op: "==", value: 1, within: 10s }
    estimate: 1m
`,
      );
      stack = await startStack({
        webhookUrl: `http://127.0.0.1:${port}/webhook`,
        webhookToken: TOKEN,
        scrapeTargets: [{ job: 'demo', target: new URL(target.url).host }],
        ruleFiles: [alertRules],
      });
      remediator = await startRemediator({
        PORT: String(port),
        ...redis.env,
        QUEUE_PREFIX: prefix,
        PROMETHEUS_URL: stack.prometheusUrl,
        ALERTMANAGER_URL: stack.alertmanagerUrl,
        RULES_DIR: rulesDir,
        WEBHOOK_TOKEN: TOKEN,
        POLL_INTERVAL: '200ms',
      });
    });

    afterAll(async () => {
      await remediator?.stop();
      await stack?.stop();
      target?.server.close();
      await redis?.cleanupPrefix(prefix);
      for (const stop of stops.reverse()) await stop();
    });

    it('from "target faulty" to "run record shows the action and the Prometheus-confirmed value", nobody acting, within 15 s', async () => {
      const faultyAt = Date.now();
      target.setHealthy(false);
      const api = (path: string) =>
        fetch(`${remediator.url}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } }).then((r) => r.json());
      const run = await waitFor(
        'a succeeded run of DEMO-001',
        async () => ((await api('/api/remediations?procedure=DEMO-001&state=succeeded')) as { runs: RunRecord[] }).runs[0],
        15_000,
        100,
      );
      const seconds = (Date.now() - faultyAt) / 1000;
      process.stdout.write(`e2e core loop: fault → Prometheus-confirmed recovery recorded in ${seconds.toFixed(1)} s\n`);

      expect(run.alert.labels).toMatchObject({
        alertname: 'DemoTargetUnhealthy',
        instance: new URL(target.url).host,
        job: 'demo',
        severity: 'page',
      });
      expect(run.alert.fingerprint).toMatch(/^[0-9a-f]{16}$/);
      expect(run.trigger.receiver).toBe('remediator');
      expect(run.steps).toHaveLength(1);
      const step = run.steps[0]!;
      expect(step.status).toBe('passed');
      expect(step.action).toMatchObject({ kind: 'http' });
      expect(step.result).toMatchObject({ status: 'succeeded', httpStatus: 200 });
      expect(target.heals).toEqual([`/heal?instance=${encodeURIComponent(new URL(target.url).host)}`]);
      // The value Prometheus scraped after the action, with the series it came from and when it was seen.
      expect(step.observed).toEqual([
        {
          labels: expect.objectContaining({ instance: new URL(target.url).host, job: 'demo' }),
          value: 1,
          at: expect.any(String),
        },
      ]);
      expect(Date.parse(step.observed[0]!.at)).toBeGreaterThanOrEqual(Date.parse(step.startedAt!) - 1000);
      expect(run.sla).toMatchObject({ estimateMs: 60_000, withinEstimate: true, withinSla: true });

      // The alert resolves; Alertmanager tells remediator, which records it against the same incident.
      await waitFor(
        'the resolved notification',
        async () => {
          const metrics = await (await fetch(`${remediator.url}/metrics`)).text();
          return /remediator_alerts_total\{result="resolved"\} [1-9]/.test(metrics) ? true : undefined;
        },
        15_000,
      );
      const runs = ((await api('/api/remediations?procedure=DEMO-001')) as { runs: RunRecord[] }).runs;
      expect(runs).toHaveLength(1);
    });
  },
);
