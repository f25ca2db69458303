/**
 * `serve` as several processes (the default): the serve process is the worker, its receivers are processes of their
 * own on the same PORT. On the built binary with real Redis: one /metrics for all of them (counters summed, build info
 * and reload status not multiplied), a reload reaching every process and counted once, a killed receiver restarted
 * by the parent, SIGTERM stopping all of them (exit 0), a receiver that cannot start ending the serve non-zero, and
 * SERVE_RECEIVERS=0 as one process.
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { webhookPayload } from '../helpers/payload.js';
import { freePort } from '../helpers/ports.js';
import { isRunning, spawnProcess } from '../helpers/processes.js';
import { cleanupPrefix, REDIS_URL, requireRedis, testPrefix } from '../helpers/redis.js';
import { REPO_ROOT, startRemediator, type RemediatorProcess } from '../helpers/remediator.js';
import { waitFor } from '../helpers/wait.js';
import { MAX_RESTARTS } from '../../src/serve-processes.js';

const TOKEN = 'serve-processes-token-0123456789';
const RULE = `id: SP-001
title: split probe
match: ['alertname="SplitProbe"']
target: "{{ labels.instance }}"
steps:
  - name: wait
    action: { wait: { duration: 10ms } }
`;

/** The Node processes a serve forked (its receivers): children of `pid` running dist/cli.js. */
function receiverPids(pid: number): number[] {
  const children = readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  return children.filter((c) => {
    try {
      return isRunning(c) && readFileSync(`/proc/${c}/cmdline`, 'utf8').includes('dist/cli.js');
    } catch {
      return false;
    }
  });
}

describe('integration: serve as a worker process and receiver processes (real processes, real Redis)', () => {
  const prefix = testPrefix('serve-processes');
  const dir = mkdtempSync(join(tmpdir(), 'remediator-split-'));
  const auth = { authorization: `Bearer ${TOKEN}` };
  let r: RemediatorProcess;
  const env = (extra: Record<string, string> = {}) => ({
    REDIS_URL,
    QUEUE_PREFIX: prefix,
    RULES_DIR: dir,
    WEBHOOK_TOKEN: TOKEN,
    PROMETHEUS_URL: 'http://127.0.0.1:9',
    DRY_RUN: 'true',
    ...extra,
  });
  const scrape = async () => (await fetch(`${r.url}/metrics`)).text();
  const series = (text: string, name: string) =>
    text.split('\n').filter((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  const sum = (lines: string[]) => lines.reduce((s, l) => s + Number(l.split(' ').at(-1)), 0);

  beforeAll(async () => {
    await requireRedis();
    writeFileSync(join(dir, 'a.yaml'), RULE);
    r = await startRemediator(env({ SERVE_RECEIVERS: '2' }), 'serve', 'split-serve');
  });

  afterAll(async () => {
    await r?.stop();
    await cleanupPrefix(prefix);
    rmSync(dir, { recursive: true, force: true });
  });

  it('the serve process is the worker and forks its receivers; runs name the serve process', async () => {
    await waitFor('two receivers', () => (receiverPids(r.process.pid).length === 2 ? true : undefined));
    const res = await fetch(`${r.url}/webhook`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify(webhookPayload({ alertname: 'SplitProbe', instance: 'host-1' })),
    });
    expect(res.status).toBe(202);
    const runId = ((await res.json()) as { alerts: { runId: string }[] }).alerts[0]!.runId;
    const run = await waitFor('the run to finish', async () => {
      const rec = (await (await fetch(`${r.url}/api/remediations/${runId}`, { headers: auth })).json()) as {
        state: string;
        worker?: string;
      };
      return ['running', 'queued'].includes(rec.state) ? undefined : rec;
    });
    expect(Number(run.worker?.split(':').at(-1))).toBe(r.process.pid);
  });

  it('one /metrics for all processes: counters summed, build info and reload status once', async () => {
    const text = await waitFor('the run counted', async () => {
      const t = await scrape();
      return sum(series(t, 'remediator_runs_total')) === 1 ? t : undefined;
    });
    expect(sum(series(text, 'remediator_alerts_total{result="enqueued"}'))).toBe(1);
    expect(series(text, 'remediator_build_info')).toHaveLength(1);
    expect(series(text, 'remediator_build_info')[0]).toMatch(/ 1$/);
    expect(series(text, 'remediator_config_last_reload_successful')).toEqual(['remediator_config_last_reload_successful 1']);
    expect(series(text, 'process_start_time_seconds')).toHaveLength(1);
    const reload = await fetch(`${r.url}/-/reload`, { method: 'POST', headers: auth });
    expect(reload.status).toBe(200);
    // The receiver that took the request reloaded, and so did the worker and the other receiver: counted once.
    const after = await waitFor('the reload counted', async () => {
      const t = await scrape();
      return sum(series(t, 'remediator_config_reloads_total{result="success"}')) === 1 ? t : undefined;
    });
    expect(series(after, 'remediator_config_last_reload_successful')).toEqual(['remediator_config_last_reload_successful 1']);
    await waitFor('every process to log the reload', () =>
      readFileSync(r.process.logFile, 'utf8').match(/"msg":"rules reloaded"/g)?.length === 3 ? true : undefined,
    );
  });

  it('SIGHUP to the whole process group reloads every process once (the serve passes it on; receivers leave it to it)', async () => {
    const reloadedLines = () => readFileSync(r.process.logFile, 'utf8').match(/"msg":"rules reloaded"/g)?.length ?? 0;
    await waitFor('two receivers', () => (receiverPids(r.process.pid).length === 2 ? true : undefined));
    await waitFor('ready', async () => ((await fetch(`${r.url}/readyz`)).status === 200 ? true : undefined));
    const reloads = async () => sum(series(await scrape(), 'remediator_config_reloads_total{result="success"}'));
    const [before, reloadsBefore] = [reloadedLines(), await reloads()];
    process.kill(-r.process.pid, 'SIGHUP');
    await waitFor('every process to log the reload', () => (reloadedLines() >= before + 3 ? true : undefined));
    // A scrape goes through the serve process after it passed the reload on: every relayed reload has landed.
    expect(await reloads()).toBe(reloadsBefore + 1);
    expect(reloadedLines()).toBe(before + 3);
    expect(receiverPids(r.process.pid)).toHaveLength(2);
  });

  it('a killed receiver is restarted by the serve process, which stays up', async () => {
    const [victim, other] = receiverPids(r.process.pid);
    process.kill(victim!, 'SIGKILL');
    const replaced = await waitFor('a new receiver', () => {
      const now = receiverPids(r.process.pid);
      return now.length === 2 && !now.includes(victim!) ? now : undefined;
    });
    expect(replaced).toContain(other);
    expect(r.process.exitInfo()).toBeNull();
    expect(readFileSync(r.process.logFile, 'utf8')).toMatch(/"msg":"receiver process exited; restarting"/);
    await waitFor('ready again', async () => ((await fetch(`${r.url}/readyz`)).status === 200 ? true : undefined));
  });

  it('a reload passed on while a receiver is still starting reaches it once it is up (not dropped)', async () => {
    const reloadedLines = () => readFileSync(r.process.logFile, 'utf8').match(/"msg":"rules reloaded"/g)?.length ?? 0;
    const listening = (pid: number) => readFileSync(r.process.logFile, 'utf8').includes(`"pid":${pid},`);
    // Both up first: a receiver killed before it listens is one that failed to start, which stops the serve.
    const [victim] = await waitFor('two listening receivers', () => {
      const pids = receiverPids(r.process.pid);
      return pids.length === 2 && pids.every(listening) ? pids : undefined;
    });
    const before = reloadedLines();
    process.kill(victim!, 'SIGKILL');
    const fresh = await waitFor('a new receiver process', () =>
      receiverPids(r.process.pid).find((c) => c !== victim && !listening(c)),
    );
    // Forked but not listening yet (it logs "receiver process listening" with its pid once up): the other receiver
    // takes the request and the serve passes the reload on to both the worker and the starting receiver.
    // A kept-alive connection to the killed receiver is reset before anything reads the request: sent again.
    const reload = await waitFor('the reload to be taken', () =>
      fetch(`${r.url}/-/reload`, { method: 'POST', headers: auth }).catch(() => undefined),
    );
    expect(reload.status).toBe(200);
    await waitFor('the new receiver to listen', () => (listening(fresh) ? true : undefined));
    await waitFor('every process, the new receiver included, to log the reload', () =>
      reloadedLines() >= before + 3 ? true : undefined,
    );
    expect(reloadedLines()).toBe(before + 3);
  });

  it('SIGTERM stops the receivers and the worker; the serve exits 0 with none left', async () => {
    const children = receiverPids(r.process.pid);
    r.process.kill('SIGTERM');
    expect(await r.process.exited).toEqual({ code: 0, signal: null });
    for (const pid of children) await waitFor(`receiver ${pid} gone`, () => (isRunning(pid) ? undefined : true));
  });

  it('a receiver that cannot start (PORT taken) ends the serve with a non-zero exit', async () => {
    const port = await freePort();
    const taken: Server = createServer();
    await new Promise<void>((resolve) => taken.listen(port, '127.0.0.1', resolve));
    try {
      const p = spawnProcess('split-port-taken', process.execPath, ['dist/cli.js', 'serve'], {
        cwd: REPO_ROOT,
        env: { ...env(), HOST: '127.0.0.1', PORT: String(port) },
      });
      const exit = await p.exited;
      expect(exit.code, p.logTail()).toBe(1);
      expect(readFileSync(p.logFile, 'utf8')).toMatch(/"msg":"receiver process failed to start; stopping"/);
      await p.stop();
    } finally {
      taken.close();
    }
  });

  it('a receiver that keeps crashing (MAX_RESTARTS in a row) ends the serve with a non-zero exit', async () => {
    const p = await startRemediator(env(), 'serve', 'split-crashing');
    try {
      let killed: number | undefined;
      for (let crash = 0; crash <= MAX_RESTARTS; crash++) {
        // Each time the receiver that replaced the last one, once it is there (the backoff doubles meanwhile).
        const pid = await waitFor(`receiver ${crash + 1}`, () => receiverPids(p.process.pid).find((c) => c !== killed), {
          timeoutMs: 45_000,
          processes: [p.process],
        });
        process.kill(pid, 'SIGKILL');
        killed = pid;
      }
      expect(await p.process.exited).toEqual({ code: 1, signal: null });
      const log = readFileSync(p.process.logFile, 'utf8');
      expect(log.match(/"msg":"receiver process exited; restarting"/g)).toHaveLength(MAX_RESTARTS);
      expect(log).toMatch(/"msg":"receiver process cannot be kept up; stopping"/);
    } finally {
      await p.stop();
    }
  }, 150_000);

  it('SERVE_RECEIVERS=0: one process, receiver and worker together', async () => {
    const one = await startRemediator(env({ SERVE_RECEIVERS: '0' }), 'serve', 'one-serve');
    try {
      expect(receiverPids(one.process.pid)).toEqual([]);
      expect((await fetch(`${one.url}/readyz`)).status).toBe(200);
    } finally {
      await one.stop();
    }
  });
});
