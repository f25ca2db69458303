/**
 * Issue 9, class "untrusted values that widen an action", on the real service (`node dist/cli.js serve`, real Redis)
 * with a real Prometheus (Debian's, test/helpers/stack.ts) holding recorded series:
 *   probe_ok{instance="host-a"} 1, probe_ok{instance="host-b"} 1, probe_up 1 (no instance label), probe_up{instance="host-a"} 1.
 * Before:
 * - `probe_ok{instance=~"{{ labels.instance }}"} == 1` with instance `.*` matched every instance: verified, for a
 *   target that has no series at all;
 * - `probe_up{instance="{{ labels.instance }}"} == 1` with an empty instance selected the series *without* the label;
 * - an empty pod became `DELETE /pods/` (the collection), an empty dir `/srv/data/` (the whole directory), and
 *   `../etc` left the directory;
 * - `HOST-1`, ` host-1`, `host\u200b-1` and `host-1:9100` each got the per-target budget and lease (4 runs acted).
 * Now: regex matchers quote alert values, empty and `..` values are refused before anything runs, and spellings of
 * one target share one budget (1 run acts, 3 are recorded as budget exhausted).
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupPrefix, REDIS_URL, requireRedis, testPrefix } from '../../helpers/redis.js';
import { startRemediator, type RemediatorProcess } from '../../helpers/remediator.js';
import { startSink, type Sink } from '../../helpers/sink.js';
import { assertStackBinaries, startStack, type Stack } from '../../helpers/stack.js';
import { Api, Cleanup, FINAL, TOKEN, writeRules } from '../guarantees/common.js';
import { webhookPayload } from '../../helpers/payload.js';

const ARGV_SCRIPT = "require('fs').appendFileSync(process.env.OUT, JSON.stringify(process.argv.slice(1)) + '\\n')";

describe('integration/security: alert values never widen an action (real service, real Redis, real Prometheus)', () => {
  const cleanup = new Cleanup();
  const prefix = testPrefix('widening');
  let stack: Stack;
  let sink: Sink;
  let serve: RemediatorProcess;
  let api: Api;
  let argvFile: string;

  beforeAll(async () => {
    await requireRedis();
    assertStackBinaries();
    const dir = cleanup.tempDir('widening');
    argvFile = join(dir, 'argv.jsonl');
    const recording = join(dir, 'probe.rules.yaml');
    writeFileSync(
      recording,
      `groups:
  - name: probe
    interval: 1s
    rules:
      - record: probe_ok
        expr: label_replace(vector(1), "instance", "host-a", "", "")
      - record: probe_ok
        expr: label_replace(vector(1), "instance", "host-b", "", "")
      - record: probe_up
        expr: vector(1)
      - record: probe_up
        expr: label_replace(vector(1), "instance", "host-a", "", "")
`,
    );
    sink = await startSink();
    cleanup.add(() => sink.close());
    stack = await startStack({
      webhookUrl: 'http://127.0.0.1:9/webhook',
      webhookToken: TOKEN,
      scrapeTargets: [],
      ruleFiles: [recording],
    });
    cleanup.add(() => stack.stop());
    const j = JSON.stringify;
    const rulesDir = writeRules(cleanup, {
      'widen-regex.yaml': `id: WIDEN-REGEX
title: verify one instance through a regex matcher
match: ['alertname="WidenRegex"']
target: "{{ labels.instance }}"
steps:
  - name: verify
    expect: { promql: 'probe_ok{instance=~"{{ labels.instance }}"}', op: "==", value: 1 }
`,
      'widen-empty.yaml': `id: WIDEN-EMPTY
title: act on one pod, one directory, verify one instance
match: ['alertname="WidenEmpty"']
target: "{{ labels.case }}"
vars: { sink: ${j(sink.url)} }
steps:
  - name: delete-pod
    action: { http: { method: DELETE, url: "{{ vars.sink }}/pods/{{ labels.pod }}" } }
    onFailure: continue
  - name: clean-dir
    action: { exec: { command: [${j(process.execPath)}, "-e", ${j(ARGV_SCRIPT)}, "/srv/data/{{ labels.dir }}"], env: { OUT: ${j(argvFile)} } } }
    onFailure: continue
  - name: verify
    expect: { promql: 'probe_up{instance="{{ labels.instance }}"}', op: "==", value: 1 }
    onFailure: continue
`,
      'widen-budget.yaml': `id: WIDEN-BUDGET
title: once per hour per target
match: ['alertname="WidenBudget"']
target: "{{ labels.instance }}"
budget: { runs: 1, per: 1h }
vars: { sink: ${j(sink.url)} }
steps:
  - name: act
    action: { http: { method: POST, url: "{{ vars.sink }}/act/budget" } }
    expect: { httpStatus: 200 }
`,
    });
    cleanup.add(() => cleanupPrefix(prefix));
    serve = await startRemediator(
      {
        REDIS_URL,
        QUEUE_PREFIX: prefix,
        RULES_DIR: rulesDir,
        PROMETHEUS_URL: stack.prometheusUrl,
        WEBHOOK_TOKEN: TOKEN,
        POLL_INTERVAL: '100ms',
        STORM_TARGETS: '100',
      },
      'serve',
      'widening',
    );
    cleanup.add(() => serve.stop());
    api = new Api(serve.url);
  });
  afterAll(() => cleanup.run());

  it('a regex matcher quotes the alert value: ".*" verifies nothing (no series named ".*")', async () => {
    const [wild, exact] = (
      await api.webhook(
        webhookPayload({ alertname: 'WidenRegex', instance: '.*' }, { alertname: 'WidenRegex', instance: 'host-a' }),
      )
    ).alerts;
    const wildRun = await api.waitFinal(wild!.runId!);
    expect(wildRun.state).not.toBe('succeeded');
    expect(wildRun.steps[0]!.expect?.reason).toBe('no data');
    expect(wildRun.steps[0]!.expect?.description).toContain('probe_ok{instance=~"\\\\.\\\\*"}');
    // The control: the same procedure verifies a real instance.
    expect((await api.waitFinal(exact!.runId!)).state).toBe('succeeded');
  });

  it('empty and ".." values are refused before anything runs: no collection DELETE, no directory, no label-less selector', async () => {
    const cases = [
      { case: 'empty-all', pod: '', dir: '', instance: '' },
      { case: 'dotdot', pod: '..', dir: '../etc', instance: 'host-a' },
      { case: 'control', pod: 'pod-1', dir: 'app', instance: 'host-a' },
    ];
    const answer = await api.webhook(
      webhookPayload(
        ...cases.map((c) => ({
          alertname: 'WidenEmpty',
          instance: c.instance,
          labels: { case: c.case, pod: c.pod, dir: c.dir },
        })),
      ),
    );
    const runs = await Promise.all(answer.alerts.map((a) => api.waitFinal(a.runId!)));
    const step = (i: number, name: string) => runs[i]!.steps.find((s) => s.name === name)!;
    for (const i of [0, 1]) {
      expect(step(i, 'delete-pod').reason, cases[i]!.case).toMatch(/^not run: labels\.pod is/);
      expect(step(i, 'clean-dir').reason, cases[i]!.case).toMatch(/^not run: labels\.dir /);
    }
    expect(step(0, 'verify').status).toBe('failed');
    expect(step(0, 'verify').expect?.reason).toMatch(/labels\.instance is empty/);
    // Only the control acted: one DELETE of one pod, one argv with one directory, one verification that held.
    expect(sink.hitsTo('/pods').map((h) => `${h.method} ${h.path}`)).toEqual(['DELETE /pods/pod-1']);
    const argv = existsSync(argvFile) ? readFileSync(argvFile, 'utf8').trim().split('\n') : [];
    expect(argv).toEqual([JSON.stringify(['/srv/data/app'])]);
    expect(step(2, 'verify').status).toBe('passed');
    expect(FINAL).toContain(runs[2]!.state);
  });

  it('spellings of one target share its budget: one run acts, the others are budget-exhausted', async () => {
    const spellings = ['host-1', 'HOST-1', ' host-1', 'host\u200b-1', 'host-1:9100', 'ｈｏｓｔ-1'];
    const answer = await api.webhook(webhookPayload(...spellings.map((instance) => ({ alertname: 'WidenBudget', instance }))));
    expect(answer.enqueued).toBe(spellings.length);
    const runs = await Promise.all(answer.alerts.map((a) => api.waitFinal(a.runId!)));
    expect(runs.filter((r) => r.state === 'succeeded')).toHaveLength(1);
    expect(runs.filter((r) => /^budget exhausted/.test(r.reason ?? ''))).toHaveLength(spellings.length - 1);
    expect(sink.hitsTo('/act/budget')).toHaveLength(1);
  });
});
