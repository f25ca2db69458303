import type { z } from 'zod';
import type { Logger } from 'pino';
import type { ActionResult } from '../actions/types.js';
import type { Render } from '../rules/template.js';
import type { PrometheusClient } from '../prometheus/client.js';

export interface CheckContext {
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
 * Evaluates ONCE, now. Timing (`within`, `after`, `for`) is applied by checks/poll.ts around every check,
 * the way RetryStage wraps a Notifier. A Prometheus outage is an error (thrown CheckUnavailableError),
 * never `holds: false`, so that the engine can record the verification as unknown.
 */
export interface Check<Spec> {
  readonly kind: 'promql' | 'step';
  readonly spec: z.ZodType<Spec>;
  describe(spec: Spec): string;
  /** Fills templates (the PromQL query) with the right sink. */
  render(spec: Spec, render: Render): Spec;
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
