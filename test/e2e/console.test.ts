/**
 * The operator console in a real headless Chromium, against the real service (built binary), real Redis, and a
 * real Prometheus + Alertmanager that fire and deliver the alert. Screenshots of the runs list and of a run page go
 * to test-artifacts/console/.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunRecord } from '../../src/engine/record.js';
import { artifactDir, launchBrowser } from '../helpers/browser.js';
import { freePort } from '../helpers/ports.js';
import { webhookPayload } from '../helpers/payload.js';
import { cleanupPrefix, REDIS_URL, requireRedis, testPrefix } from '../helpers/redis.js';
import { startRemediator, type RemediatorProcess } from '../helpers/remediator.js';
import { startSink, type Sink } from '../helpers/sink.js';
import { startStack, type Stack } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

const TOKEN = 'console-e2e-token-0123456789abcdef';
const HOSTILE = '<img src=x onerror="window.pwned=1">';

function startTarget(): Promise<{ server: Server; url: string; setHealthy(v: boolean): void }> {
  let healthy = true;
  const server = createServer((req, res) => {
    if (req.url === '/metrics')
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4' }).end(`demo_target_healthy ${healthy ? 1 : 0}\n`);
    else if (req.method === 'POST' && req.url?.startsWith('/heal')) {
      healthy = true;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{"healed":true}');
    } else res.writeHead(404).end();
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, setHealthy: (v) => (healthy = v) }),
    ),
  );
}

describe('e2e: the operator console in headless Chromium', () => {
  const prefix = testPrefix('console');
  const shots = artifactDir('console');
  let stack: Stack;
  let remediator: RemediatorProcess;
  let target: Awaited<ReturnType<typeof startTarget>>;
  let browser: Awaited<ReturnType<typeof launchBrowser>>;
  let page: Page;
  let demoRunId = '';
  let sink: Sink;
  let release!: () => void;
  const holding = new Promise<void>((r) => (release = r));

  const api = async <T>(path: string, init: RequestInit = {}) => {
    const res = await fetch(`${remediator.url}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json', ...(init.headers ?? {}) },
    });
    return (await res.json()) as T;
  };
  const runState = async (id: string) => (await api<RunRecord>(`/api/remediations/${id}`)).state;

  beforeAll(async () => {
    await requireRedis();
    target = await startTarget();
    sink = await startSink({ hold: (hit) => (hit.path.startsWith('/hold/') ? holding : undefined) });
    const port = await freePort();
    const dir = mkdtempSync(join(tmpdir(), 'remediator-console-'));
    const alertRules = join(dir, 'demo.rules.yaml');
    writeFileSync(
      alertRules,
      `groups:
  - name: demo
    rules:
      - alert: DemoTargetUnhealthy
        expr: demo_target_healthy == 0
        labels: { severity: page }
        annotations: { summary: "{{ $labels.instance }} is unhealthy" }
`,
    );
    const rulesDir = join(dir, 'procedures');
    mkdirSync(rulesDir);
    writeFileSync(
      join(rulesDir, 'demo.yaml'),
      `id: DEMO-001
title: Demo target unhealthy
match: ['alertname="DemoTargetUnhealthy"']
target: "{{ labels.instance }}"
budget: { runs: 5, per: 1h }
vars: { target_url: "${target.url}" }
steps:
  - name: heal
    description: POST /heal to the target
    action: { http: { method: POST, url: "{{ vars.target_url }}/heal", timeout: 2s } }
    expect: { promql: 'demo_target_healthy{instance="{{ labels.instance }}"}', op: "==", value: 1, within: 15s }
    estimate: 1m
  - name: holds
    description: stays healthy
    expect: { promql: 'demo_target_healthy{instance="{{ labels.instance }}"}', op: "==", value: 1, for: 2s, within: 10s }
    estimate: 30s
`,
    );
    writeFileSync(
      join(rulesDir, 'slow.yaml'),
      `id: SLOW-001
title: Slow probe
match: ['alertname="SlowProbe"']
target: "{{ labels.instance }}"
steps:
  - name: hold
    action: { http: { method: POST, url: "${sink.url}/hold/{{ labels.instance }}", timeout: 60s } }
  - name: after
    action: { http: { method: POST, url: "${sink.url}/after/{{ labels.instance }}" } }
`,
    );
    writeFileSync(
      join(rulesDir, 'stuck.yaml'),
      `id: STUCK-001
title: Stuck probe
match: ['alertname="StuckProbe"']
target: "{{ labels.instance }}"
steps:
  - name: look
    expect: { promql: 'vector(0)', op: "==", value: 1, within: 1s }
escalation:
  - when: failed
    to: [alertmanager]
    message: "{{ labels.instance }} stays stuck"
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
      REDIS_URL,
      QUEUE_PREFIX: prefix,
      PROMETHEUS_URL: stack.prometheusUrl,
      ALERTMANAGER_URL: stack.alertmanagerUrl,
      RULES_DIR: rulesDir,
      WEBHOOK_TOKEN: TOKEN,
      POLL_INTERVAL: '250ms',
    });
    browser = await launchBrowser();
    page = await browser.context.newPage();
    page.on('dialog', (d) => void d.accept());
  });

  afterAll(async () => {
    release();
    await sink?.close();
    await browser?.close();
    await remediator?.stop();
    await stack?.stop();
    target?.server.close();
    await cleanupPrefix(prefix);
  });

  it('asks for a name and the token, keeps neither in the URL, and sets an HttpOnly SameSite=Strict session cookie', async () => {
    await page.goto(`${remediator.url}/`);
    expect(new URL(page.url()).pathname).toBe('/login');
    await page.fill('input[name=name]', 'alice');
    await page.fill('input[name=token]', 'wrong-token-000000000');
    await page.click('button[type=submit]');
    await expect(page.locator('.banner.error').textContent()).resolves.toMatch(/Wrong token/);
    await page.fill('input[name=name]', 'alice');
    await page.fill('input[name=token]', TOKEN);
    await page.click('button[type=submit]');
    await page.waitForSelector('table#runs');
    expect(page.url()).toBe(`${remediator.url}/`);
    expect(page.url()).not.toContain(TOKEN);
    const cookies = await browser.context.cookies();
    const session = cookies.find((c) => c.name === 'remediator_session');
    expect(session).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
    expect(session?.value).not.toContain(TOKEN);
    expect(await page.content()).not.toContain(TOKEN);
    await expect(page.locator('header .who').textContent()).resolves.toMatch(/alice/);
  });

  it('shows a run appear and finish live while Alertmanager delivers a real webhook', async () => {
    await page.waitForSelector('table#runs');
    target.setHealthy(false);
    // No reload: the row arrives through the live stream.
    const row = page.locator('tr[data-run]', { hasText: 'DEMO-001' });
    await row.first().waitFor({ timeout: 30_000 });
    demoRunId = (await row.first().getAttribute('data-run'))!;
    await page.locator(`tr[data-run="${demoRunId}"] .badge.succeeded`).waitFor({ timeout: 40_000 });
    const text = await page.locator(`tr[data-run="${demoRunId}"]`).textContent();
    expect(text).toMatch(/est 1m30s/);
    expect(text).toMatch(/within 15m SLA/);
    await page.screenshot({ path: join(shots, 'runs-list.png'), fullPage: true });
  });

  it("opens the run's timeline: each step's action, observed value and a chart with threshold and window", async () => {
    await page.click(`tr[data-run="${demoRunId}"] a`);
    await page.waitForSelector('ol#timeline');
    const timeline = (await page.locator('ol#timeline').textContent()) ?? '';
    expect(timeline).toMatch(/alert DemoTargetUnhealthy fired/);
    expect(timeline).toMatch(/webhook received from Alertmanager \(receiver remediator\)/);
    expect(timeline).toMatch(/in the queue and waiting for the target's lease/);
    expect(timeline).toMatch(/step 1 heal: passed/);
    expect(timeline).toMatch(/action: POST http:\/\/127\.0\.0\.1:\d+\/heal/);
    expect(timeline).toMatch(/result: succeeded, HTTP 200/);
    expect(timeline).toMatch(/step 2 holds: passed/);
    expect(timeline).toMatch(/succeeded after/);
    for (const step of ['heal', 'holds']) {
      const item = page.locator(`li[data-step="${step}"]`);
      await expect(item.textContent()).resolves.toMatch(/observed 1 at \d{4}-\d\d-\d\dT/);
      const svg = item.locator('.chart svg.chart-svg');
      await svg.waitFor({ timeout: 15_000 });
      expect(Number(await svg.getAttribute('data-series'))).toBe(1);
      expect(await item.locator('svg polyline.series').count()).toBe(1);
      expect(await item.locator('svg line.threshold').count()).toBe(1);
      expect(await item.locator('svg rect.window').count()).toBe(1);
      expect(await item.locator('svg circle.observed').count()).toBeGreaterThan(0);
      await expect(item.locator('svg .threshold-label').textContent()).resolves.toBe('expected == 1');
    }
    await page.screenshot({ path: join(shots, 'run-page.png'), fullPage: true });
  });

  it('pauses and resumes automation, each confirmed and recorded with who, when and why', async () => {
    await page.goto(`${remediator.url}/`);
    await page.fill('form[action="/pause"] input[name=reason]', 'maintenance window');
    await page.click('form[action="/pause"] button');
    await page.waitForSelector('.banner.paused');
    await expect(page.locator('.banner.paused').textContent()).resolves.toMatch(/paused.* by alice at .*maintenance window/s);
    expect(await api<{ paused: boolean; by: string }>('/api/pause')).toMatchObject({
      paused: true,
      by: 'alice',
      reason: 'maintenance window',
    });
    await page.click('form[action="/resume"] button');
    await page.waitForSelector('form[action="/pause"]');
    expect(await api<{ paused: boolean }>('/api/pause')).toMatchObject({ paused: false });
    const audit = (await page.locator('main').textContent()) ?? '';
    expect(audit).toMatch(/pause by alice: maintenance window/);
    expect(audit).toMatch(/resume by alice/);
  });

  it('cancels a running run: its current step finishes, nothing after it runs, and the run says who cancelled', async () => {
    const startsAt = new Date().toISOString();
    const res = await fetch(`${remediator.url}/webhook`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(
        webhookPayload({
          alertname: 'SlowProbe',
          instance: 'slow-1',
          labels: { note: HOSTILE },
          annotations: { summary: HOSTILE },
          startsAt,
          fingerprint: '00000000000c0ffe',
        }),
      ),
    });
    expect(res.status).toBe(202);
    const runId = ((await res.json()) as { alerts: { runId: string }[] }).alerts[0]!.runId;
    // Its first step is held in the sink until the cancel is recorded: no window for the clicks to hit in time.
    await sink.waitForHit((h) => h.path === '/hold/slow-1', 30_000);
    await page.goto(`${remediator.url}/runs/${runId}`);
    await page.locator('form[action$="/cancel"] button').waitFor();
    await page.fill('form[action$="/cancel"] input[name=reason]', 'wrong target');
    await page.click('form[action$="/cancel"] button');
    await waitFor('the cancel to be recorded', async () => (await api<RunRecord>(`/api/remediations/${runId}`)).cancelRequested);
    release();
    await page.locator('h1 .badge.cancelled').waitFor({ timeout: 15_000 });
    const run = await api<RunRecord>(`/api/remediations/${runId}`);
    expect(run.state).toBe('cancelled');
    expect(run.reason).toMatch(/^cancelled by alice at .* after step hold: wrong target$/);
    expect(run.steps.map((s) => [s.name, s.status])).toEqual([['hold', 'passed']]);
    expect(sink.hitsTo('/after/'), 'the step after the cancel never ran').toEqual([]);
    expect(run.audit).toEqual([expect.objectContaining({ action: 'cancel', by: 'alice', reason: 'wrong target' })]);
    // The hostile label value is shown as text, never as markup.
    expect(await page.locator('main').textContent()).toContain(HOSTILE);
    expect(await page.locator('main img').count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as unknown as { pwned?: number }).pwned)).toBeUndefined();
  });

  it('re-runs an incident: a new run linked to the old one goes through lease and budget and verifies', async () => {
    await page.goto(`${remediator.url}/runs/${demoRunId}`);
    await page.fill('form[action$="/retry"] input[name=reason]', 'check it holds');
    await page.click('form[action$="/retry"] button');
    await page.waitForURL((u) => u.pathname.startsWith('/runs/rerun-'));
    const newId = decodeURIComponent(new URL(page.url()).pathname.split('/')[2]!);
    await page.locator('h1 .badge.succeeded').waitFor({ timeout: 30_000 });
    const text = (await page.locator('main').textContent()) ?? '';
    expect(text).toMatch(/re-run requested by alice/);
    expect(text).toContain(demoRunId);
    const old = await api<RunRecord>(`/api/remediations/${demoRunId}`);
    expect(old.reruns).toEqual([newId]);
    expect(old.audit).toEqual([
      expect.objectContaining({ action: 'retry', by: 'alice', runId: newId, reason: 'check it holds' }),
    ]);
    const fresh = await api<RunRecord>(`/api/remediations/${newId}`);
    expect(fresh).toMatchObject({ rerunOf: demoRunId, trigger: { source: 'operator', by: 'alice' }, state: 'succeeded' });
  });

  it("acknowledges an escalated run's open escalation: resolved in Alertmanager, recorded with who", async () => {
    const res = await fetch(`${remediator.url}/webhook`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(
        webhookPayload({
          alertname: 'StuckProbe',
          instance: 'stuck-1',
          annotations: {},
          startsAt: new Date().toISOString(),
          fingerprint: '00000000000057c1',
        }),
      ),
    });
    const runId = ((await res.json()) as { alerts: { runId: string }[] }).alerts[0]!.runId;
    await waitFor('the stuck run to escalate', async () => ((await runState(runId)) === 'escalated' ? true : undefined), 20_000);
    const active = async () =>
      (
        (await (
          await fetch(`${stack.alertmanagerUrl}/api/v2/alerts?filter=${encodeURIComponent('alertname="RemediationEscalated"')}`)
        ).json()) as { labels: Record<string, string> }[]
      ).filter((a) => a.labels.target === 'stuck-1');
    await waitFor('the escalation in Alertmanager', async () => ((await active()).length === 1 ? true : undefined));
    await page.goto(`${remediator.url}/runs/${runId}`);
    await page.fill('form[action$="/acknowledge"] input[name=reason]', 'looking into it');
    await page.click('form[action$="/acknowledge"] button');
    await page.locator('li.k-operator', { hasText: 'acknowledge by alice' }).waitFor();
    expect(await page.locator('form[action$="/acknowledge"]').count()).toBe(0);
    await waitFor('the escalation to be resolved', async () => ((await active()).length === 0 ? true : undefined));
  });

  it('refuses a control without the CSRF token or from another origin', async () => {
    const cookie = (await browser.context.cookies()).find((c) => c.name === 'remediator_session')!;
    const post = (headers: Record<string, string>, body: string) =>
      fetch(`${remediator.url}/pause`, {
        method: 'POST',
        redirect: 'manual',
        headers: {
          cookie: `remediator_session=${cookie.value}`,
          'content-type': 'application/x-www-form-urlencoded',
          ...headers,
        },
        body,
      });
    expect((await post({}, 'reason=x')).status).toBe(403);
    expect((await post({ origin: 'http://evil.example' }, 'reason=x&_csrf=whatever')).status).toBe(403);
    expect((await fetch(`${remediator.url}/pause`, { method: 'POST', body: 'reason=x' })).status).toBe(401);
    expect(await api<{ paused: boolean }>('/api/pause')).toMatchObject({ paused: false });
  });
});
