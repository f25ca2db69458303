/**
 * Issue 9, class "secrets leak", on the real service (`node dist/cli.js serve`, real Redis):
 * - `{{ env.X }}` values reach the action (the sink sees the header, the exec child its env var), but no run record
 *   served by the API, and no escalation notice, carries them, in any form (also echoed in outputs);
 * - exec `env:` is templated;
 * - exec children get an allow-listed environment: a variable of remediator's that is not on the list (a cloud
 *   credential) is not there;
 * - the Redis URL's password is in no log line (also when Redis is unreachable at start).
 * Before: the rendered spec (URL, header, exec env) was stored and served as is, `env:` was passed literally
 * (`{{ env.X }}`), children inherited every variable but five, and the start-up warning printed REDIS_URL.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../helpers/ports.js';
import { cleanupPrefix, REDIS_URL, requireRedis, testPrefix } from '../../helpers/redis.js';
import { startRemediator, type RemediatorProcess } from '../../helpers/remediator.js';
import { startSink, type Sink } from '../../helpers/sink.js';
import { waitFor } from '../../helpers/wait.js';
import { Api, Cleanup, TOKEN, writeRules } from '../guarantees/common.js';
import { webhookPayload } from '../../helpers/payload.js';

const SECRET = 'api-s3cr3t-7f2c9b4e1d';
const CLOUD = 'cloud-credential-5a8e0c3f';
const DUMP =
  "console.log('TOKEN=' + process.env.TOKEN); console.log(JSON.stringify(process.env)); process.stderr.write('failed with ' + process.env.TOKEN + '\\n'); process.exit(3)";

describe('integration/security: secrets stay out of records, notices and logs (real service, real Redis)', () => {
  const cleanup = new Cleanup();
  const prefix = testPrefix('secrets');
  let sink: Sink;
  let serve: RemediatorProcess;
  let api: Api;
  let rulesDir: string;

  beforeAll(async () => {
    await requireRedis();
    sink = await startSink();
    cleanup.add(() => sink.close());
    const j = JSON.stringify;
    rulesDir = writeRules(cleanup, {
      'secret-001.yaml': `id: SECRET-001
title: uses a token from the environment
match: ['alertname="SecretProbe"']
target: "{{ labels.instance }}"
vars: { sink: ${j(sink.url)} }
steps:
  - name: call
    action: { http: { method: POST, url: "{{ vars.sink }}/act/call?key={{ env.REM_TEST_SECRET }}", headers: { Authorization: "Bearer {{ env.REM_TEST_SECRET }}" }, body: { token: "{{ env.REM_TEST_SECRET }}" } } }
    onFailure: continue
  - name: script
    action: { exec: { command: [${j(process.execPath)}, "-e", ${j(DUMP)}], env: { TOKEN: "{{ env.REM_TEST_SECRET }}" } } }
    onFailure: continue
  - name: verify
    expect: { step: script, exitCode: 0 }
escalation:
  - when: failed
    to: [webhook]
    attach: [outputs, steps, step:script]
    message: "script failed"
`,
    });
    cleanup.add(() => cleanupPrefix(prefix));
    serve = await startRemediator(
      {
        REDIS_URL,
        QUEUE_PREFIX: prefix,
        RULES_DIR: rulesDir,
        PROMETHEUS_URL: 'http://127.0.0.1:9',
        WEBHOOK_TOKEN: TOKEN,
        ESCALATION_WEBHOOK_URL: `${sink.url}/escalations`,
        REM_TEST_SECRET: SECRET,
        CLOUD_SECRET_ACCESS_KEY: CLOUD,
        LOG_LEVEL: 'debug',
      },
      'serve',
      'secrets',
    );
    cleanup.add(() => serve.stop());
    api = new Api(serve.url);
  });
  afterAll(() => cleanup.run());

  it('the action gets the secret; the record, the API and the escalation do not, in any form', async () => {
    const [alert] = (await api.webhook(webhookPayload({ alertname: 'SecretProbe', instance: 'host-1' }))).alerts;
    const run = await api.waitFinal(alert!.runId!);
    // The action worked with the real value.
    const call = sink.hitsTo('/act/call')[0]!;
    expect(call.path).toBe(`/act/call?key=${SECRET}`);
    expect(call.body).toEqual({ token: SECRET });
    const script = run.steps.find((s) => s.name === 'script')!;
    // exec env is templated (before: the child saw "{{ env.REM_TEST_SECRET }}"), and its echo is redacted.
    expect(script.result?.output).toContain('TOKEN=[redacted env.REM_TEST_SECRET]');
    expect(script.result?.output).toContain('failed with [redacted env.REM_TEST_SECRET]');
    // The allow-list: the cloud credential and the webhook token were not in the child's environment at all.
    expect(script.result?.output).not.toContain('CLOUD_SECRET_ACCESS_KEY');
    expect(script.result?.output).not.toContain('WEBHOOK_TOKEN');
    expect(script.result?.output).toContain('"PATH"');
    // Nothing served carries the secret: the record, the list, the escalation that was sent.
    const served = [
      JSON.stringify(run),
      await (await fetch(`${serve.url}/api/remediations?limit=10`, { headers: { authorization: `Bearer ${TOKEN}` } })).text(),
    ];
    const escalations = sink.hitsTo('/escalations');
    expect(escalations.length).toBeGreaterThan(0);
    served.push(...escalations.map((h) => JSON.stringify(h.body)));
    for (const text of served) {
      expect(text).not.toContain(SECRET);
      expect(text).not.toContain(encodeURIComponent(SECRET).slice(0, 12));
      expect(text).not.toContain(CLOUD);
    }
    expect(JSON.stringify(run.steps[0]!.action?.spec)).toContain('[redacted env.REM_TEST_SECRET]');
    expect(JSON.stringify(escalations[0]!.body)).toContain('[redacted env.REM_TEST_SECRET]');
    // And no log line of the service holds them either.
    const log = readFileSync(serve.process.logFile, 'utf8');
    expect(log).not.toContain(SECRET);
    expect(log).not.toContain(CLOUD);
  });

  it('the Redis URL password is in no log line, also when Redis is unreachable at start', async () => {
    const password = 'Redis-Passw0rd-9c1e';
    const p = await startRemediator(
      {
        REDIS_URL: `redis://:${password}@127.0.0.1:${await freePort()}`,
        QUEUE_PREFIX: prefix,
        RULES_DIR: rulesDir,
        PROMETHEUS_URL: 'http://127.0.0.1:9',
        WEBHOOK_TOKEN: TOKEN,
        LOG_LEVEL: 'debug',
      },
      'worker',
      'secrets-redis',
    );
    cleanup.add(() => p.stop());
    // The start-up warning about Redis (after its 5 s wait) names where Redis is, without the password.
    const line = await waitFor(
      'the redis warning',
      () =>
        readFileSync(p.process.logFile, 'utf8')
          .split('\n')
          .find((l) => l.includes('redis not reachable yet')),
      20_000,
    );
    expect(line).toContain('127.0.0.1');
    await p.stop();
    expect(readFileSync(p.process.logFile, 'utf8')).not.toContain(password);
  });
});
