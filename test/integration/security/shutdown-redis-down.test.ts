/**
 * Issue 9, class "shutdown with Redis unreachable", on the real service (`node dist/cli.js serve`) with a
 * redis-server of the test's own: a run is in its action (a command that outlives SHUTDOWN_TIMEOUT) when Redis goes
 * away (SHUTDOWN SAVE, so it can come back with its data); then SIGTERM. Before, the stop never finished (closing the
 * queue and handing the run back waited for Redis forever). Now the process exits within SHUTDOWN_TIMEOUT plus the
 * margin, its command gone; and nothing is lost: once Redis is back, another process takes the run over from its
 * checkpoint and finishes it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SHUTDOWN_MARGIN_MS } from '../../../src/serve.js';
import { requireRedis } from '../../helpers/redis.js';
import { startRemediator, type RemediatorProcess } from '../../helpers/remediator.js';
import { waitFor } from '../../helpers/wait.js';
import { Api, baseEnv, Cleanup, OwnRedis, writeRules } from '../guarantees/common.js';
import { webhookPayload } from '../../helpers/payload.js';

const SHUTDOWN_TIMEOUT_MS = 2000;
const HOLD = "require('fs').appendFileSync(process.env.MARK, process.pid + '\\n'); setTimeout(() => {}, 15000)";

describe('integration/security: shutdown with Redis unreachable is bounded and loses nothing (real service, own redis-server)', () => {
  const cleanup = new Cleanup();
  let redis: OwnRedis;
  let serve: RemediatorProcess;
  let env: Record<string, string>;
  let mark: string;

  beforeAll(async () => {
    await requireRedis();
    redis = await OwnRedis.start(cleanup);
    const dir = cleanup.tempDir('shutdown-redis');
    mark = join(dir, 'started.txt');
    const j = JSON.stringify;
    const rulesDir = writeRules(cleanup, {
      'hold-001.yaml': `id: HOLD-001
title: a command longer than SHUTDOWN_TIMEOUT
match: ['alertname="HoldProbe"']
target: "{{ labels.instance }}"
steps:
  - name: hold
    action: { exec: { command: [${j(process.execPath)}, "-e", ${j(HOLD)}], env: { MARK: ${j(mark)} }, timeout: 30s } }
    expect: { exitCode: 0 }
`,
    });
    env = baseEnv(
      { prefix: 'shutdown', rulesDir, prometheusUrl: 'http://127.0.0.1:9', redis: { REDIS_URL: redis.url } },
      { SHUTDOWN_TIMEOUT: `${SHUTDOWN_TIMEOUT_MS}ms` },
    );
    serve = await startRemediator(env, 'serve', 'shutdown-serve');
    cleanup.add(() => serve.stop());
  });
  afterAll(() => cleanup.run());

  it('exits within SHUTDOWN_TIMEOUT + margin with its command gone; the run finishes elsewhere once Redis is back', async () => {
    const [alert] = (await new Api(serve.url).webhook(webhookPayload({ alertname: 'HoldProbe', instance: 'host-1' }))).alerts;
    const pid = await waitFor(
      'the command to run',
      () => (existsSync(mark) ? Number(readFileSync(mark, 'utf8').split('\n')[0]) : undefined),
      15_000,
    );
    await redis.stop(true); // SHUTDOWN SAVE: Redis is gone now, and comes back later with what it had
    const sent = Date.now();
    serve.process.kill('SIGTERM');
    const exit = await Promise.race([
      serve.process.exited,
      new Promise<'still running'>((r) =>
        setTimeout(() => r('still running'), SHUTDOWN_TIMEOUT_MS + SHUTDOWN_MARGIN_MS + 15_000),
      ),
    ]);
    const tookMs = Date.now() - sent;
    console.log(
      `[shutdown] Redis down, SIGTERM → exit ${JSON.stringify(exit)} after ${tookMs} ms (SHUTDOWN_TIMEOUT ${SHUTDOWN_TIMEOUT_MS} ms)`,
    );
    // Exited, cleanly, while Redis was still down: it did not wait for Redis (which comes back only later).
    expect(exit).toEqual({ code: 0, signal: null });
    let gone = false;
    try {
      process.kill(pid, 0);
    } catch {
      gone = true;
    }
    expect(gone).toBe(true);

    // Nothing lost: Redis back, another process takes the run over from its checkpoint (after the lock expires).
    await redis.start();
    const next = await startRemediator(env, 'serve', 'shutdown-serve-2');
    cleanup.add(() => next.stop());
    const run = await new Api(next.url).waitFinal(alert!.runId!, 60_000);
    expect(run.state).toBe('succeeded');
    expect(run.takeovers).toBeGreaterThanOrEqual(1);
  });
});
