/**
 * Issue 9, class "double execution after a crash or a rolling deploy", on the real service: two `worker` processes
 * and a receiver on real Redis; a procedure whose exec step runs a command for 20 s, writing a tick with its pid every
 * 100 ms, and whose expectation (the command's exit code 0) fails until it has finished, so a takeover acts again.
 *
 * 1. SIGKILL of the worker running the command: the command's group dies with it (its guard sees the pipe close),
 *    and the second worker's copy starts only after the first copy's last tick. Before: the child was detached and
 *    outlived the worker, and both copies ticked side by side for ~10 s.
 * 2. SIGKILL of the worker and of its guard (as if both were gone with no one to stop the command): the takeover
 *    finds the command in the checkpoint, stops its group and waits until it is gone before acting again (the step
 *    records it in `fenced`).
 * 3. SIGTERM with a command that ignores SIGTERM and outlives SHUTDOWN_TIMEOUT: the worker exits only once the
 *    command is gone (SIGKILL after the grace). Before: its SIGKILL timer was unref'd, and it ran on.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupPrefix, requireRedis, testPrefix } from '../../helpers/redis.js';
import type { RemediatorProcess } from '../../helpers/remediator.js';
import { waitFor } from '../../helpers/wait.js';
import { Api, baseEnv, Cleanup, startAll, workerPid, workerReady, writeRules } from '../guarantees/common.js';
import { webhookPayload } from '../../helpers/payload.js';

/** Ticks `<pid> <ms>` to TICKS every 100 ms for 20 s; ignores SIGTERM (only SIGKILL stops it). */
const TICKER = `
const fs = require('fs');
if (process.env.IGNORE_TERM) process.on('SIGTERM', () => {});
const end = Date.now() + 20000;
const tick = () => { fs.appendFileSync(process.env.TICKS, process.pid + ' ' + Date.now() + '\\n'); if (Date.now() < end) setTimeout(tick, 100); };
tick();
`;

interface Tick {
  pid: number;
  at: number;
}
const ticks = (file: string): Tick[] =>
  existsSync(file)
    ? readFileSync(file, 'utf8')
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => {
          const [pid, at] = l.split(' ').map(Number);
          return { pid: pid!, at: at! };
        })
    : [];
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('integration/security: an exec child never runs twice at once (real service, real Redis)', () => {
  const cleanup = new Cleanup();
  const prefix = testPrefix('double-exec');
  let dir: string;
  let api: Api;
  let workers: RemediatorProcess[];
  let env: Record<string, string>;

  beforeAll(async () => {
    await requireRedis();
    dir = cleanup.tempDir('double-exec');
    const j = JSON.stringify;
    const rulesDir = writeRules(cleanup, {
      'tick-001.yaml': `id: TICK-001
title: a long command
match: ['alertname="TickProbe"']
target: "{{ labels.instance }}"
steps:
  - name: tick
    action: { exec: { command: [${j(process.execPath)}, "-e", ${j(TICKER)}], env: { TICKS: "${dir}/{{ labels.instance }}.ticks", IGNORE_TERM: "1" }, timeout: 40s } }
    expect: { step: tick, exitCode: 0 }
`,
    });
    cleanup.add(() => cleanupPrefix(prefix));
    env = baseEnv({ prefix, rulesDir, prometheusUrl: 'http://127.0.0.1:9' }, { LOCK_DURATION: '4s', STALLED_INTERVAL: '2s' });
    const [receiver, ...rest] = await startAll(cleanup, [
      { env, command: 'receiver', name: 'dx-receiver' },
      { env, command: 'worker', name: 'dx-worker-1' },
      { env, command: 'worker', name: 'dx-worker-2' },
    ]);
    workers = rest;
    await Promise.all(workers.map((w) => workerReady(w)));
    api = new Api(receiver!.url);
  });
  afterAll(() => cleanup.run());

  /** Fires the alert, waits for its first ticks; returns the run, the worker running it and the command's pid. */
  async function start(instance: string) {
    const [alert] = (await api.webhook(webhookPayload({ alertname: 'TickProbe', instance }))).alerts;
    const runId = alert!.runId!;
    const file = join(dir, `${instance}.ticks`);
    const first = await waitFor('the first ticks', () => (ticks(file).length >= 3 ? ticks(file)[0] : undefined), 20_000);
    const running = await api.waitRun(runId, 'the command in the checkpoint', (r) => r.checkpoint?.running?.pid === first.pid);
    const worker = workers.find((w) => w.process.pid === workerPid(running))!;
    expect(worker, 'the worker named in the record').toBeDefined();
    return { runId, file, pid: first.pid, running, worker };
  }

  /** No tick of another copy falls between the first and the last tick of a copy. */
  function overlaps(all: Tick[]): string[] {
    const pids = [...new Set(all.map((t) => t.pid))];
    const spans = pids.map((pid) => {
      const mine = all.filter((t) => t.pid === pid);
      return { pid, from: mine[0]!.at, to: mine.at(-1)!.at };
    });
    return spans.flatMap((a) =>
      spans.filter((b) => b !== a && b.from > a.from && b.from <= a.to).map((b) => `${b.pid} started while ${a.pid} ran`),
    );
  }

  it('SIGKILL of the worker: its command dies with it; the takeover runs the second copy alone', async () => {
    const { runId, file, pid, worker } = await start('killed-worker');
    const killedAt = Date.now();
    worker.process.kill('SIGKILL');
    await waitFor('the first copy to be gone', () => (!alive(pid) ? true : undefined), 10_000);
    const run = await api.waitFinal(runId, 60_000);
    const all = ticks(file);
    expect(overlaps(all)).toEqual([]);
    expect(new Set(all.map((t) => t.pid)).size).toBe(2); // the takeover acted again (the fix did not hold), once
    console.log(
      `[double-execution] worker SIGKILLed: first copy's last tick ${Math.max(...all.filter((t) => t.pid === pid).map((t) => t.at)) - killedAt} ms after the kill; run ${run.state}, takeovers ${run.takeovers}`,
    );
    expect(run.state).toBe('succeeded');
    workers = workers.filter((w) => w !== worker);
    const replacement = (await startAll(cleanup, [{ env, command: 'worker', name: 'dx-worker-3' }]))[0]!;
    await workerReady(replacement);
    workers.push(replacement);
  });

  it('SIGKILL of the worker and its guard: the takeover stops the command (fenced) before acting again', async () => {
    const { runId, file, pid, running, worker } = await start('killed-guard');
    expect(running.checkpoint?.running?.guardPid).toBeGreaterThan(0);
    process.kill(running.checkpoint!.running!.guardPid!, 'SIGKILL');
    worker.process.kill('SIGKILL');
    expect(alive(pid)).toBe(true); // nobody is left to stop it…
    const run = await api.waitFinal(runId, 60_000);
    expect(alive(pid)).toBe(false); // …but the takeover did
    expect(run.steps[0]!.fenced).toMatch(
      /^the previous attempt's command \(process group \d+\) was still running: stopped with SIGKILL/,
    );
    expect(overlaps(ticks(file))).toEqual([]);
    expect(run.state).toBe('succeeded');
  });

  it('SIGTERM past SHUTDOWN_TIMEOUT: the worker exits only once its command (which ignores SIGTERM) is gone', async () => {
    const { pid, worker } = await start('shutdown');
    worker.process.kill('SIGTERM');
    const exit = await worker.process.exited;
    const stillThere = alive(pid);
    console.log(
      `[double-execution] SIGTERM: worker exit ${JSON.stringify(exit)}, its command alive after the exit: ${stillThere}`,
    );
    expect(stillThere).toBe(false);
    expect(exit.code).toBe(0);
  });
});
