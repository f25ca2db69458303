/**
 * Attempts with exponential backoff and jitter, for whoever decides to retry (escalation delivery, the engine's
 * step policy): one attempt is the plugin's business, retrying is the caller's, as Alertmanager's RetryStage
 * wraps a Notifier. Built on cockatiel's retry policy (decorrelated jitter).
 */

/** cockatiel is loaded by the first retried call, not at start (a receiver never retries anything here). */
let cockatiel: Promise<typeof import('cockatiel')> | undefined;

export interface RetryOptions {
  /** Attempts in all, the first included (1: no retry). */
  attempts: number;
  /** The first delay; later ones grow exponentially, with jitter. */
  baseDelayMs: number;
  /** No delay is longer than this (default 30 s). */
  maxDelayMs?: number;
  /** Whether an error is worth another attempt. Default: unless it says `retryable: false`. */
  retryable?: (err: unknown) => boolean;
  /** Aborts the wait between attempts (and is passed to each attempt). */
  signal?: AbortSignal;
  /** Told before each wait. */
  onRetry?: (err: unknown, attempt: number, delayMs: number) => void;
}

/** Whether an error says trying again could help (HttpError, ActionError, AlertmanagerError…); unknown errors yes. */
export function saysRetryable(err: unknown): boolean {
  return (err as { retryable?: unknown } | null)?.retryable !== false;
}

/** Runs `fn` until it resolves, an error is not retryable, or the attempts are used up (the last error is thrown). */
export async function withRetries<T>(fn: (attempt: number, signal: AbortSignal) => Promise<T>, opts: RetryOptions): Promise<T> {
  const { ExponentialBackoff, handleWhen, retry } = await (cockatiel ??= import('cockatiel'));
  const policy = retry(handleWhen(opts.retryable ?? saysRetryable), {
    maxAttempts: Math.max(0, opts.attempts - 1),
    backoff: new ExponentialBackoff({ initialDelay: Math.max(1, opts.baseDelayMs), maxDelay: opts.maxDelayMs ?? 30_000 }),
  });
  const listener =
    opts.onRetry &&
    policy.onRetry((r) => {
      if ('error' in r) opts.onRetry!(r.error, r.attempt, r.delay);
    });
  try {
    return await policy.execute(({ attempt, signal }) => fn(attempt + 1, signal), opts.signal);
  } finally {
    listener?.dispose();
  }
}
