/**
 * Prometheus-style lifecycle on the built binary as a real process: /-/healthy, /-/ready, /-/reload and SIGHUP
 * re-read RULES_DIR without a restart; a bad rule set is refused with every problem named and the old rules keep
 * serving; the outcome is remediator_config_last_reload_successful, as Prometheus has it. Also the standard
 * process and Node.js metric names and remediator_build_info.
 */
import { mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { webhookPayload } from '../helpers/payload.js';
import { cleanupPrefix, REDIS_URL, requireRedis, testPrefix } from '../helpers/redis.js';
import { REPO_ROOT, startRemediator, type RemediatorProcess } from '../helpers/remediator.js';
import { waitFor } from '../helpers/wait.js';

const TOKEN = 'lifecycle-token-0123456789abcdef';
const rule = (id: string, alertname: string) => `id: ${id}
title: ${id} probe
match: ['alertname="${alertname}"']
target: "{{ labels.instance }}"
steps:
  - name: wait
    action: { wait: { duration: 10ms } }
`;

/** A firing alert on host-n that started n seconds ago. */
const payload = (alertname: string, n: number) =>
  webhookPayload({ alertname, instance: `host-${n}`, startsAt: new Date(Date.now() - n * 1000).toISOString() });

describe('integration: /-/healthy, /-/ready, /-/reload and SIGHUP (real process, real Redis)', () => {
  const prefix = testPrefix('lifecycle');
  const dir = mkdtempSync(join(tmpdir(), 'remediator-lifecycle-'));
  let r: RemediatorProcess;
  const auth = { authorization: `Bearer ${TOKEN}` };
  const post = (path: string, body?: unknown) =>
    fetch(`${r.url}${path}`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
    });
  const metric = async (name: string) => {
    const text = await (await fetch(`${r.url}/metrics`)).text();
    const line = text.split('\n').find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
    return line === undefined ? undefined : Number(line.split(' ').at(-1));
  };
  let counter = 0;
  const webhook = async (alertname: string) =>
    (await (await post('/webhook', payload(alertname, ++counter))).json()) as { enqueued: number; ignored: number };

  beforeAll(async () => {
    await requireRedis();
    writeFileSync(join(dir, 'a.yaml'), rule('OLD-001', 'OldAlert'));
    r = await startRemediator({ REDIS_URL, QUEUE_PREFIX: prefix, RULES_DIR: dir, WEBHOOK_TOKEN: TOKEN, DRY_RUN: 'true' });
  });

  afterAll(async () => {
    await r?.stop();
    await cleanupPrefix(prefix);
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers /-/healthy and /-/ready in plain text, as Prometheus does', async () => {
    const healthy = await fetch(`${r.url}/-/healthy`);
    expect(healthy.status).toBe(200);
    expect(await healthy.text()).toBe('remediator is Healthy.\n');
    const ready = await fetch(`${r.url}/-/ready`);
    expect(ready.status).toBe(200);
    expect(await ready.text()).toBe('remediator is Ready.\n');
    expect((await fetch(`${r.url}/-/reload`, { headers: auth })).status).toBe(405);
    expect((await fetch(`${r.url}/-/reload`, { method: 'POST' })).status).toBe(401);
  });

  it('exports remediator_build_info and the standard process and Node.js metrics', async () => {
    const text = await (await fetch(`${r.url}/metrics`)).text();
    const version = (JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string }).version;
    expect(text).toMatch(
      new RegExp(
        `^remediator_build_info\\{version="${version.replaceAll('.', '\\.')}",revision="[^"]+",nodejs_version="v20\\.[^"]+"\\} 1$`,
        'm',
      ),
    );
    for (const name of [
      'process_cpu_seconds_total',
      'process_resident_memory_bytes',
      'process_start_time_seconds',
      'nodejs_heap_size_used_bytes',
      'nodejs_eventloop_lag_p99_seconds',
    ])
      expect(text).toMatch(new RegExp(`^${name} `, 'm'));
    expect(text).not.toMatch(/^remediator_process_/m);
    expect(await metric('remediator_config_last_reload_successful')).toBe(1);
  });

  it('a bad rule set is refused with every problem named; the old rules keep serving the next alert', async () => {
    writeFileSync(join(dir, 'b.yaml'), 'id: NEW-001\ntitle: broken\nmatch: ["alertname=\\"NewAlert\\""]\nsteps: []\nbogus: 1\n');
    const res = await post('/-/reload');
    expect(res.status).toBe(500);
    const text = await res.text();
    expect(text).toMatch(/^failed to reload rules, keeping the old ones \(OLD-001\):/);
    expect(text).toMatch(/b\.yaml:\d+: /);
    expect(await metric('remediator_config_last_reload_successful')).toBe(0);
    expect(await metric('remediator_config_reloads_total{result="failure"}')).toBe(1);
    expect(await webhook('OldAlert')).toMatchObject({ enqueued: 1 });
    expect(await webhook('NewAlert')).toMatchObject({ enqueued: 0, ignored: 1 });
    // Readiness is about the rules in force, which are fine.
    expect((await fetch(`${r.url}/-/ready`)).status).toBe(200);
  });

  it('a good rule set sent by SIGHUP takes effect for the next alert, without a restart', async () => {
    writeFileSync(join(dir, 'b.yaml'), rule('NEW-001', 'NewAlert'));
    unlinkSync(join(dir, 'a.yaml'));
    const pid = r.process.pid;
    r.process.kill('SIGHUP');
    await waitFor('the reload to succeed', async () =>
      (await metric('remediator_config_last_reload_successful')) === 1 ? true : undefined,
    );
    expect(r.process.pid).toBe(pid);
    expect(r.process.exitInfo()).toBeNull();
    expect(await webhook('NewAlert')).toMatchObject({ enqueued: 1 });
    expect(await webhook('OldAlert')).toMatchObject({ enqueued: 0, ignored: 1 });
    expect(await metric('remediator_config_reloads_total{result="success"}')).toBe(1);
    const log = readFileSync(r.process.logFile, 'utf8');
    expect(log).toMatch(/"msg":"rule reload refused; keeping the old rules"/);
    expect(log).toMatch(/"msg":"rules reloaded"/);
  });
});
