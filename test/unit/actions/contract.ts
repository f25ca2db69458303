/**
 * The contract every action runs (like Alertmanager's AssertNotifyLeaksNoSecret or bullmq's adapter-conformance):
 *
 *   describeActionContract(exec, { valid: {...}, slow: () => spec, bigOutput: () => spec, failing: (secret) => spec });
 *
 * - the spec accepts `valid` and rejects it with an unknown key added;
 * - describe() is one non-empty line, and render() keeps a valid spec valid;
 * - run() settles within ~100 ms of an abort (mid-run with `slow`, and with a signal aborted before the call);
 * - output is capped (`bigOutput`);
 * - a thrown error carries no secret from the spec or the environment (`failing`).
 * A case an action cannot have is left out and reported as skipped.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { OUTPUT_LIMIT, type Action, type ActionContext } from '../../../src/actions/types.js';
import { silentLogger } from '../../../src/log.js';

export interface ActionContractCases<S> {
  /** A valid spec as a rule file writes it. */
  valid: Record<string, unknown>;
  /** A spec whose run takes seconds unless aborted. */
  slow?: () => S | Promise<S>;
  /** Resolves once a `slow` run has really started (default: 50 ms after the call). */
  started?: () => Promise<void>;
  /** A spec whose run produces more than OUTPUT_LIMIT characters of output. */
  bigOutput?: () => S | Promise<S>;
  /** A spec whose run throws, with `secret` placed in it (env, header, URL…); the environment holds it too. */
  failing?: (secret: string) => S | Promise<S>;
}

/** Abort to settle: the contract's ~100 ms, with room for a loaded CI machine's scheduling. */
export const ABORT_BUDGET_MS = 150;

export function actionContext(signal: AbortSignal = new AbortController().signal): ActionContext {
  return { signal, log: silentLogger };
}

export function describeActionContract<S>(action: Action<S>, cases: ActionContractCases<S>): void {
  describe(`contract: ${action.kind}`, () => {
    it('spec accepts the valid example and rejects unknown keys', () => {
      expect(action.spec.safeParse(cases.valid).success).toBe(true);
      const typo = action.spec.safeParse({ ...cases.valid, tiemout: '5s' });
      expect(typo.success).toBe(false);
    });

    it('describe() is one non-empty line; render() keeps the spec valid', () => {
      const spec = action.spec.parse(cases.valid);
      const line = action.describe(spec);
      expect(line.trim()).not.toBe('');
      expect(line).not.toMatch(/[\r\n]/);
      expect(action.spec.safeParse(action.render(spec, (t) => t)).success).toBe(true);
    });

    it(`run() settles within ${ABORT_BUDGET_MS} ms of an abort before the call`, async () => {
      const spec = cases.slow ? await cases.slow() : action.spec.parse(cases.valid);
      const t0 = performance.now();
      const settled = await action.run(spec, actionContext(AbortSignal.abort(new Error('test abort')))).then(
        () => 'resolved',
        () => 'rejected',
      );
      expect(performance.now() - t0).toBeLessThan(ABORT_BUDGET_MS);
      expect(settled).toBe('rejected');
    });

    it.skipIf(!cases.slow)(`run() settles within ${ABORT_BUDGET_MS} ms of an abort mid-run`, async () => {
      const spec = await cases.slow!();
      const ac = new AbortController();
      const running = action.run(spec, actionContext(ac.signal)).then(
        () => 'resolved',
        () => 'rejected',
      );
      await (cases.started ? cases.started() : delay(50));
      const t0 = performance.now();
      ac.abort(new Error('test abort'));
      const settled = await running;
      expect(performance.now() - t0).toBeLessThan(ABORT_BUDGET_MS);
      expect(settled).toBe('rejected');
    });

    it.skipIf(!cases.bigOutput)('output is capped', async () => {
      const result = await action.run(await cases.bigOutput!(), actionContext());
      expect(result.output).toBeDefined();
      expect(result.output!.length).toBeLessThanOrEqual(OUTPUT_LIMIT + 200);
      expect(result.output).toMatch(/truncated \d+ characters/);
    });

    it.skipIf(!cases.failing)('a thrown error holds no secret from the spec or the environment', async () => {
      const secret = `s3cret-${randomBytes(8).toString('hex')}`;
      process.env.REMEDIATOR_CONTRACT_SECRET = secret;
      try {
        const err = await action.run(await cases.failing!(secret), actionContext()).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(err, 'the failing case must throw').toBeInstanceOf(Error);
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
      } finally {
        delete process.env.REMEDIATOR_CONTRACT_SECRET;
      }
    });
  });
}
