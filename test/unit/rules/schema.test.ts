import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { checks } from '../../../src/checks/index.js';
import { promql } from '../../../src/checks/promql.js';
import { stepResult } from '../../../src/checks/step-result.js';
import type { Check } from '../../../src/checks/types.js';
import { DurationText } from '../../../src/duration.js';
import { CheckSpec, RuleFile, Step, checkSpecFor, verifies } from '../../../src/rules/schema.js';

/**
 * A kind that does its own I/O with its own timeout and JSON expectations over the answer, shaped the way an
 * `ipc` check would be: `{ probe: { path, timeout }, json: [...], within: 30s }`. Its `json` shares a name with the
 * step check's `json` but not its shape: the kind named by the key decides.
 */
const ProbeSpec = z.strictObject({
  probe: z.strictObject({ path: z.string().min(1), timeout: DurationText.optional() }),
  json: z
    .array(z.strictObject({ path: z.string(), equals: z.unknown() }))
    .min(1)
    .optional(),
});
const probe: Check<z.infer<typeof ProbeSpec>> = {
  kind: 'probe',
  key: 'probe',
  spec: ProbeSpec,
  describe: (s) => `probe ${s.probe.path}`,
  render: (s, r) => ({ ...s, probe: { ...s.probe, path: r(s.probe.path, 'path') } }),
  evaluate: () => Promise.resolve({ holds: true, observed: [] }),
};

const withProbe = checkSpecFor([...checks, probe]).schema;
const issues = (schema: z.ZodType, input: unknown) =>
  (schema.safeParse(input).error?.issues ?? []).map((i) => `${i.path.join('.')}: ${i.message}`);

describe('rules/schema', () => {
  describe('expect/when: built from the check registry', () => {
    it.each`
      input                                                               | kind        | timing
      ${{ promql: 'up', op: '==', value: 1, within: '20s' }}              | ${'promql'} | ${{ withinMs: 20_000 }}
      ${{ promql: 'up', empty: true, for: '1m' }}                         | ${'promql'} | ${{ forMs: 60_000 }}
      ${{ step: 'probe', exitCode: [0, 1] }}                              | ${'step'}   | ${{}}
      ${{ output: 'ok$', after: '5s' }}                                   | ${'step'}   | ${{ afterMs: 5000 }}
      ${{ httpStatus: 200, json: { path: 'result', value: 'Accepted' } }} | ${'step'}   | ${{}}
    `('$input is a $kind check with timing $timing (the flat rule syntax keeps working)', ({ input, kind, timing }) => {
      const use = CheckSpec.parse(input);
      expect(use.kind).toBe(kind);
      expect(use.check).toBe(kind === 'promql' ? promql : stepResult);
      expect(use.timing).toEqual(timing);
    });

    it('a new kind is taken by its key, with its own nested spec, JSON expectations and timing', () => {
      const use = withProbe.parse({
        probe: { path: '/run/sup.sock', timeout: '2s' },
        json: [{ path: 'ok', equals: true }],
        within: '30s',
      });
      expect(use.check).toBe(probe);
      expect(use.spec).toEqual({ probe: { path: '/run/sup.sock', timeout: '2s' }, json: [{ path: 'ok', equals: true }] });
      expect(use.timing).toEqual({ withinMs: 30_000 });
      expect(use.describe()).toBe('probe /run/sup.sock within 30s');
      // The step check's `json` keeps its own shape.
      expect(withProbe.parse({ step: 'a', json: { path: 'result', value: 1 } }).check).toBe(stepResult);
    });

    it.each`
      input                                                         | problems
      ${{ op: '==', value: 1 }}                                     | ${['op: "op" needs promql', 'value: "value" needs promql', ': a step check needs one of status, exitCode, output, httpStatus, json']}
      ${{ promql: 'up', op: '==', value: 1, exitCode: 0 }}          | ${['exitCode: "exitCode" belongs to a step check, not next to promql']}
      ${{ promql: 'up', op: '==', value: 1, probe: { path: 'x' } }} | ${['probe: a check is one kind: "probe" cannot be combined with promql']}
      ${{ probe: { path: 'x' }, op: '==' }}                         | ${['op: "op" needs promql']}
      ${{ probe: { path: 'x' }, json: { path: 'a', value: 1 } }}    | ${['json: Invalid input: expected array, received object']}
      ${{ promql: 'up', op: '==', value: 1, within: '10sec' }}      | ${['within: expected a duration like 10s, 1m30s or 500ms']}
      ${{ within: '10s' }}                                          | ${[": a check needs promql, ipc, socket, probe, or a step check's step, status, exitCode, output, httpStatus, json"]}
      ${{ output: '(' }}                                            | ${['output: /(/ is not a valid regular expression: Unterminated group']}
      ${'up == 1'}                                                  | ${[': expected a check (a mapping)']}
    `('$input: $problems', ({ input, problems }) => {
      expect(issues(withProbe, input)).toEqual(problems);
    });
  });

  describe('step', () => {
    it('carries an optional deviation: where the real program differs from the runbook for this step', () => {
      const step = Step.parse({ name: 'check-logs', deviation: 'a panic prints `panicked at`, exit 101' });
      expect(step.deviation).toBe('a panic prints `panicked at`, exit 101');
      expect(Step.parse({ name: 'check-logs' }).deviation).toBeUndefined();
      expect(issues(Step, { name: 'check-logs', deviation: '' })).toEqual([
        'deviation: Too small: expected string to have >=1 characters',
      ]);
    });
  });

  describe('verifies', () => {
    const rule = (step: Record<string, unknown>) => ({ id: 'V', title: 'v', match: ['a="b"'], target: 'x', steps: [step] });
    it('a step with an expect verifies unless marked a diagnosis; a step without expect never does', () => {
      const withExpect = Step.parse({ name: 'a', expect: { exitCode: 0 } });
      expect(verifies(withExpect)).toBe(true);
      expect(verifies(Step.parse({ name: 'a', expect: { exitCode: 0 }, verifies: false }))).toBe(false);
      expect(verifies(Step.parse({ name: 'a', action: { wait: { duration: '1s' } } }))).toBe(false);
    });
    it('verifies: true without an expect is a load error', () => {
      expect(issues(RuleFile, rule({ name: 'a', action: { wait: { duration: '1s' } }, verifies: true }))).toEqual([
        'steps.0.verifies: a step without expect verifies nothing: give it an expect or drop verifies',
      ]);
    });
  });
});
