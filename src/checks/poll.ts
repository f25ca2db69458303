import { setTimeout as sleep } from 'node:timers/promises';
import { formatDuration } from '../duration.js';
import { CheckUnavailableError, type Check, type CheckContext, type CheckOutcome, type Observation } from './types.js';

/** A check's timing as the rule file gives it (`within`, `after`, `for`), in milliseconds. */
export interface CheckTiming {
  /** Poll until the check holds, for at most this long. */
  readonly withinMs?: number | undefined;
  /** Wait this long first, then evaluate (combined with `within`/`for`, they start after the wait). */
  readonly afterMs?: number | undefined;
  /** The check must hold continuously this long. */
  readonly forMs?: number | undefined;
}

/** The timing awaitCheck applies: the rule's, and POLL_INTERVAL. */
export interface Timing extends CheckTiming {
  /** Time between evaluations while waiting. */
  readonly pollIntervalMs: number;
}

export type AwaitedOutcome = CheckOutcome & {
  /** Evaluations made, failed ones included. */
  attempts: number;
  elapsedMs: number;
  /** The last evaluation could not be made (Prometheus unavailable…): the answer is not known. `holds` is false. */
  unknown: boolean;
};

/**
 * Applies timing around ONE check, the way Alertmanager's RetryStage wraps any Notifier.
 *
 * - no timing: evaluate once, now.
 * - `after`: sleep, then continue as below.
 * - `within`: evaluate every poll interval until it holds or `within` has passed (one last evaluation at the
 *   deadline).
 * - `for`: the check must hold at every evaluation across a span of `for` (first holding evaluation to the
 *   last); any evaluation that does not hold, or cannot be made, restarts the span. Without `within` it must
 *   hold from the first evaluation, so the whole wait is `for`. With `within`, the span must be complete by
 *   `within` (it must begin holding by `within - for`); `within` shorter than `for` is read as `for`.
 *
 * A CheckUnavailableError does not end the wait while more time remains (a later success clears it), unless it
 * says retrying cannot help (a query Prometheus rejects). If the last evaluation failed that way, the outcome is
 * `unknown: true, holds: false`, with the error in the reason. The first failure of a streak is logged, not
 * every poll.
 *
 * Abort: rejects with `ctx.signal.reason` promptly; no timer is left behind. Other errors (bugs) propagate.
 */
export async function awaitCheck<S>(
  check: Check<S>,
  spec: S,
  timing: Timing,
  ctx: CheckContext,
  clock: Clock = systemClock,
): Promise<AwaitedOutcome> {
  const t0 = clock.now();
  const elapsed = (): number => Math.round(clock.now() - t0);
  const interval = Math.max(1, timing.pollIntervalMs);

  ctx.signal.throwIfAborted();
  if (timing.afterMs !== undefined && timing.afterMs > 0) await clock.sleep(timing.afterMs, ctx.signal);

  const start = clock.now();
  const forMs = timing.forMs;
  // The latest moment at which the check may (begin to) hold for the wait still to succeed.
  const startBy = start + (forMs !== undefined ? Math.max(0, (timing.withinMs ?? 0) - forMs) : (timing.withinMs ?? 0));

  let attempts = 0;
  let holdingSince: number | undefined;
  let lastHeldAt = 0;
  let longestHoldMs = 0;
  let last: CheckOutcome | undefined;
  let lastError: CheckUnavailableError | undefined;
  let failingSince: number | undefined; // attempt number of the first failure in the current streak

  for (;;) {
    attempts++;
    const evaluatedAt = clock.now();
    let holds = false;
    try {
      last = await check.evaluate(spec, ctx);
      holds = last.holds;
      if (lastError !== undefined) {
        ctx.log.info({ check: check.kind, attempts, failedAttempts: attempts - failingSince! }, 'check can be evaluated again');
      }
      lastError = undefined;
      failingSince = undefined;
    } catch (err) {
      ctx.signal.throwIfAborted();
      if (!(err instanceof CheckUnavailableError)) throw err;
      if (lastError === undefined) {
        failingSince = attempts;
        ctx.log.warn({ check: check.kind, attempts, err }, 'check cannot be evaluated; still trying');
      }
      lastError = err;
      if (!err.retryable) break;
    }

    const now = clock.now();
    let next: number;
    if (holds) {
      holdingSince ??= evaluatedAt;
      lastHeldAt = evaluatedAt;
      if (forMs === undefined || evaluatedAt - holdingSince >= forMs) {
        return { ...last!, holds: true, attempts, elapsedMs: elapsed(), unknown: false };
      }
      next = Math.min(now + interval, holdingSince + forMs);
    } else {
      if (holdingSince !== undefined) longestHoldMs = Math.max(longestHoldMs, lastHeldAt - holdingSince);
      holdingSince = undefined;
      if (now >= startBy) break;
      next = Math.min(now + interval, startBy);
    }
    await clock.sleep(next - now, ctx.signal);
  }

  if (lastError !== undefined) {
    const observed: Observation[] = last?.observed ?? [];
    return {
      holds: false,
      unknown: true,
      observed,
      reason:
        attempts > 1
          ? `${lastError.message} (${attempts - failingSince! + 1} of ${attempts} attempts failed)`
          : lastError.message,
      attempts,
      elapsedMs: elapsed(),
    };
  }
  // Only a finished evaluation gets here: every failed one either continued, or set lastError.
  const outcome = last!;
  const reason = outcome.reason ?? 'does not hold';
  const held =
    forMs !== undefined && longestHoldMs > 0
      ? ` (held for ${formatDuration(longestHoldMs)} of the ${formatDuration(forMs)} required)`
      : '';
  return { ...outcome, holds: false, reason: `${reason}${held}`, attempts, elapsedMs: elapsed(), unknown: false };
}

/** Where awaitCheck reads the time and waits: the system's, or a virtual one in tests. */
export interface Clock {
  /** Milliseconds, monotonic. */
  now(): number;
  /** Waits `ms`; rejects with the signal's own reason when it aborts, leaving no timer behind. */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}

export const systemClock: Clock = { now: () => performance.now(), sleep: pause };

/** An abortable sleep that leaves no timer behind; rejects with the signal's own reason. */
async function pause(ms: number, signal: AbortSignal): Promise<void> {
  try {
    await sleep(Math.max(0, ms), undefined, { signal });
  } catch (err) {
    signal.throwIfAborted();
    throw err;
  }
}
