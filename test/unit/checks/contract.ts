/**
 * The contract every check kind runs (the checks' counterpart of test/unit/actions/contract.ts):
 *
 *   describeCheckContract(promql, { valid: {...}, slow: () => ({ spec, context }), failing: (secret) => ({ spec, context }) });
 *
 * - the kind is in the registry, its `key` (if any) is one of its keys, its spec accepts `valid` and rejects
 *   an unknown key;
 * - the rule schema (built from the registry) takes `valid` with timing keys as this kind, timing in ms;
 * - describe() is one non-empty line, before and after render();
 * - evaluate() rejects because of an abort (its reason in the error's cause chain), mid-evaluation with `slow`
 *   and with a signal aborted before the call;
 * - a thrown error carries no secret from the spec, the context or the environment (`failing`).
 * A case a kind cannot have is left out and reported as skipped.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as delay } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { checkByKind } from '../../../src/checks/index.js';
import type { Check, CheckContext } from '../../../src/checks/types.js';
import { silentLogger } from '../../../src/log.js';
import type { PrometheusClient } from '../../../src/prometheus/client.js';
import { CheckSpec } from '../../../src/rules/schema.js';
import { expectAbortedBy, settle } from '../actions/contract.js';

/** A spec as a rule file writes it, and what the evaluation's context should hold besides the defaults. */
export interface CheckCase {
  spec: Record<string, unknown>;
  context?: Partial<Omit<CheckContext, 'signal'>>;
}

export interface CheckContractCases {
  /** A valid spec as a rule file writes the kind's keys (no timing). */
  valid: Record<string, unknown>;
  /** An evaluation that takes seconds unless aborted. */
  slow?: () => CheckCase | Promise<CheckCase>;
  /** Resolves once a `slow` evaluation has really started (default: 50 ms after the call). */
  started?: () => Promise<void>;
  /** An evaluation that throws, with `secret` placed in it (spec, URL, context); the environment holds it too. */
  failing?: (secret: string) => CheckCase | Promise<CheckCase>;
}

const nowhere: PrometheusClient = {
  query: () => Promise.reject(new Error('this check case asks no Prometheus')),
  ready: () => Promise.resolve(false),
};

export function checkContext(signal: AbortSignal, over: CheckCase['context'] = {}): CheckContext {
  return { signal, log: silentLogger, steps: new Map(), currentStep: 'contract', prometheus: nowhere, ...over };
}

export function describeCheckContract<S>(check: Check<S>, cases: CheckContractCases): void {
  const parse = (spec: Record<string, unknown>): S => check.spec.parse(spec);

  describe(`contract: ${check.kind}`, () => {
    it('is registered under its kind; its key is one of its keys; its spec rejects unknown keys', () => {
      expect(checkByKind.get(check.kind)).toBe(check);
      if (check.key !== undefined) {
        expect(Object.keys(check.spec.shape)).toContain(check.key);
        expect(cases.valid).toHaveProperty(check.key);
      }
      expect(check.spec.safeParse(cases.valid).success).toBe(true);
      expect(check.spec.safeParse({ ...cases.valid, tiemout: '5s' }).success).toBe(false);
    });

    it('the rule schema takes it as an expect/when of this kind, with timing', () => {
      const use = CheckSpec.parse({ ...cases.valid, within: '5s', after: '1s' });
      expect(use.kind).toBe(check.kind);
      expect(use.timing).toEqual({ withinMs: 5000, afterMs: 1000 });
      expect(use.describe()).toMatch(/ after 1s within 5s$/);
    });

    it('describe() is one non-empty line, before and after render()', () => {
      const spec = parse(cases.valid);
      for (const s of [spec, check.render(spec, (t) => t)]) {
        const line = check.describe(s);
        expect(line.trim()).not.toBe('');
        expect(line).not.toMatch(/[\r\n]/);
      }
    });

    it('evaluate() with a signal aborted before the call settles (a rejection is the abort)', async () => {
      const c = cases.slow ? await cases.slow() : { spec: cases.valid };
      const reason = new Error('test abort');
      const settled = await settle(check.evaluate(parse(c.spec), checkContext(AbortSignal.abort(reason), c.context)));
      // A kind that needs no I/O (step-result) may answer from what it has; one that waits must not.
      if ('rejected' in settled || cases.slow) expectAbortedBy(settled, reason);
    });

    it.skipIf(!cases.slow)('evaluate() rejects with an abort mid-evaluation', async () => {
      const c = await cases.slow!();
      const ac = new AbortController();
      const running = settle(check.evaluate(parse(c.spec), checkContext(ac.signal, c.context)));
      await (cases.started ? cases.started() : delay(50));
      const reason = new Error('test abort');
      ac.abort(reason);
      expectAbortedBy(await running, reason);
    });

    it.skipIf(!cases.failing)('a thrown error holds no secret from the spec, the context or the environment', async () => {
      const secret = `s3cret-${randomBytes(8).toString('hex')}`;
      process.env.REMEDIATOR_CONTRACT_SECRET = secret;
      try {
        const c = await cases.failing!(secret);
        const err = await check.evaluate(parse(c.spec), checkContext(new AbortController().signal, c.context)).then(
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
