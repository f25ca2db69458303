import { z } from 'zod';
import { describeJson, judgeJson, JsonExpectations, renderWhere, toList, type JsonExpectation } from './json.js';
import { Pattern } from './pattern.js';
import type { Check, CheckOutcome, Observation, StepState } from './types.js';

const OneOrMany = <T extends z.ZodTypeAny>(t: T) => z.union([t, z.array(t).min(1)]);

/**
 * A check against an earlier step's action result (or this step's own, without `step`).
 * Every field given must hold. Also the shape of an escalation's `if`/`unless`.
 */
export const StepResultSpec = z.strictObject({
  step: z.string().min(1).optional(),
  /** The step's outcome so far: passed | failed | skipped | unknown. */
  status: OneOrMany(z.enum(['passed', 'failed', 'skipped', 'unknown'])).optional(),
  exitCode: OneOrMany(z.number().int()).optional(),
  /** A regular expression (JavaScript syntax) that must match somewhere in the output; compiled at load. */
  output: Pattern.optional(),
  httpStatus: OneOrMany(z.number().int().min(100).max(599)).optional(),
  /**
   * JSON expectations over the body (one or a list): a dotted path (`result.result.accepted`) and the value it must
   * equal, or a selection of array elements with `where`/`field` compared, counted or required absent (checks/json.ts).
   */
  json: JsonExpectations.optional(),
});
export type StepResultSpec = z.infer<typeof StepResultSpec>;
/** What a rule file writes (the output pattern as text). */
export type StepResultInput = z.input<typeof StepResultSpec>;

const CONDITIONS = ['status', 'exitCode', 'output', 'httpStatus', 'json'] as const;

/** As an `expect`/`when`, a step check must say what to look at. */
const StepCondition = StepResultSpec.refine((s) => CONDITIONS.some((f) => s[f] !== undefined), {
  message: `a step check needs one of ${CONDITIONS.join(', ')}`,
});

/**
 * A check of an earlier step's outcome and action result (or this step's own, without `step:`).
 * Every field given must hold. One observation per field, labelled `{ step, field }`, with what was seen.
 */
export const stepResult: Check<StepResultSpec> = {
  kind: 'step',
  spec: StepCondition,
  describe(s) {
    const parts = fields(s).map(([field, want]) => `${field} ${field === 'output' ? `=~ /${String(want)}/` : showWanted(want)}`);
    return `step ${s.step ?? '(this step)'}: ${parts.join(', ') || 'ran'}`;
  },
  explain(s) {
    const what: string[] = [];
    const list = (v: unknown) => (Array.isArray(v) ? v.join(' or ') : String(v));
    if (s.status !== undefined) what.push(`status ${list(s.status)}`);
    if (s.exitCode !== undefined) what.push(`exit code ${list(s.exitCode)}`);
    if (s.output !== undefined) what.push(`output matches /${s.output.source}/`);
    if (s.httpStatus !== undefined) what.push(`HTTP ${list(s.httpStatus)}`);
    if (s.json !== undefined) what.push(...toList(s.json).map(describeJson));
    return s.step !== undefined ? `step ${s.step} ${what.join(', ')}` : what.join(', ');
  },
  readsStep: (s) => s.step,
  // Only `where` values of json expectations are templated (to select the alert's child): step names are static,
  // and a regular expression or expected value built from alert labels would let an alert change what is checked.
  render: (s, r) =>
    s.json === undefined
      ? s
      : { ...s, json: Array.isArray(s.json) ? s.json.map((j) => renderWhere(j, r)) : renderWhere(s.json, r) },
  evaluate(s, ctx) {
    const name = s.step ?? ctx.currentStep;
    const state = ctx.steps.get(name);
    if (state === undefined) {
      return Promise.resolve({ holds: false, observed: [], reason: `step ${name} has not run` });
    }
    return Promise.resolve(judgeStep(s, name, state, new Date().toISOString()));
  },
};

type Field = 'status' | 'exitCode' | 'output' | 'httpStatus' | 'json';

function fields(s: StepResultSpec): [Field, unknown][] {
  return CONDITIONS.flatMap((f): [Field, unknown][] => (s[f] === undefined ? [] : [[f, s[f]]]));
}

function judgeStep(s: StepResultSpec, step: string, state: StepState, at: string): CheckOutcome {
  const observed: Observation[] = [];
  const failures: string[] = [];
  const seen = (field: Field, value: Observation['value']): void => {
    observed.push({ labels: { step, field }, value, at });
  };
  const result = state.result;

  if (s.status !== undefined) {
    const want = toArray(s.status);
    seen('status', state.status ?? null);
    if (state.status === undefined || !want.includes(state.status)) {
      failures.push(`status ${state.status ?? '(not decided yet)'}, expected ${showWanted(s.status)}`);
    }
  }
  if (s.exitCode !== undefined) {
    const got = result?.exitCode;
    seen('exitCode', got ?? null);
    if (got === undefined || !toArray(s.exitCode).includes(got)) {
      failures.push(`exit code ${got ?? '(none)'}, expected ${showWanted(s.exitCode)}`);
    }
  }
  if (s.output !== undefined) {
    const text = result?.output;
    const match = text === undefined ? null : s.output.test(text);
    seen('output', match ? clip(match[0]) : text === undefined ? null : clip(text.slice(-200)));
    if (!match)
      failures.push(
        text === undefined ? `no output, expected /${s.output.source}/` : `output does not match /${s.output.source}/`,
      );
  }
  if (s.httpStatus !== undefined) {
    const got = result?.httpStatus;
    seen('httpStatus', got ?? null);
    if (got === undefined || !toArray(s.httpStatus).includes(got)) {
      failures.push(`HTTP status ${got ?? '(none)'}, expected ${showWanted(s.httpStatus)}`);
    }
  }
  for (const j of s.json === undefined ? [] : toList(s.json)) {
    const judged = judgeJson(result?.body, j);
    seen('json', judged.seen);
    if (!judged.holds) failures.push(`JSON ${judged.reason}`);
  }

  if (failures.length > 0) return { holds: false, observed, reason: `step ${step}: ${failures.join('; ')}` };
  return {
    holds: true,
    observed,
    reason: `step ${step}: ${
      fields(s)
        .map(([f]) => f)
        .join(', ') || 'ran'
    } as expected`,
  };
}

function toArray<T>(x: T | T[]): T[] {
  return Array.isArray(x) ? x : [x];
}

function showWanted(want: unknown): string {
  if (Array.isArray(want)) {
    if (want.every((w) => typeof w === 'object' && w !== null))
      return want.map((w) => describeJson(w as JsonExpectation)).join(', ');
    return `one of ${want.map((w) => String(w)).join(', ')}`;
  }
  if (typeof want === 'object' && want !== null) return describeJson(want as JsonExpectation);
  return String(want);
}

function clip(text: string, max = 200): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
