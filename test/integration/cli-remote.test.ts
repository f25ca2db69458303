/**
 * The CLI as real processes (`node dist/cli.js …`) against a running instance (the built binary), with a real
 * Prometheus verifying every expectation and a real Alertmanager for `plan` on `amtool alert query -o json` output.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunRecord } from '../../src/engine/record.js';
import { artifactDir } from '../helpers/browser.js';
import { freePort } from '../helpers/ports.js';
import { cleanupPrefix, REDIS_URL, requireRedis, testPrefix } from '../helpers/redis.js';
import { REPO_ROOT, startRemediator, type RemediatorProcess } from '../helpers/remediator.js';
import { webhookPayload } from '../helpers/payload.js';
import { startSink, type Sink } from '../helpers/sink.js';
import { BINARIES, startStack, type Stack } from '../helpers/stack.js';
import { waitFor } from '../helpers/wait.js';

const TOKEN = 'cli-remote-token-0123456789abcdef';

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

describe('cli against a running instance (real processes, real Redis, Prometheus and Alertmanager)', () => {
  const prefix = testPrefix('cli-remote');
  const dir = mkdtempSync(join(tmpdir(), 'remediator-cli-remote-'));
  const rulesDir = join(dir, 'procedures');
  const tokenFile = join(dir, 'token');
  let stack: Stack;
  let remediator: RemediatorProcess;
  let env: Record<string, string>;
  let sink: Sink;
  let release!: () => void;
  const holding = new Promise<void>((r) => (release = r));

  /** The CLI as a user runs it; resolves when it exits. */
  const cli = (
    args: string[],
    extra: Record<string, string> = {},
    onOutput?: (stdout: string, stderr: string) => void,
  ): Promise<Result> =>
    new Promise((resolve) => {
      const child = spawn(process.execPath, ['dist/cli.js', ...args], {
        cwd: REPO_ROOT,
        env: { PATH: process.env.PATH, ...env, ...extra },
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d: Buffer) => {
        stdout += d.toString();
        onOutput?.(stdout, stderr);
      });
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
        onOutput?.(stdout, stderr);
      });
      const timer = setTimeout(() => child.kill('SIGKILL'), 45_000);
      child.on('exit', (code) => {
        clearTimeout(timer);
        resolve({ code, stdout, stderr });
      });
    });
  const api = async <T>(path: string) =>
    (await (await fetch(`${remediator.url}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } })).json()) as T;
  const fire = async (alertname: string, instance: string) => {
    const res = await fetch(`${remediator.url}/webhook`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: JSON.stringify(webhookPayload({ alertname, instance, startsAt: new Date().toISOString() })),
    });
    expect(res.status).toBe(202);
    return ((await res.json()) as { alerts: { runId: string }[] }).alerts[0]!.runId;
  };

  beforeAll(async () => {
    await requireRedis();
    // The slow run's first step is held here until the test has cancelled it: no window to hit in time.
    sink = await startSink({ hold: (hit) => (hit.path.startsWith('/hold/') ? holding : undefined) });
    (await import('node:fs')).mkdirSync(rulesDir);
    writeFileSync(tokenFile, `${TOKEN}\n`);
    writeFileSync(
      join(rulesDir, 'tail.yaml'),
      `id: TAIL-001
title: Tail probe
match: ['alertname="TailProbe"']
target: "{{ labels.instance }}"
steps:
  - name: first
    action: { wait: { duration: 3s } } # long enough for the tail's 1 s polls to see it running
    expect: { promql: 'vector(1)', op: "==", value: 1, within: 5s }
    estimate: 10s
  - name: second
    action: { wait: { duration: 1s } }
    expect: { promql: 'vector(2)', op: ">", value: 1, within: 5s }
    estimate: 10s
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
    const port = await freePort();
    stack = await startStack({
      webhookUrl: `http://127.0.0.1:${port}/webhook`,
      webhookToken: TOKEN,
      scrapeTargets: [],
      ruleFiles: [],
    });
    remediator = await startRemediator({
      PORT: String(port),
      REDIS_URL,
      QUEUE_PREFIX: prefix,
      PROMETHEUS_URL: stack.prometheusUrl,
      RULES_DIR: rulesDir,
      WEBHOOK_TOKEN: TOKEN,
      POLL_INTERVAL: '200ms',
    });
    env = { REMEDIATOR_URL: remediator.url, REMEDIATOR_TOKEN: TOKEN };
  });

  afterAll(async () => {
    release();
    await sink?.close();
    await remediator?.stop();
    await stack?.stop();
    await cleanupPrefix(prefix);
  });

  it('--version, --help per subcommand, and a usage error exits 2', async () => {
    const version = await cli(['--version']);
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    for (const sub of [['runs', 'tail'], ['runs', 'cancel'], ['plan'], ['pause'], ['serve'], ['check']]) {
      const help = await cli([...sub, '--help']);
      expect(help.code, sub.join(' ')).toBe(0);
      expect(help.stdout).toMatch(new RegExp(`^Usage: remediator ${sub.join(' ')} `));
    }
    const bad = await cli(['runs', 'list', '--state', 'bogus']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/Allowed choices are queued, running/);
  });

  it('runs tail (no id) waits for the next run and follows it live to its verified end, exit 0', async () => {
    let fired: Promise<string> | undefined;
    const result = await cli(['runs', 'tail'], {}, (_out, err) => {
      // Fire once tail is waiting, so it has to pick up a run that did not exist when it started.
      if (err.includes('waiting for a run')) fired ??= fire('TailProbe', 'tail-1');
    });
    const runId = await fired!;
    writeFileSync(join(artifactDir('cli'), 'runs-tail.txt'), result.stdout);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stderr).toMatch(/waiting for a run/);
    const out = result.stdout;
    expect(out).toContain(`following run ${runId}: TAIL-001 on tail-1`);
    expect(out).toMatch(/step 1 first: running/);
    expect(out).toMatch(/step 1 first: passed in [\d.]+s \(estimate 10s\)/);
    expect(out).toMatch(/observed 1 at \d{4}-\d\d-\d\dT[\d:.]+Z/);
    expect(out).toMatch(/step 2 second: passed/);
    expect(out).toMatch(/observed 2 at/);
    expect(
      out
        .trimEnd()
        .split('\n')
        .filter((l) => !l.startsWith('    '))
        .at(-1),
    ).toMatch(/ succeeded after [\d.]+s$/);
    // Live: entries arrived in order as the run went, the running step before its outcome.
    expect(out.indexOf('step 1 first: running')).toBeLessThan(out.indexOf('step 1 first: passed'));
  });

  it('runs list, runs show (the timeline as text) and --json', async () => {
    const list = await cli(['runs', 'list', '--procedure', 'TAIL-001']);
    expect(list.code).toBe(0);
    expect(list.stdout.split('\n')[0]).toMatch(/^ID +STATE +PROCEDURE +TARGET +RECEIVED +DURATION \/ ESTIMATE$/);
    expect(list.stdout).toMatch(/inc-[0-9a-f]+ +succeeded +TAIL-001 +tail-1 /);
    const runs = JSON.parse((await cli(['runs', 'list', '--json', '--since', '1h'])).stdout) as RunRecord[];
    const id = runs.find((r) => r.procedure === 'TAIL-001')!.id;
    const show = await cli(['runs', 'show', id]);
    expect(show.code).toBe(0);
    expect(show.stdout).toMatch(new RegExp(`^run ${id}\\n {2}TAIL-001 Tail probe\\n {2}target tail-1, state succeeded`));
    expect(show.stdout).toMatch(/alert TailProbe fired/);
    expect(show.stdout).toMatch(/webhook received from Alertmanager/);
    expect(show.stdout).toMatch(/expect vector\(1\) == 1 within 5s: holds/);
    const missing = await cli(['runs', 'show', 'no-such-run']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/HTTP 404: no run no-such-run/);
  });

  it('runs retry (token from a file) starts a linked re-run that tail follows to success; runs cancel stops a running run', async () => {
    const runs = (await api<{ runs: RunRecord[] }>('/api/remediations?procedure=TAIL-001')).runs;
    const old = runs.find((r) => !r.rerunOf)!;
    const retry = await cli(['runs', 'retry', old.id, '--reason', 'again', '--as', 'carol'], {
      REMEDIATOR_TOKEN: '',
      REMEDIATOR_TOKEN_FILE: tokenFile,
    });
    expect(retry.code, retry.stderr).toBe(0);
    const newId = /re-run (rerun-[0-9a-f]+)/.exec(retry.stdout)![1]!;
    const tail = await cli(['runs', 'tail', newId]);
    expect(tail.code).toBe(0);
    expect(tail.stdout).toMatch(/re-run requested by carol/);
    expect((await api<RunRecord>(`/api/remediations/${old.id}`)).audit).toEqual([
      expect.objectContaining({ action: 'retry', by: 'carol', reason: 'again', runId: newId }),
    ]);

    const slow = await fire('SlowProbe', 'slow-1');
    // Its first step is in the sink's hands until released: the cancel lands while it runs, however slow the machine.
    await sink.waitForHit((h) => h.path === '/hold/slow-1', 30_000);
    const cancelled = await cli(['runs', 'cancel', slow, '--reason', 'not needed', '--as', 'bob']);
    expect(cancelled.code).toBe(0);
    expect(cancelled.stdout).toMatch(/cancel requested for .*: the run ends after its current step/);
    release();
    const end = await cli(['runs', 'tail', slow]);
    expect(end.code).toBe(1);
    expect(end.stdout).toMatch(/cancelled by bob at .* after step hold: not needed/);
    expect(sink.hitsTo('/after/'), 'the step after the cancel never ran').toEqual([]);
    const again = await cli(['runs', 'cancel', slow]);
    expect(again.code).toBe(1);
    expect(again.stderr).toMatch(/has ended \(cancelled\)/);
  });

  it('pause and resume record who and why; a wrong token says how to set it', async () => {
    const paused = await cli(['pause', '--reason', 'cli test'], { USER: 'dave' });
    expect(paused.code).toBe(0);
    expect(paused.stdout).toBe('paused: cli test\n');
    expect(await api<{ paused: boolean; by: string }>('/api/pause')).toMatchObject({
      paused: true,
      reason: 'cli test',
      by: expect.stringMatching(/@/),
    });
    const resumed = await cli(['resume']);
    expect(resumed.stdout).toBe('resumed: automation runs again\n');
    const denied = await cli(['runs', 'list'], { REMEDIATOR_TOKEN: 'wrong-token-wrong-token' });
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/HTTP 401: .*REMEDIATOR_TOKEN/);
  });

  it('plan reads `amtool alert query -o json` output and Alertmanager API v2 alerts', async () => {
    const post = await fetch(`${stack.alertmanagerUrl}/api/v2/alerts`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify([{ labels: { alertname: 'SlowProbe', instance: 'plan-1' }, annotations: { summary: 'from amtool' } }]),
    });
    expect(post.status).toBe(200);
    const amtool = await waitFor('amtool to list the alert', async () => {
      const r = spawnSync(
        BINARIES.amtool,
        ['alert', 'query', '-o', 'json', `--alertmanager.url=${stack.alertmanagerUrl}`, 'alertname=SlowProbe'],
        {
          encoding: 'utf8',
        },
      );
      return r.status === 0 && r.stdout.includes('plan-1') ? r.stdout : undefined;
    });
    const file = join(dir, 'amtool.json');
    writeFileSync(file, amtool);
    const fromAmtool = await cli(['plan', file, '--rules', rulesDir]);
    expect(fromAmtool.code, fromAmtool.stderr).toBe(0);
    expect(fromAmtool.stdout).toMatch(/^alert SlowProbe \{"alertname":"SlowProbe","instance":"plan-1"\} \(firing\)$/m);
    expect(fromAmtool.stdout).toMatch(/→ SLOW-001: Slow probe {2}target=plan-1/);
    expect(fromAmtool.stdout).toMatch(/1\. hold\n +action: POST http:\/\/127\.0\.0\.1:\d+\/hold\//);

    const v2 = join(dir, 'v2.json');
    writeFileSync(v2, await (await fetch(`${stack.alertmanagerUrl}/api/v2/alerts?filter=alertname%3D%22SlowProbe%22`)).text());
    const fromApi = await cli(['plan', v2, '--rules', rulesDir]);
    expect(fromApi.code).toBe(0);
    expect(fromApi.stdout).toMatch(/→ SLOW-001/);
    const junk = join(dir, 'junk.json');
    writeFileSync(junk, '{"hello": 1}');
    const bad = await cli(['plan', junk, '--rules', rulesDir]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/neither an Alertmanager webhook payload, webhook alerts, nor API v2/);
  });
});
