/**
 * Issue 9, class "amplification", on the real service with a redis-server of the test's own (so its memory and its
 * bytes sent are this test's alone):
 * - payload fields and alerts per payload are bounded: over a bound is a 400 naming the field (before: a 64 KiB
 *   groupKey, an unbounded receiver and 10,000 alerts were taken, and stored once per alert);
 * - the largest payload accepted (WEBHOOK_MAX_BYTES, WEBHOOK_MAX_ALERTS alerts, the longest receiver, group key and
 *   external URL) grows Redis by a small multiple of its size: the group key and receiver are stored once;
 * - listing one run reads about one record from Redis (before: up to 1000 whole records whatever the limit);
 * - a record stays within its size with a note of what was cut: 5,000 observed series and a 2 MB JSON body.
 * Figures (growth, time) are printed as `[amplification] …` lines; only sizes are asserted, never time.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PAYLOAD_LIMITS } from '../../../src/alertmanager/payload.js';
import { RECORD_LIMITS } from '../../../src/engine/record-cap.js';
import { startFakePrometheus, vector, type FakePrometheus } from '../../helpers/fake-prometheus.js';
import { requireRedis } from '../../helpers/redis.js';
import { startRemediator, type RemediatorProcess } from '../../helpers/remediator.js';
import { Api, Cleanup, OwnRedis, TOKEN, writeRules } from '../guarantees/common.js';
import { webhookPayload } from '../../helpers/payload.js';

const MAX_BYTES = 5 * 1024 * 1024;
const MAX_ALERTS = 1000;

/** The largest payload the receiver accepts: every alert matches, every shared field at its bound, ~5 MB. */
function largestPayload(): string {
  const perAlert = Math.floor((MAX_BYTES - 64 * 1024) / MAX_ALERTS) - 420;
  const alerts = Array.from({ length: MAX_ALERTS }, (_, i) => ({
    alertname: 'AmpProbe',
    instance: `host-${i}`,
    labels: { severity: 'page' },
    annotations: { description: 'd'.repeat(perAlert) },
  }));
  return JSON.stringify({
    ...webhookPayload(...alerts),
    receiver: 'r'.repeat(PAYLOAD_LIMITS.receiver),
    groupKey: 'g'.repeat(PAYLOAD_LIMITS.groupKey),
    externalURL: `http://${'e'.repeat(PAYLOAD_LIMITS.externalURL - 7)}`,
  });
}

async function info(redis: Redis, section: string, field: string): Promise<number> {
  const text = await redis.info(section);
  return Number(new RegExp(`^${field}:(\\d+)`, 'm').exec(text)?.[1] ?? NaN);
}

describe('integration/security: bounded work per request (real service, own redis-server)', () => {
  const cleanup = new Cleanup();
  let redis: OwnRedis;
  let client: Redis;
  let receiver: RemediatorProcess;
  let api: Api;

  beforeAll(async () => {
    await requireRedis();
    redis = await OwnRedis.start(cleanup);
    client = new Redis(redis.url);
    cleanup.add(() => client.disconnect());
    const rulesDir = writeRules(cleanup, {
      'amp-001.yaml': `id: AMP-001
title: a procedure every alert of the payload matches
match: ['alertname="AmpProbe"']
target: "{{ labels.instance }}"
steps:
  - name: wait
    action: { wait: { duration: 1ms } }
`,
    });
    // Receiver only: what one request costs, before any run.
    receiver = await startRemediator(
      {
        REDIS_URL: redis.url,
        QUEUE_PREFIX: 'amp',
        RULES_DIR: rulesDir,
        PROMETHEUS_URL: 'http://127.0.0.1:9',
        WEBHOOK_TOKEN: TOKEN,
      },
      'receiver',
      'amp-receiver',
    );
    cleanup.add(() => receiver.stop());
    api = new Api(receiver.url);
  });
  afterAll(() => cleanup.run());

  const send = (body: string) =>
    fetch(`${receiver.url}/webhook`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body,
    });

  it.each([
    ['a group key over its bound', { groupKey: 'g'.repeat(PAYLOAD_LIMITS.groupKey + 1) }, 'groupKey'],
    ['a receiver over its bound', { receiver: 'r'.repeat(PAYLOAD_LIMITS.receiver + 1) }, 'receiver'],
    ['an external URL over its bound', { externalURL: 'x'.repeat(PAYLOAD_LIMITS.externalURL + 1) }, 'externalURL'],
    [
      'common labels over their count',
      { commonLabels: Object.fromEntries(Array.from({ length: 129 }, (_, i) => [`l${i}`, 'v'])) },
      'commonLabels',
    ],
  ])('%s is a 400 naming the field', async (_what, extra, field) => {
    const res = await send(JSON.stringify({ ...webhookPayload({ alertname: 'AmpProbe', instance: 'h' }), ...extra }));
    expect(res.status).toBe(400);
    const body = (await res.json()) as { issues: { path: string }[] };
    expect(body.issues.map((i) => i.path)).toContain(field);
  });

  it('too many alerts, too many labels, or too much label text in one alert is a 400 naming the field', async () => {
    const many = webhookPayload(
      ...Array.from({ length: MAX_ALERTS + 1 }, (_, i) => ({ alertname: 'AmpProbe', instance: `h${i}` })),
    );
    const r1 = await send(JSON.stringify(many));
    expect(r1.status).toBe(400);
    expect(((await r1.json()) as { issues: { path: string; message: string }[] }).issues[0]).toMatchObject({
      path: 'alerts',
      message: expect.stringContaining('WEBHOOK_MAX_ALERTS'),
    });
    const wide = webhookPayload({
      alertname: 'AmpProbe',
      instance: 'h',
      labels: Object.fromEntries(Array.from({ length: 130 }, (_, i) => [`l${i}`, 'v'])),
    });
    const r2 = await send(JSON.stringify(wide));
    expect(r2.status).toBe(400);
    expect(((await r2.json()) as { issues: { path: string }[] }).issues.map((i) => i.path)).toContain('alerts[0].labels');
    const heavy = webhookPayload({
      alertname: 'AmpProbe',
      instance: 'h',
      labels: Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`l${i}`, 'v'.repeat(15_000)])),
    });
    const r3 = await send(JSON.stringify(heavy));
    expect(r3.status).toBe(400);
    expect(((await r3.json()) as { issues: { path: string }[] }).issues.map((i) => i.path)).toContain('alerts[0].annotations');
  });

  it('the largest accepted payload grows Redis by a small multiple of its size; listing one run reads about one record', async () => {
    const body = largestPayload();
    expect(body.length).toBeLessThanOrEqual(MAX_BYTES);
    const before = await info(client, 'memory', 'used_memory');
    const started = process.hrtime.bigint();
    const res = await send(body);
    const ms = Number(process.hrtime.bigint() - started) / 1e6;
    expect(res.status).toBe(202);
    expect(((await res.json()) as { enqueued: number }).enqueued).toBe(MAX_ALERTS);
    const growth = (await info(client, 'memory', 'used_memory')) - before;
    console.log(
      `[amplification] largest accepted payload: ${(body.length / 1048576).toFixed(2)} MB, ${MAX_ALERTS} alerts → Redis +${(growth / 1048576).toFixed(1)} MB (×${(growth / body.length).toFixed(2)}), answered in ${ms.toFixed(0)} ms`,
    );
    // Each alert's record holds its labels and annotations, its job only its labels; the 8 KiB group key and the
    // 1 KiB receiver are stored once in all. (Before: group key and receiver once per alert, twice.)
    expect(growth).toBeLessThan(2.5 * body.length);
    expect(await client.keys('{amp}:trigger:*')).toHaveLength(1);

    // Listing one run: the bytes Redis sends for it are about one record (before: every record in the index).
    const sentBefore = await info(client, 'stats', 'total_net_output_bytes');
    const list = (await (
      await fetch(`${receiver.url}/api/remediations?limit=1`, { headers: { authorization: `Bearer ${TOKEN}` } })
    ).json()) as {
      runs: unknown[];
    };
    const sent = (await info(client, 'stats', 'total_net_output_bytes')) - sentBefore;
    expect(list.runs).toHaveLength(1);
    console.log(`[amplification] GET /api/remediations?limit=1 with ${MAX_ALERTS} runs stored: Redis sent ${sent} bytes`);
    expect(sent).toBeLessThan(5 * JSON.stringify(list.runs[0]).length + 4096);
    // A filtered list reads the small meta of each run, and only the records it returns.
    const sentBefore2 = await info(client, 'stats', 'total_net_output_bytes');
    const one = await api.runs({ target: 'HOST-7:9100', limit: '5' });
    const sent2 = (await info(client, 'stats', 'total_net_output_bytes')) - sentBefore2;
    expect(one.map((r) => r.target)).toEqual(['host-7']);
    expect(sent2).toBeLessThan(MAX_ALERTS * 200 + 5 * JSON.stringify(one[0]).length);
  });

  describe('records within their size', () => {
    let prom: FakePrometheus;
    let bigBody: Server;
    let serve: RemediatorProcess;
    let serveApi: Api;

    beforeAll(async () => {
      prom = await startFakePrometheus();
      cleanup.add(() => prom.close());
      const huge = JSON.stringify({ items: Array.from({ length: 20_000 }, (_, i) => ({ id: i, pad: 'p'.repeat(90) })) });
      bigBody = createServer((_req, res) => res.writeHead(200, { 'content-type': 'application/json' }).end(huge));
      await new Promise<void>((r) => bigBody.listen(0, '127.0.0.1', () => r()));
      cleanup.add(() => new Promise<void>((r) => bigBody.close(() => r())));
      const url = `http://127.0.0.1:${(bigBody.address() as AddressInfo).port}/big`;
      prom.script(
        'many_series',
        vector(...Array.from({ length: 5000 }, (_, i): [Record<string, string>, string] => [{ instance: `i${i}` }, '1'])),
      );
      const rulesDir = writeRules(cleanup, {
        'amp-002.yaml': `id: AMP-002
title: a big body and many series
match: ['alertname="BigRecord"']
target: "{{ labels.instance }}"
steps:
  - name: fetch
    action: { http: { method: GET, url: "${url}" } }
    expect: { promql: many_series, op: "==", value: 1 }
`,
      });
      serve = await startRemediator(
        { REDIS_URL: redis.url, QUEUE_PREFIX: 'amp2', RULES_DIR: rulesDir, PROMETHEUS_URL: prom.url, WEBHOOK_TOKEN: TOKEN },
        'serve',
        'amp-serve',
      );
      cleanup.add(() => serve.stop());
      serveApi = new Api(serve.url);
    });

    it('5,000 observed series and a 2 MB JSON body: the record stays within its size and says what was cut', async () => {
      const [alert] = (await serveApi.webhook(webhookPayload({ alertname: 'BigRecord', instance: 'h' }))).alerts;
      const run = await serveApi.waitFinal(alert!.runId!);
      expect(run.state).toBe('succeeded'); // the run used everything
      const stored = await client.hget(`{amp2}:run:${run.id}`, 'json');
      console.log(`[amplification] record with 5000 series and a 2 MB body: ${stored!.length} characters stored`);
      expect(stored!.length).toBeLessThanOrEqual(RECORD_LIMITS.record);
      expect(run.steps[0]!.observed.length).toBeLessThanOrEqual(RECORD_LIMITS.observations);
      expect(run.truncated).toEqual(
        expect.arrayContaining([
          expect.stringMatching(/^steps\[0\]\.observed: kept \d+ of 5000 observed values$/),
          expect.stringMatching(/^steps\[0\]\.result\.body: \d+ characters of JSON not kept/),
        ]),
      );
    });
  });
});
