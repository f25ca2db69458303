import { createServer, type Server } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { waitFor } from '../../helpers/processes.js';
import { startStack, type Stack } from '../../helpers/stack.js';
import { SupervisorClient } from '../../sim/client.js';
import { startSupervisorProcess, type SupervisorProcess } from '../../sim/launch.js';

interface Received {
  authorization: string | undefined;
  path: string | undefined;
  body: {
    status: string;
    alerts: { status: string; labels: Record<string, string>; annotations: Record<string, string> }[];
  };
}

/** A tiny webhook sink on loopback: records every POST. */
async function startSink(): Promise<{ url: string; received: Received[]; close(): Promise<void> }> {
  const received: Received[] = [];
  const server: Server = createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (raw += c));
    req.on('end', () => {
      received.push({ authorization: req.headers.authorization, path: req.url, body: JSON.parse(raw) as Received['body'] });
      res.writeHead(200).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('sink: no address');
  return {
    url: `http://127.0.0.1:${addr.port}/webhook`,
    received,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

const TOKEN = 'stack-smoke-token';

describe('startStack: simulator → Prometheus → Alertmanager → webhook', () => {
  let sup: SupervisorProcess;
  let sink: Awaited<ReturnType<typeof startSink>>;
  let stack: Stack;
  let target: string;

  beforeAll(async () => {
    sup = await startSupervisorProcess({ children: 2 });
    sink = await startSink();
    target = `127.0.0.1:${sup.ports.metrics}`;
    stack = await startStack({
      webhookUrl: sink.url,
      webhookToken: TOKEN,
      scrapeTargets: [{ job: 'supervisor', target }],
      ruleFiles: ['rules/prometheus/supervisor.rules.yaml'],
      fastRules: true,
    });
  });

  afterAll(async () => {
    await stack?.stop();
    await sup?.stop();
    sup?.cleanup();
    await sink?.close();
  });

  const alertsNamed = (name: string, status: 'firing' | 'resolved') =>
    sink.received
      .flatMap((r) => r.body.alerts.map((a) => ({ ...a, authorization: r.authorization, path: r.path })))
      .filter((a) => a.labels.alertname === name && a.status === status);

  it('is live: the supervisor target is scraped and no P1 alert fires while healthy', async () => {
    const q = (await (
      await fetch(`${stack.prometheusUrl}/api/v1/query?query=${encodeURIComponent('supervisor_up')}`)
    ).json()) as {
      data: { result: { metric: Record<string, string>; value: [number, string] }[] };
    };
    expect(q.data.result).toEqual([
      expect.objectContaining({
        metric: expect.objectContaining({ job: 'supervisor', instance: target }),
        value: [expect.any(Number), '1'],
      }),
    ]);
    const alerts = (await (await fetch(`${stack.alertmanagerUrl}/api/v2/alerts`)).json()) as unknown[];
    expect(alerts).toEqual([]);
  });

  it('DashboardIPCDisconnected reaches the webhook with the bearer token, and resolves after the relay restart', async () => {
    const c = new SupervisorClient(sup.adminUrl, sup.metricsUrl);
    const relay = (await c.state()).relay.pid;
    await c.post('/faults/ipc/drop');
    const [firing] = await waitFor(
      'a firing DashboardIPCDisconnected webhook',
      () => {
        const a = alertsNamed('DashboardIPCDisconnected', 'firing');
        return a.length > 0 ? a : undefined;
      },
      { timeoutMs: 20_000, processes: [stack.prometheus, stack.alertmanager, sup.proc] },
    );
    expect(firing?.authorization).toBe(`Bearer ${TOKEN}`);
    expect(firing?.path).toBe('/webhook');
    expect(firing?.labels).toMatchObject({
      alertname: 'DashboardIPCDisconnected',
      severity: 'page',
      instance: target,
      job: 'supervisor',
    });
    expect(firing?.labels).not.toHaveProperty('procedure');
    expect(firing?.annotations.runbook).toBe('P1-003');

    // The runbook's fix: SIGTERM the relay; the supervisor restarts it, the link reconnects, the alert resolves.
    if (relay !== null) process.kill(relay, 'SIGTERM');
    await waitFor(
      'a resolved DashboardIPCDisconnected webhook',
      () => alertsNamed('DashboardIPCDisconnected', 'resolved').length > 0,
      {
        timeoutMs: 20_000,
        processes: [stack.prometheus, stack.alertmanager, sup.proc],
      },
    );
  });

  it('SupervisorDown fires when the supervisor panics', async () => {
    const c = new SupervisorClient(sup.adminUrl, sup.metricsUrl);
    await c.post('/faults/panic');
    await sup.exited;
    // After a panic both `up == 0` (with instance) and the absent() variant (job only) may fire, in either order:
    // wait for the one about this target.
    const [firing] = await waitFor(
      'a firing SupervisorDown webhook for the target',
      () => {
        const a = alertsNamed('SupervisorDown', 'firing').filter((x) => x.labels.instance === target);
        return a.length > 0 ? a : undefined;
      },
      { timeoutMs: 20_000, processes: [stack.prometheus, stack.alertmanager] },
    );
    expect(firing?.labels).toMatchObject({ severity: 'page', instance: target, job: 'supervisor' });
    expect(firing?.annotations.runbook).toBe('P1-001');
    expect(firing?.authorization).toBe(`Bearer ${TOKEN}`);
  });
});
