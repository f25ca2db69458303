import type { z } from 'zod';
import type { Logger } from 'pino';
import type { ActionResult } from '../actions/types.js';
import type { Render } from '../template.js';
import type { PrometheusClient } from '../prometheus/client.js';

export interface CheckContext {
  /** Aborted on the step's deadline, alert resolution or worker shutdown. Honour it promptly. */
  readonly signal: AbortSignal;
  readonly log: Logger;
  /** Steps of this run so far, by name (for `step:` checks); the current step's own action result included. */
  readonly steps: ReadonlyMap<string, StepState>;
  /** The step this check belongs to: a `step` check without `step:` reads this one's result. */
  readonly currentStep: string;
  readonly prometheus: PrometheusClient;
}

export type StepStatus = 'passed' | 'failed' | 'skipped' | 'unknown';

/** What a step check may look at: the step's status so far and its action's result, if it ran one. */
export interface StepState {
  status?: StepStatus;
  result?: ActionResult;
}

export interface Observation {
  /** Series labels; for step checks `{ step, field }` (the step read and the field compared). */
  labels: Record<string, string>;
  /** What was seen: a number (±Infinity, NaN kept as strings "+Inf", "-Inf", "NaN" for JSON), a string, or null. */
  value: number | string | null;
  /** ISO time of the observation. */
  at: string;
}

export interface CheckOutcome {
  holds: boolean;
  observed: Observation[];
  /** Why it does not hold (or why it does), in words: "value 0, expected == 1". */
  reason?: string;
}

/**
 * The schema of a kind's keys in an `expect`/`when` object: a strict zod object (refinements allowed), so the
 * rule schema can list its keys and an unknown key is a typo. It parses once, at load: regular expressions
 * compiled, durations in milliseconds, whatever the kind's evaluation needs ready.
 */
export type CheckSpecSchema<Spec> = z.ZodType<Spec> & { readonly shape: z.ZodRawShape };

/**
 * Evaluates ONCE, now. Timing (`within`, `after`, `for`) is applied by checks/poll.ts around every check,
 * the way RetryStage wraps a Notifier, so no check polls or sleeps by itself.
 *
 * In a rule file a check is one flat object: the kind's own keys beside the timing keys, e.g.
 * `{ promql: 'up', op: '==', value: 1, within: 30s }`. `key` says which kind an object is.
 *
 * A check that does its own I/O (a socket, a request) bounds each evaluation itself (its spec may carry a
 * timeout), honours `ctx.signal`, and keeps secrets out of what it throws and observes. When the thing it asks
 * cannot answer (an outage), it throws CheckUnavailableError, never `holds: false`, so that the engine records
 * the verification as unknown; an answer that is not the expected one is `holds: false` with the reason.
 */
export interface Check<Spec> {
  /** The kind's name in records, logs and `plan`: `promql`, `step`. */
  readonly kind: string;
  /**
   * The key that selects this kind in an `expect`/`when` object (`promql: …`). The one kind without a key is
   * the default: it takes the objects that name no kind's key (`step`, whose keys are all optional).
   */
  readonly key?: string;
  /** The kind's keys (timing keys excluded: the rule schema adds them to every kind). */
  readonly spec: CheckSpecSchema<Spec>;
  /** One line for run records and `plan`: "supervisor_ipc_up{…} == 1". */
  describe(spec: Spec): string;
  /** The runbook's wording for `remediator docs` ("supervisor_ipc_up returns no series"); describe() when absent. */
  explain?(spec: Spec): string;
  /** Fills templates with the right sink (the PromQL query: promql). Throws TemplateError; the check then fails. */
  render(spec: Spec, render: Render): Spec;
  /**
   * For a check of a step's result: the step it reads (undefined: the step it belongs to). The loader makes
   * sure it names an earlier step, and that a `when` names one.
   */
  readsStep?(spec: Spec): string | undefined;
  evaluate(spec: Spec, ctx: CheckContext): Promise<CheckOutcome>;
}

/** The thing a check asks could not be asked (Prometheus down, 5xx, bad query at run time). */
export class CheckUnavailableError extends Error {
  override readonly name = 'CheckUnavailableError';
  /**
   * Whether asking again could give an answer (an outage: yes; a query Prometheus rejects as bad_data or
   * execution: no). checks/poll.ts keeps polling only while this is true. Default true.
   */
  readonly retryable: boolean;
  constructor(message: string, options?: ErrorOptions & { retryable?: boolean }) {
    super(message, options);
    this.retryable = options?.retryable ?? true;
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the registry holds checks of every spec type
export type AnyCheck = Check<any>;
