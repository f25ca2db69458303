/**
 * The contract every escalation target runs, against a local HTTP server on 127.0.0.1 (test/helpers/sink.ts)
 * standing in for the receiving end (Alertmanager's API v2, a webhook, a chat service): the pattern of
 * Alertmanager's notify tests and AssertNotifyLeaksNoSecret.
 *
 *   describeTargetContract(slack, { env: (url) => ({ ESCALATION_SLACK_URL: url }), delivered: (hit, notice) => …, maxBodyChars });
 *
 * - it is registered, rule files may name it, configure() reads it from its variables (and nothing without them),
 *   describe() is one line that shows no secret;
 * - an escalation and a pause notice are each one request, as the receiving end expects them (`delivered`);
 * - what it sends is capped (`maxBodyChars`) however large the notice;
 * - retryable classification: 5xx, 429 and no connection are worth retrying; other 4xx are not;
 * - it settles within ~100 ms of an abort, and then is not retryable;
 * - nothing it throws holds a secret from its URL (user info, path, query) or the environment.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { targetByKind } from '../../../src/escalation/index.js';
import type {
  EscalationNotice,
  EscalationTarget,
  Env,
  Notice,
  SharedClients,
  TargetContext,
} from '../../../src/escalation/types.js';
import { silentLogger } from '../../../src/log.js';
import { RuleFile } from '../../../src/rules/schema.js';
import { freePort } from '../../helpers/ports.js';
import { startSink, type Sink, type SinkHit } from '../../helpers/sink.js';

export interface TargetContractCases {
  /** The environment (and shared clients) that configure the target to deliver to `url`. */
  configure: (url: string) => { env: Env; shared?: SharedClients };
  /** The request a notice made, as the receiving end must get it. */
  delivered: (hit: SinkHit, notice: Notice) => void;
  /** The most characters a request body may carry. */
  maxBodyChars: number;
}

export const escalationNotice = (over: Partial<EscalationNotice> = {}): EscalationNotice => ({
  kind: 'remediation-escalated',
  runId: 'P1-003-0123456789abcdef-1700000000000',
  procedure: 'P1-003',
  title: 'Dashboard IPC Disconnected',
  target: 'sup-1:9466',
  outcome: 'failed',
  state: 'failed',
  reason: 'step restart-relay failed: expected supervisor_relay_process_up == 1',
  message: 'Relay restart did not reconnect the dashboard IPC',
  alert: {
    labels: { alertname: 'DashboardIPCDisconnected', instance: 'sup-1:9466' },
    annotations: {},
    fingerprint: '0123456789abcdef',
    startsAt: '2026-11-28T07:17:26.321Z',
    status: 'firing',
  },
  steps: [{ name: 'restart-relay', status: 'failed', reason: 'expected 1, got 0' }],
  attachments: { outputs: { 'restart-relay': 'relay: connection refused' } },
  labels: { team: 'platform' },
  runUrl: 'http://127.0.0.1:9095/api/remediations/P1-003-0123456789abcdef-1700000000000',
  ...over,
});

export const pauseNotice = (): Notice => ({
  kind: 'remediation-paused',
  message: 'Automatic remediation paused: storm: 12 distinct targets firing within 300s (threshold 10).',
  example: { runId: 'r1', procedure: 'P1-001', target: 't1' },
  at: '2026-11-28T07:17:26.321Z',
});

const ctx = (signal: AbortSignal = new AbortController().signal): TargetContext => ({
  signal,
  log: silentLogger,
  timeoutMs: 2000,
});

/** The error a send throws, or undefined when it resolved. */
async function failure(promise: Promise<void>): Promise<(Error & { retryable?: boolean }) | undefined> {
  return promise.then(
    () => undefined,
    (e: unknown) => e as Error & { retryable?: boolean },
  );
}

export function describeTargetContract<S>(target: EscalationTarget<S>, cases: TargetContractCases): void {
  describe(`contract: ${target.kind} (against a local HTTP server speaking its receiving end's calls)`, () => {
    let sink: Sink;
    beforeAll(async () => {
      sink = await startSink({
        // /status/<code>/… answers <code>; /hang/… holds the answer for 10 s.
        status: (hit) => Number(/\/status\/(\d{3})\//.exec(hit.path)?.[1] ?? 200),
        delayMs: (hit) => (hit.path.includes('/hang/') ? 10_000 : 0),
      });
    });
    afterAll(() => sink.close());

    const settingsFor = (url: string): S => {
      const { env, shared } = cases.configure(url);
      const settings = target.configure(env, shared ?? {});
      expect(settings, `${target.kind} configured for ${url}`).toBeDefined();
      return settings!;
    };
    const send = (notice: Notice, url: string, signal?: AbortSignal) => target.send(notice, settingsFor(url), ctx(signal));

    it('is registered, may be named in rule files, and is configured by its variables only', () => {
      expect(targetByKind.get(target.kind)).toBe(target);
      const rule = RuleFile.safeParse({
        id: 'x',
        title: 'x',
        match: ['a="b"'],
        target: 'x',
        steps: [{ name: 's', action: { wait: { duration: '1s' } } }],
        escalation: [{ when: 'failed', to: [target.kind], message: 'm' }],
      });
      expect(rule.success).toBe(true);
      expect(target.configure({}, {})).toBeUndefined();
      expect(target.needs).not.toBe('');
    });

    it('describe() is one line and shows no secret from the URL', () => {
      const secret = `s3cret-${randomBytes(6).toString('hex')}`;
      const line = target.describe(settingsFor(`http://user:${secret}@127.0.0.1:9/${secret}/x?token=${secret}`));
      expect(line).not.toMatch(/[\r\n]/);
      expect(line).not.toContain(secret);
    });

    it.each([
      ['an escalation', escalationNotice()],
      ['a pause notice', pauseNotice()],
    ])('delivers %s as one request the receiving end takes', async (_what, notice) => {
      const before = sink.hits.length;
      await send(notice, `${sink.url}/ok/${target.kind}`);
      expect(sink.hits.length - before).toBe(1);
      cases.delivered(sink.hits.at(-1)!, notice);
    });

    it(`caps what it sends to ${cases.maxBodyChars} characters, however large the notice`, async () => {
      const huge = 'x'.repeat(2 * 1024 * 1024);
      await send(
        escalationNotice({
          message: huge,
          reason: huge,
          attachments: { outputs: { a: huge } },
          steps: [{ name: 'a', status: 'failed', reason: huge }],
        }),
        `${sink.url}/big/${target.kind}`,
      );
      expect(JSON.stringify(sink.hits.at(-1)!.body).length).toBeLessThanOrEqual(cases.maxBodyChars);
    });

    it.each`
      status | retryable
      ${500} | ${true}
      ${503} | ${true}
      ${429} | ${true}
      ${400} | ${false}
      ${403} | ${false}
      ${404} | ${false}
    `(
      'an answer $status is a failure, retryable: $retryable',
      async ({ status, retryable }: { status: number; retryable: boolean }) => {
        const err = await failure(send(escalationNotice(), `${sink.url}/status/${status}/${target.kind}`));
        expect(err).toBeInstanceOf(Error);
        expect(err!.retryable).toBe(retryable);
      },
    );

    it('no connection is a retryable failure', async () => {
      const err = await failure(send(escalationNotice(), `http://127.0.0.1:${await freePort()}/${target.kind}`));
      expect(err).toBeInstanceOf(Error);
      expect(err!.retryable).toBe(true);
    });

    it('an abort settles it before the held answer comes, not retryable', async () => {
      const ac = new AbortController();
      const pending = failure(send(escalationNotice(), `${sink.url}/hang/${target.kind}`, ac.signal));
      const hit = await sink.waitForHit((h) => h.path.includes(`/hang/${target.kind}`));
      ac.abort(new Error('test abort'));
      const err = await pending;
      // The sink never sent its answer: the request is still held, or the client went away (the abort).
      expect(hit.endedAt === undefined || hit.aborted === true, 'settled while the sink still held its answer').toBe(true);
      // Not retryable: a timeout or a dropped connection would be.
      expect(err).toBeInstanceOf(Error);
      expect(err!.retryable).toBe(false);
    });

    it('a thrown error holds no secret from its URL or the environment', async () => {
      const secret = `s3cret-${randomBytes(8).toString('hex')}`;
      process.env.REMEDIATOR_CONTRACT_SECRET = secret;
      const inUrl = (base: string) =>
        base.replace('http://', `http://user:${secret}@`) + `/${secret}/${target.kind}?token=${secret}`;
      try {
        for (const url of [inUrl(`${sink.url}/status/500`), inUrl(`http://127.0.0.1:${await freePort()}`)]) {
          const err = await failure(send(escalationNotice(), url));
          expect(err, `${url} must fail`).toBeInstanceOf(Error);
          for (let e: unknown = err, depth = 0; e instanceof Error && depth < 5; e = e.cause, depth++) {
            expect(e.message).not.toContain(secret);
            expect(String(e.stack)).not.toContain(secret);
            expect(
              JSON.stringify(
                e,
                Object.getOwnPropertyNames(e).filter((k) => k !== 'cause'),
              ),
            ).not.toContain(secret);
          }
        }
      } finally {
        delete process.env.REMEDIATOR_CONTRACT_SECRET;
      }
    });
  });
}
