/**
 * Issue 9, class "catastrophic regex backtracking", on the real service (`node dist/cli.js serve`, real Redis):
 * a procedure whose matcher is `pool=~"(a+)+b"`, and an alert whose pool label is 40 × "a" and "!". Before, the
 * receiver matched with V8's backtracking RegExp: 2^40 steps, hours with receiver, worker and probes frozen (this
 * test then times out). Now matchers are RE2 (linear time): the payload is answered, the matching alert of the same
 * payload runs, and the probes answer meanwhile. Rules with what Alertmanager refuses (lookarounds, backreferences)
 * are refused at start naming the field. The time itself is measured by `npm run bench:security`, not asserted.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cleanupPrefix, REDIS_URL, requireRedis, testPrefix } from '../../helpers/redis.js';
import { REPO_ROOT, startRemediator, type RemediatorProcess } from '../../helpers/remediator.js';
import { spawnProcess } from '../../helpers/processes.js';
import { Api, Cleanup, TOKEN, writeRules } from '../guarantees/common.js';
import { webhookPayload } from '../../helpers/payload.js';

describe('integration/security: matchers are RE2, linear in the label (real service, real Redis)', () => {
  const cleanup = new Cleanup();
  const prefix = testPrefix('regex');
  let serve: RemediatorProcess;
  let api: Api;
  let rulesDir: string;

  beforeAll(async () => {
    await requireRedis();
    rulesDir = writeRules(cleanup, {
      'regex-001.yaml': `id: REGEX-001
title: crafted label against a backtracking-prone matcher
match: ['alertname="RegexProbe"', 'pool=~"(a+)+b"']
target: "{{ labels.instance }}"
steps:
  - name: note
    action: { exec: { command: [${JSON.stringify(process.execPath)}, "-e", "0"], timeout: 30s } }
    expect: { exitCode: 0 }
`,
    });
    cleanup.add(() => cleanupPrefix(prefix));
    serve = await startRemediator(
      { REDIS_URL, QUEUE_PREFIX: prefix, RULES_DIR: rulesDir, PROMETHEUS_URL: 'http://127.0.0.1:9', WEBHOOK_TOKEN: TOKEN },
      'serve',
      'regex-serve',
    );
    cleanup.add(() => serve.stop());
    api = new Api(serve.url);
  });
  afterAll(() => cleanup.run());

  it('answers a payload carrying a crafted label at once; the probes stay up; the matching alert runs', async () => {
    const crafted = `${'a'.repeat(40)}!`;
    const answer = await api.webhook(
      webhookPayload(
        { alertname: 'RegexProbe', instance: 'crafted', labels: { pool: crafted } },
        { alertname: 'RegexProbe', instance: 'crafted-16k', labels: { pool: `${'a'.repeat(16 * 1024 - 1)}!` } },
        { alertname: 'RegexProbe', instance: 'honest', labels: { pool: 'aaab' } },
      ),
    );
    expect(answer.alerts.map((a) => a.result)).toEqual(['ignored', 'ignored', 'enqueued']);
    expect((await fetch(`${serve.url}/healthz`)).status).toBe(200);
    const run = await api.waitFinal(answer.alerts[2]!.runId!);
    expect(run.state).toBe('succeeded');
  });

  it.each([
    ['a lookahead', 'pool=~"a(?=b)"', /match\[1\]: invalid regular expression: invalid or unsupported Perl syntax/],
    ['a backreference', 'pool=~"(a)\\\\1"', /match\[1\]: invalid regular expression: invalid escape sequence/],
    ['a repeat count over 1000', 'pool=~"a{1001}"', /match\[1\]: invalid regular expression: invalid repeat count/],
  ])('refuses at load a matcher with %s, as Alertmanager would', async (_what, matcher, message) => {
    const dir = writeRules(cleanup, {
      'bad.yaml': `id: BAD\ntitle: t\nmatch: ['alertname="X"', '${matcher}']\ntarget: x\nsteps:\n  - name: s\n    action: { wait: { duration: 1s } }\n`,
    });
    const proc = spawnProcess('check', process.execPath, ['dist/cli.js', 'check', '--rules', dir], {
      cwd: REPO_ROOT,
      env: { WEBHOOK_TOKEN: TOKEN },
    });
    const exit = await proc.exited;
    expect(exit.code).toBe(1);
    expect(readFileSync(proc.logFile, 'utf8')).toMatch(message);
  });
});
