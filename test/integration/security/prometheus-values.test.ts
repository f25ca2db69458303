/**
 * Issue 9, class "lenient parsing of Prometheus", on the real service (`node dist/cli.js serve`, real Redis) against
 * a local server speaking exactly Prometheus' /api/v1/query (test/helpers/fake-prometheus.ts): the real Prometheus
 * never sends these values, which is the point. Before, `Number("0x1")` and `Number("")` made `== 1` and `== 0`
 * hold, and the run "succeeded" with nothing verified. Now such a value makes the verification unknown: the step
 * is `unknown` and the run never succeeds. A value Prometheus does send ("1") still verifies (the control).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startFakePrometheus, vector, type FakePrometheus } from '../../helpers/fake-prometheus.js';
import { cleanupPrefix, REDIS_URL, requireRedis, testPrefix } from '../../helpers/redis.js';
import { startRemediator, type RemediatorProcess } from '../../helpers/remediator.js';
import { Api, Cleanup, TOKEN, writeRules } from '../guarantees/common.js';
import { webhookPayload } from '../../helpers/payload.js';

describe('integration/security: only values Prometheus really sends are numbers (real service, local Prometheus API)', () => {
  const cleanup = new Cleanup();
  const prefix = testPrefix('prom-values');
  let prom: FakePrometheus;
  let serve: RemediatorProcess;
  let api: Api;

  beforeAll(async () => {
    await requireRedis();
    prom = await startFakePrometheus();
    cleanup.add(() => prom.close());
    const rulesDir = writeRules(cleanup, {
      'values-001.yaml': `id: VALUES-001
title: verify a value
match: ['alertname="ValueProbe"']
target: "{{ labels.instance }}"
steps:
  - name: verify
    expect: { promql: 'probe_value{instance="{{ labels.instance }}"}', op: "==", value: 1 }
`,
      'values-002.yaml': `id: VALUES-002
title: verify zero
match: ['alertname="ZeroProbe"']
target: "{{ labels.instance }}"
steps:
  - name: verify
    expect: { promql: 'probe_value{instance="{{ labels.instance }}"}', op: "==", value: 0 }
`,
    });
    cleanup.add(() => cleanupPrefix(prefix));
    serve = await startRemediator(
      {
        REDIS_URL,
        QUEUE_PREFIX: prefix,
        RULES_DIR: rulesDir,
        PROMETHEUS_URL: prom.url,
        WEBHOOK_TOKEN: TOKEN,
        HTTP_TIMEOUT: '1s',
      },
      'serve',
      'prom-values',
    );
    cleanup.add(() => serve.stop());
    api = new Api(serve.url);
  });
  afterAll(() => cleanup.run());

  it.each([
    ['ValueProbe', '0x1'],
    ['ValueProbe', '1'], // the control
    ['ValueProbe', ' 1'],
    ['ValueProbe', '1e0'],
    ['ValueProbe', 'Infinity'],
    ['ZeroProbe', ''],
    ['ZeroProbe', ' '],
    ['ZeroProbe', '0b0'],
  ])('%s with sample value %j', async (alertname, value) => {
    const instance = `${alertname}-${Buffer.from(value).toString('hex') || 'empty'}`;
    prom.script(`probe_value{instance="${instance}"}`, vector([{ instance }, value]));
    const [alert] = (await api.webhook(webhookPayload({ alertname, instance }))).alerts;
    const run = await api.waitFinal(alert!.runId!);
    if (value === '1') {
      expect(run.state).toBe('succeeded');
      return;
    }
    expect(run.state).not.toBe('succeeded');
    expect(run.steps[0]!.status).toBe('unknown');
    expect(run.steps[0]!.expect?.reason).toMatch(/not a sample value as Prometheus writes one/);
  });
});
