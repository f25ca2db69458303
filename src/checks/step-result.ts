import { z } from 'zod';
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
  /** A dotted path into the JSON body (`result`, `children.0.state`) and the value it must equal. */
  json: z.strictObject({ path: z.string().min(1), value: z.union([z.string(), z.number(), z.boolean(), z.null()]) }).optional(),
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
    if (s.json !== undefined) what.push(`${s.json.path} == ${JSON.stringify(s.json.value)}`);
    return s.step !== undefined ? `step ${s.step} ${what.join(', ')}` : what.join(', ');
  },
  readsStep: (s) => s.step,
  // Nothing is templated: step names are static, and a regular expression or JSON value built from alert labels
  // would let an alert change what is being checked.
  render: (s) => s,
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
  if (s.json !== undefined) {
    const { path, value } = s.json;
    const found = lookup(result?.body, path);
    seen('json', found.ok ? toObserved(found.value) : null);
    if (!found.ok) failures.push(`JSON path ${path} not found in the body`);
    else if (found.value !== value)
      failures.push(`JSON ${path} is ${JSON.stringify(found.value) ?? 'undefined'}, expected ${JSON.stringify(value)}`);
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

/** A dotted path (`children.0.state`): object keys, and array indexes as numbers. */
function lookup(body: unknown, path: string): { ok: true; value: unknown } | { ok: false } {
  let here: unknown = body;
  for (const key of path.split('.')) {
    if (Array.isArray(here) && /^\d+$/.test(key) && Number(key) < here.length) here = here[Number(key)];
    else if (typeof here === 'object' && here !== null && !Array.isArray(here) && Object.hasOwn(here, key))
      here = (here as Record<string, unknown>)[key];
    else return { ok: false };
  }
  return { ok: true, value: here };
}

function toObserved(value: unknown): Observation['value'] {
  if (value === null || typeof value === 'string' || typeof value === 'number') return value;
  if (typeof value === 'boolean') return String(value);
  return clip(JSON.stringify(value) ?? String(value));
}

function toArray<T>(x: T | T[]): T[] {
  return Array.isArray(x) ? x : [x];
}

function showWanted(want: unknown): string {
  if (Array.isArray(want)) return `one of ${want.map((w) => String(w)).join(', ')}`;
  if (typeof want === 'object' && want !== null) {
    const { path, value } = want as { path: string; value: unknown };
    return `${path} = ${JSON.stringify(value)}`;
  }
  return String(want);
}

function clip(text: string, max = 200): string {
  return text.length > max ? `${text.slice(0, max)}…` : text;
}
