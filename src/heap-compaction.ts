import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

/**
 * Frees start-up's garbage at once, before a process says it is ready (issue 13: RSS idle ≤ 80 MiB per process).
 *
 * Start-up (modules compiled, zod schemas and rules built, config parsed) leaves ~8-10 MiB of old-space pages that
 * hold mostly garbage. A plain full GC frees the objects but keeps the pages (too little fragmentation for V8 to
 * compact them); V8's memory reducer compacts and releases them only 8-20 s after the last start-up GC, so a
 * process is ~10 MiB larger than it needs to be until then, and for good if it never goes idle. One full GC with
 * compaction now releases them: old space ~27 → ~19 MiB, RSS ~89 → ~79 MiB for a worker.
 *
 * Through node:v8's setFlagsFromString (a public API; both flags are plain booleans V8 reads when a GC starts):
 * `--expose-gc` for a context that has the gc function (the main one was made without it), and compaction on this
 * one full GC only. Best effort: a Node whose V8 refuses either flag just skips it. Returns how long it took, ms.
 */
export function compactStartupHeap(): number | undefined {
  const started = process.hrtime.bigint();
  try {
    const given = (globalThis as { gc?: () => void }).gc;
    let gc = given;
    if (gc === undefined) {
      setFlagsFromString('--expose-gc');
      gc = runInNewContext('gc') as (() => void) | undefined;
    }
    if (typeof gc !== 'function') return undefined;
    setFlagsFromString('--compact-on-every-full-gc');
    try {
      gc();
    } finally {
      setFlagsFromString('--no-compact-on-every-full-gc');
      if (given === undefined) setFlagsFromString('--no-expose-gc');
    }
    return Number(process.hrtime.bigint() - started) / 1e6;
  } catch {
    return undefined;
  }
}
