import type { z } from 'zod';
import type { Logger } from 'pino';
import type { Render } from '../template.js';
import type { RunningProcess } from './process-guard.js';

/** Everything an action gets besides its own spec. */
export interface ActionContext {
  /** Aborted on step timeout, alert resolution or worker shutdown. Honour it promptly. */
  readonly signal: AbortSignal;
  /** Child logger that already carries runId, procedure and step. */
  readonly log: Logger;
  /**
   * The run and step this attempt belongs to, for an action that must name them to its target (the ipc action's
   * `command_id` and `reason`). Absent outside a run (tests, one-off use); such an action then makes up its own.
   */
  readonly run?: RunIdentity;
  /** Epoch ms when the step runner aborts this attempt (its timeout): a child process must not outlive it. */
  readonly deadline?: number;
  /**
   * Records a process the attempt started in the run's checkpoint (for a takeover to fence, actions/process-guard.ts).
   * Absent outside a run.
   */
  track?(process: RunningProcess): Promise<void>;
}

export interface RunIdentity {
  /** The run id (the incident's job id). */
  readonly id: string;
  /** The procedure id, e.g. P1-002. */
  readonly procedure: string;
  /** The step name. */
  readonly step: string;
  /** 1 for the first attempt of the step's action, 2 for its first retry… */
  readonly attempt: number;
}

/** The one result shape (DESIGN.md). A failing target is a result, not an exception. */
export interface ActionResult {
  status: 'succeeded' | 'failed';
  exitCode?: number;
  /** Capped by the action (OUTPUT_LIMIT); never unbounded. */
  output?: string;
  httpStatus?: number;
  body?: unknown;
  /**
   * For a failed result: whether another attempt could turn out differently (an HTTP 4xx other than 429: no).
   * Unset: it might. The step runner does not retry a step whose action said no.
   */
  retryable?: boolean;
  /** Anything else worth keeping in the run record (pids signalled, pod name…). */
  detail?: Record<string, unknown>;
}

/** Output kept in results and records, in characters. Beyond it the text is cut and marked. */
export const OUTPUT_LIMIT = 16 * 1024;

export function capOutput(text: string, limit = OUTPUT_LIMIT): string {
  if (text.length <= limit) return text;
  return `${text.slice(0, limit)}\n…[truncated ${text.length - limit} characters]`;
}

/**
 * Performs ONE attempt of a step's side effect.
 *
 * Not an action's job: retries, overall timeouts, metrics, run records, dry-run.
 * The engine's step runner does those once for every action, as Alertmanager's
 * RetryStage does around any Notifier.
 *
 * Throw ActionError only when the attempt could not be made at all, and say
 * whether trying again could help (connection refused: yes; 4xx or forbidden: no).
 */
export interface Action<Spec> {
  /** The key in rule files: `action: { <kind>: Spec }`. */
  readonly kind: string;
  /** Rule-file shape of Spec. Strict: unknown keys are typos. */
  readonly spec: z.ZodType<Spec>;
  /** One line for `plan`, dry-run and `docs`, e.g. "SIGTERM → process relay". */
  describe(spec: Spec): string;
  /**
   * The attempt's own time limit when the spec sets one (exec's and http's `timeout`): the step runner then
   * allows that plus a grace, so the action reports its own timeout as a result. Absent: STEP_TIMEOUT.
   */
  timeoutMs?(spec: Spec): number | undefined;
  /**
   * Fills the templates in a spec. The action knows where each field lands (argv element, URL, path…),
   * so it names the sink and the renderer escapes or rejects untrusted values for it.
   * Throws TemplateError when a value cannot be placed safely; nothing runs then.
   */
  render(spec: Spec, render: Render): Spec;
  run(spec: Spec, ctx: ActionContext): Promise<ActionResult>;
}

export class ActionError extends Error {
  override readonly name = 'ActionError';
  constructor(
    message: string,
    readonly retryable: boolean,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the registry holds actions of every spec type
export type AnyAction = Action<any>;
