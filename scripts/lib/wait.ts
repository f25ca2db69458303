import { setTimeout as sleep } from 'node:timers/promises';
import type { ManagedProcess } from './processes.js';

export class WaitTimeoutError extends Error {
  override name = 'WaitTimeoutError';
}

export interface WaitOptions {
  /** How long to keep polling before failing (default 15 s): a hang detector, never a performance claim. */
  timeoutMs?: number;
  intervalMs?: number;
  /** Fail at once, with their log tails, if any of these exits while waiting. */
  processes?: readonly ManagedProcess[];
}

type Probe<T> = () => Promise<T | undefined | null | false> | T | undefined | null | false;

/**
 * Polls `probe` until it returns something other than undefined/null/false, and returns that. For state that
 * offers no event to await (an HTTP API, a metric, a file another process writes). Fails after `timeoutMs`
 * naming `what` and the last error the probe threw, and at once if one of `processes` exits (with its log).
 *
 * The options may also be given as numbers, `waitFor(what, probe, timeoutMs, intervalMs)`.
 */
export async function waitFor<T>(what: string, probe: Probe<T>, options?: WaitOptions | number, intervalMs?: number): Promise<T> {
  const opts: WaitOptions = typeof options === 'number' ? { timeoutMs: options, intervalMs } : (options ?? {});
  const { timeoutMs = 15_000, processes = [] } = opts;
  const interval = opts.intervalMs ?? 100;
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown = null;
  for (;;) {
    for (const p of processes) {
      const ex = p.exitInfo();
      if (ex !== null) {
        throw new Error(
          `${p.name} (pid ${p.pid}) exited (${ex.signal ?? `code ${ex.code}`}) while waiting for ${what}; log ${p.logFile}:\n${p.logTail()}`,
        );
      }
    }
    try {
      const v = await probe();
      if (v !== undefined && v !== null && v !== false) return v;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() >= deadline) {
      const why = lastErr === null ? '' : ` (last error: ${(lastErr as Error).message ?? String(lastErr)})`;
      const logs = processes.map((p) => `\n--- ${p.name} log ${p.logFile}:\n${p.logTail(15)}`).join('');
      throw new WaitTimeoutError(`timed out after ${timeoutMs} ms waiting for ${what}${why}${logs}`);
    }
    await sleep(interval);
  }
}
