import { z } from 'zod';
import { actionByKind, actions } from '../actions/index.js';
import { checks } from '../checks/index.js';
import { Where } from '../checks/json.js';
import { StepResultSpec } from '../checks/step-result.js';
import type { AnyCheck } from '../checks/types.js';
import { targets } from '../escalation/index.js';
import { Duration } from '../duration.js';
import { ActionUse, CheckUse, type AnyActionUse, type AnyCheckUse } from './model.js';

const Name = z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'use lower-case letters, digits and dashes (kebab-case)');

/**
 * `within`: poll until it holds or the time runs out. `after`: wait, then evaluate.
 * `for`: must hold continuously this long (within `within` when both are given).
 * None: evaluate once, now. Every check kind takes them; checks/poll.ts applies them.
 */
export const TimingShape = {
  within: Duration.optional(),
  after: Duration.optional(),
  for: Duration.optional(),
};
const TIMING_KEYS = Object.keys(TimingShape);
const Timing = z.object(TimingShape);

/**
 * Expectations (`expect`) and conditions (`when`) are one type, built from the check registry: one flat object,
 * the kind's own keys beside the timing keys, so errors point at the exact key. The kind is the one whose `key`
 * the object names (`promql: …`), else the default kind (`step`). Parsed to a CheckUse.
 *
 * The shape of each kind, for JSON Schema, is in `checkForms` (zod cannot say "the kind follows from a key").
 */
export function checkSpecFor(registry: readonly AnyCheck[]) {
  const keyed = registry.filter((c) => c.key !== undefined);
  const fallback = registry.find((c) => c.key === undefined);
  const owner = (key: string, not: AnyCheck) => registry.find((c) => c !== not && Object.hasOwn(c.spec.shape, key));

  const schema = z.unknown().transform((raw, ctx): AnyCheckUse => {
    if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
      ctx.addIssue({ code: 'invalid_type', expected: 'object', input: raw, message: 'expected a check (a mapping)' });
      return z.NEVER;
    }
    const given = raw as Record<string, unknown>;
    const named = keyed.filter((c) => Object.hasOwn(given, c.key!));
    const check = named[0] ?? fallback;
    for (const other of named.slice(1)) {
      ctx.addIssue({
        code: 'custom',
        path: [other.key!],
        message: `a check is one kind: "${other.key}" cannot be combined with ${named[0]!.key}`,
      });
    }
    if (check === undefined) {
      ctx.addIssue({ code: 'custom', message: `a check needs one of ${keyed.map((c) => c.key).join(', ')}` });
      return z.NEVER;
    }
    const own = Object.fromEntries(
      Object.entries(given).filter(([k]) => !TIMING_KEYS.includes(k) && !named.slice(1).some((c) => c.key === k)),
    );
    const timing = Timing.safeParse(Object.fromEntries(Object.entries(given).filter(([k]) => TIMING_KEYS.includes(k))));
    if (!timing.success) for (const issue of timing.error.issues) ctx.addIssue({ ...issue });
    if (Object.keys(own).length === 0 && check === fallback) {
      const fields = Object.keys(check.spec.shape).join(', ');
      ctx.addIssue({
        code: 'custom',
        message: `a check needs ${keyed.map((c) => c.key).join(', ')}, or a ${check.kind} check's ${fields}`,
      });
      return z.NEVER;
    }
    const spec = check.spec.safeParse(own);
    if (!spec.success) {
      for (const issue of spec.error.issues) {
        if (issue.code !== 'unrecognized_keys' || issue.path.length > 0) {
          ctx.addIssue({ ...issue });
          continue;
        }
        // A key of another kind: say which kind it belongs to.
        const unknown: string[] = [];
        for (const key of issue.keys) {
          const other = owner(key, check);
          if (other === undefined) unknown.push(key);
          else if (other.key !== undefined) ctx.addIssue({ code: 'custom', path: [key], message: `"${key}" needs ${other.key}` });
          else
            ctx.addIssue({
              code: 'custom',
              path: [key],
              message: `"${key}" belongs to a ${other.kind} check, not next to ${check.key ?? check.kind}`,
            });
        }
        if (unknown.length > 0) ctx.addIssue({ ...issue, keys: unknown });
      }
    }
    if (!spec.success || !timing.success) return z.NEVER;
    const { within, after, for: forMs } = timing.data;
    return new CheckUse(check, spec.data, {
      ...(within !== undefined ? { withinMs: within } : {}),
      ...(after !== undefined ? { afterMs: after } : {}),
      ...(forMs !== undefined ? { forMs } : {}),
    });
  });
  /** Each kind's flat shape with the timing keys: what an editor is told (`anyOf`). */
  const forms = z.union(
    registry.map((c) => z.strictObject({ ...c.spec.shape, ...TimingShape })) as unknown as [z.ZodObject, ...z.ZodObject[]],
  );
  return { schema, forms };
}

const checkSpec = checkSpecFor(checks);
export const CheckSpec = checkSpec.schema;
export type CheckSpec = AnyCheckUse;
/** CheckSpec's shape per kind, for JSON Schema (rules/json-schema.ts). */
export const CheckForms = checkSpec.forms;

/** The kinds of `action: { <kind>: spec }`, from the action registry (actions/index.ts). */
export const ActionKinds = z
  .strictObject(Object.fromEntries(actions.map((a) => [a.kind, a.spec.optional()])))
  .superRefine((a, ctx) => {
    const given = Object.keys(a).filter((k) => a[k] !== undefined);
    if (given.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        message: `exactly one action kind must be set (one of ${actions.map((x) => x.kind).join(', ')}), got ${given.length === 0 ? 'none' : given.join(', ')}`,
      });
    }
  });

/** `action: { <kind>: spec }`: exactly one kind, parsed to an ActionUse. */
export const ActionSpec = ActionKinds.transform((a): AnyActionUse => {
  const kind = Object.keys(a).find((k) => a[k] !== undefined)!;
  return new ActionUse(actionByKind.get(kind)!, a[kind]);
});
export type ActionSpec = AnyActionUse;

export const OnFailure = z.enum(['continue', 'retry', 'escalate', 'abort']);
export type OnFailure = z.infer<typeof OnFailure>;

export const Step = z.strictObject({
  /** Unique within the procedure; `when`/`expect` of later steps refer to it. */
  name: Name,
  /** The runbook's action text; `docs` renders it. */
  description: z.string().optional(),
  /** Run the step only when this holds; otherwise it is recorded as skipped with the reason. */
  when: CheckSpec.optional(),
  /**
   * Run the action once per element of an array in an earlier step's JSON result, with `{{ item.<field> }}`
   * templated from the element (untrusted: escaped like labels). `where` keeps elements whose field equals
   * one of the values. No element: the action does not run and the step is decided by its expect alone.
   */
  forEach: z
    .strictObject({
      step: Name,
      /** Dotted path to the array in the step's JSON body, e.g. `children`. */
      path: z.string().min(1),
      /** Keep the elements whose fields (dotted paths) equal these values: `{ status: cancelling }` (checks/json.ts). */
      where: Where.optional(),
    })
    .optional(),
  /** What to do. A step without an action only verifies (`expect`). */
  action: ActionSpec.optional(),
  /** What must hold afterwards. */
  expect: CheckSpec.optional(),
  /**
   * Whether this step's expectation verifies the fix (a run succeeds only when the last step that ran verifies).
   * Default: a step with an `expect` verifies; `verifies: false` marks a diagnosis (a process lookup, a log read, a
   * state query before acting) whose expectation only says the look worked. A step without `expect` never verifies.
   */
  verifies: z.boolean().optional(),
  /** The runbook's expected-metrics text, for `docs` when it says more than the expect. */
  expected: z.string().optional(),
  /**
   * Where the real program differs from the runbook's words for this step, and what the step does instead
   * (e.g. "a panic prints `panicked at` and exits 101; there is no `Panic` line"). `docs` renders it.
   */
  deviation: z.string().min(1).optional(),
  /**
   * A step the runbook does not have (e.g. clearing a stale socket before a restart): `docs` numbers it after the
   * runbook step before it (`3a`), so the runbook's own step numbers stay as they are.
   */
  added: z.boolean().optional(),
  /** The runbook's estimated duration. */
  estimate: Duration.optional(),
  /** One attempt of the action may take this long (default STEP_TIMEOUT). */
  timeout: Duration.optional(),
  /** What a failed (or unknown) step does to the run. */
  onFailure: OnFailure.default('escalate'),
  /** With onFailure: retry, how many more attempts (action + expect) before escalating. */
  retries: z.number().int().min(1).max(10).default(1),
});
export type Step = z.infer<typeof Step>;

/** Whether a passed step verifies the fix: it has an expectation and is not marked a diagnosis (`verifies: false`). */
export function verifies(step: Pick<Step, 'expect' | 'verifies'>): boolean {
  return step.expect !== undefined && step.verifies !== false;
}

export const EscalationWhen = z.enum(['failed', 'unknown', 'budget-exhausted', 'timeout', 'paused', 'succeeded']);
export type EscalationWhen = z.infer<typeof EscalationWhen>;

export const Escalation = z.strictObject({
  /** The run outcome(s) this escalation is for. `failed` also covers `unknown` unless an `unknown` entry exists. */
  when: z.union([EscalationWhen, z.array(EscalationWhen).min(1)]),
  /**
   * Where it goes, from the target registry (escalation/index.ts): alertmanager (a RemediationEscalated alert,
   * needs ALERTMANAGER_URL), webhook (a JSON POST to ESCALATION_WEBHOOK_URL), slack (ESCALATION_SLACK_URL), …
   */
  to: z.array(z.enum(targets.map((t) => t.kind) as [string, ...string[]])).min(1),
  /**
   * What to attach: `outputs` (every step's action output), `metrics` (every observed value),
   * `steps` (the step table), or `step:<name>` (one step's full result, e.g. the core dump listing).
   */
  attach: z
    .array(z.string().regex(/^(outputs|metrics|steps|step:[a-z0-9][a-z0-9-]*)$/, 'outputs, metrics, steps or step:<name>'))
    .default([]),
  message: z.string().min(1),
  /** Only when this step-result check holds (e.g. an output naming the fault). */
  if: StepResultSpec.optional(),
  /** Not when this step-result check holds. */
  unless: StepResultSpec.optional(),
  /** Extra labels on the RemediationEscalated alert (e.g. team, severity). */
  labels: z.record(z.string().regex(/^[a-zA-Z_][a-zA-Z0-9_]*$/), z.string()).optional(),
});
export type Escalation = z.infer<typeof Escalation>;

export const RuleFile = z
  .strictObject({
    $schema: z.string().optional(),
    /** Unique; the runbook's procedure id. */
    id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]*$/, 'letters, digits, _ . - only'),
    title: z.string().min(1),
    description: z.string().optional(),
    /** Alertmanager matchers; all must hold. The only way an alert selects this procedure. */
    match: z.array(z.string().min(1)).min(1),
    /** Key for the per-target lock and budget. */
    target: z.string().min(1),
    /** Past it: no action, escalate. */
    budget: z.strictObject({ runs: z.number().int().min(1), per: Duration }).optional(),
    /** Per-deployment values; REMEDIATOR_VAR_<NAME> in the environment overrides them. */
    vars: z
      .record(
        z.string().regex(/^[a-zA-Z_][a-zA-Z0-9_]*$/, 'a var name is letters, digits and _'),
        z.union([z.union([z.string(), z.number(), z.boolean()]).transform(String), z.array(z.string()).min(1)]),
      )
      .default({}),
    steps: z.array(Step).min(1),
    escalation: z.array(Escalation).default([]),
    /**
     * Silence this alert in Alertmanager while the run acts (matchers: every label of the alert, exactly),
     * and expire the silence when the run ends. Needs ALERTMANAGER_URL.
     */
    silence: z.strictObject({ for: Duration }).optional(),
    /** The whole run must end within this; past it the current step is aborted and `timeout` escalations fire. */
    timeout: Duration.optional(),
    /** The runbook's total estimate; defaults to the sum of step estimates. */
    estimate: Duration.optional(),
    /** The SLA the run is measured against (P1: 15m). */
    sla: Duration.optional(),
    /** The runbook's escalation text, rendered by `docs`. */
    escalationText: z.string().optional(),
  })
  .superRefine((rule, ctx) => {
    const seen = new Map<string, number>();
    rule.steps.forEach((step, i) => {
      if (seen.has(step.name))
        ctx.addIssue({
          code: 'custom',
          path: ['steps', i, 'name'],
          message: `duplicate step name "${step.name}" (also steps[${seen.get(step.name)}])`,
        });
      seen.set(step.name, i);
      if (step.verifies === true && step.expect === undefined)
        ctx.addIssue({
          code: 'custom',
          path: ['steps', i, 'verifies'],
          message: 'a step without expect verifies nothing: give it an expect or drop verifies',
        });
      if (step.forEach !== undefined) {
        const at = seen.get(step.forEach.step);
        if (at === undefined || at >= i)
          ctx.addIssue({
            code: 'custom',
            path: ['steps', i, 'forEach', 'step'],
            message: `"${step.forEach.step}" is not an earlier step of this procedure`,
          });
        if (step.action === undefined)
          ctx.addIssue({ code: 'custom', path: ['steps', i, 'forEach'], message: 'forEach needs an action to repeat' });
      }
      for (const [field, check] of [
        ['when', step.when],
        ['expect', step.expect],
      ] as const) {
        if (check?.check.readsStep === undefined) continue;
        const reads = check.check.readsStep(check.spec);
        if (reads === undefined) {
          if (field === 'when') {
            ctx.addIssue({
              code: 'custom',
              path: ['steps', i, 'when', 'step'],
              message: 'a when on a step result must name an earlier step',
            });
          }
          continue;
        }
        const at = seen.get(reads);
        const ok = at !== undefined && (at < i || (field === 'expect' && at === i));
        if (!ok)
          ctx.addIssue({
            code: 'custom',
            path: ['steps', i, field, 'step'],
            message: `"${reads}" is not an earlier step of this procedure`,
          });
      }
    });
  });
export type RuleFile = z.infer<typeof RuleFile>;
/** A loaded procedure: the rule file plus where it came from and its parsed matchers. */
export type Procedure = RuleFile & { file: string };
