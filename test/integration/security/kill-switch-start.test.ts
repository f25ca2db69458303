/**
 * Issue 9, class "the kill switch can be lost", on the real service (`node dist/cli.js serve`) with a redis-server
 * of the test's own that is down when remediator starts with PAUSED=true and comes up afterwards. Before, the
 * pause was written only if Redis answered within the first 5 s, so here it was dropped and the alert's action ran.
 * Now the process holds automation paused until the pause is in Redis: the run is recorded with its plan, the action
 * never reaches the sink, and GET /api/pause says paused by config.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../helpers/ports.js';
import { spawnProcess, type ManagedProcess } from '../../helpers/processes.js';
import { requireRedis } from '../../helpers/redis.js';
import { REPO_ROOT } from '../../helpers/remediator.js';
import { startSink, type Sink } from '../../helpers/sink.js';
import { waitFor } from '../../helpers/wait.js';
import { Api, Cleanup, httpProcedure, OwnRedis, TOKEN, writeRules } from '../guarantees/common.js';
import { webhookPayload } from '../../helpers/payload.js';

describe('integration/security: PAUSED=true holds while Redis is unreachable at start (real service, own redis-server)', () => {
  const cleanup = new Cleanup();
  let redis: OwnRedis;
  let sink: Sink;
  let serve: ManagedProcess;
  let url: string;

  beforeAll(async () => {
    await requireRedis();
    redis = await OwnRedis.start(cleanup);
    await redis.stop(false); // its port is known; nothing listens there when remediator starts
    sink = await startSink();
    cleanup.add(() => sink.close());
    const rulesDir = writeRules(cleanup, {
      'pause-001.yaml': httpProcedure({ id: 'PAUSE-001', alertname: 'PauseProbe', sinkUrl: sink.url, expect: false }),
    });
    const port = await freePort();
    url = `http://127.0.0.1:${port}`;
    serve = spawnProcess('paused-serve', process.execPath, ['dist/cli.js', 'serve'], {
      cwd: REPO_ROOT,
      env: {
        PORT: String(port),
        HOST: '127.0.0.1',
        REDIS_URL: redis.url,
        QUEUE_PREFIX: 'paused',
        RULES_DIR: rulesDir,
        PROMETHEUS_URL: 'http://127.0.0.1:9',
        WEBHOOK_TOKEN: TOKEN,
        PAUSED: 'true',
        LOG_LEVEL: 'info',
        RUN_RETENTION: '3650d',
        MAX_INCIDENT_AGE: '3649d',
      },
    });
    cleanup.add(() => serve.stop({ signal: 'SIGKILL' }));
  });
  afterAll(() => cleanup.run());

  it('the run is recorded with its plan and nothing executes; the pause is in Redis once it is reachable', async () => {
    // remediator gave up waiting for Redis at start (5 s) and says it holds the pause itself.
    await waitFor(
      'the start-up warning',
      () => readFileSync(serve.logFile, 'utf8').includes('automation held paused by this process') || undefined,
      20_000,
    );
    await redis.start();
    await waitFor(
      'readyz',
      async () => ((await fetch(`${url}/readyz`).catch(() => undefined))?.status === 200 ? true : undefined),
      20_000,
    );
    const api = new Api(url);
    const [alert] = (await api.webhook(webhookPayload({ alertname: 'PauseProbe', instance: 'host-1' }))).alerts;
    const run = await api.waitFinal(alert!.runId!);
    expect(run.state).toBe('skipped');
    expect(run.reason).toMatch(/^automation paused \(PAUSED=true at start/);
    expect(run.steps[0]!.result?.output).toMatch(/^dry run: would run POST /);
    expect(sink.hitsTo('/act')).toEqual([]);
    const pause = (await (await fetch(`${url}/api/pause`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as {
      paused: boolean;
      by: string;
    };
    expect(pause).toMatchObject({ paused: true, by: 'config' });
    // And Redis has it (another process started now would see it too).
    await waitFor('the pause in Redis', async () => {
      const cli = spawnProcess('redis-cli', '/usr/bin/redis-cli', ['-p', String(redis.port), 'get', '{paused}:paused']);
      await cli.exited;
      return readFileSync(cli.logFile, 'utf8').includes('PAUSED=true at start') || undefined;
    });
  });
});
