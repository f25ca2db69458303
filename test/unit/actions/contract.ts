/**
 * The contract every action runs (like Alertmanager's AssertNotifyLeaksNoSecret or bullmq's adapter-conformance):
 *
 *   describeActionContract(exec, { valid: {...}, slow: () => spec, bigOutput: () => spec, failing: (secret) => spec });
 *
 * - the spec accepts `valid` and rejects it with an unknown key added;
 * - describe() is one non-empty line, and render() keeps a valid spec valid;
 * - run() rejects because of an abort (the abort's reason in its error's cause chain), mid-run with `slow` and
 *   with a signal aborted before the call, and before the slow run's own completion (`finished`, when it has one);
 * - output is capped (`bigOutput`);
 * - a thrown error carries no secret from the spec or the environment (`failing`).
 * A case an action cannot have is left out and reported as skipped.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { OUTPUT_LIMIT, type Action, type ActionContext } from '../../../src/actions/types.js';
import { silentLogger } from '../../../src/log.js';
import { causedBy } from '../../helpers/abort.js';

export interface ActionContractCases<S> {
  /** A valid spec as a rule file writes it. */
  valid: Record<string, unknown>;
  /** A spec whose run takes seconds unless aborted (or never ends by itself). */
  slow?: () => S | Promise<S>;
  /** Resolves once a `slow` run has really started (default: 50 ms after the call). */
  started?: () => Promise<void>;
  /** True once the `slow` run's operation has completed by itself (its own completion marker, e.g. a file). */
  finished?: () => boolean;
  /** A spec whose run produces more than OUTPUT_LIMIT characters of output. */
  bigOutput?: () => S | Promise<S>;
  /** A spec whose run throws, with `secret` placed in it (env, header, URL…); the environment holds it too. */
  failing?: (secret: string) => S | Promise<S>;
}

/** How a run settled: the value, or the error it rejected with. */
export type Settled = { resolved: unknown } | { rejected: unknown };
export const settle = (p: Promise<unknown>): Promise<Settled> =>
  p.then(
    (resolved) => ({ resolved }),
    (rejected: unknown) => ({ rejected }),
  );

/** Expect `s` to be a rejection that `reason` caused. */
export function expectAbortedBy(s: Settled, reason: Error): void {
  expect(s, 'it must reject, not resolve').toHaveProperty('rejected');
  const err = (s as { rejected: unknown }).rejected;
  expect(causedBy(err, reason), `rejected by the abort, not by itself: ${String(err)}`).toBe(true);
}

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

    it('run() rejects with the abort when the signal is aborted before the call', async () => {
      const spec = cases.slow ? await cases.slow() : action.spec.parse(cases.valid);
      const reason = new Error('test abort');
      expectAbortedBy(await settle(action.run(spec, actionContext(AbortSignal.abort(reason)))), reason);
      if (cases.finished) expect(cases.finished(), 'nothing ran to completion').toBe(false);
    });

    it.skipIf(!cases.slow)('run() rejects with an abort mid-run, before the run completes by itself', async () => {
      const spec = await cases.slow!();
      const ac = new AbortController();
      const running = settle(action.run(spec, actionContext(ac.signal)));
      await (cases.started ? cases.started() : delay(50));
      const reason = new Error('test abort');
      ac.abort(reason);
      const settled = await running;
      if (cases.finished) expect(cases.finished(), 'settled before its own completion marker').toBe(false);
      expectAbortedBy(settled, reason);
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
