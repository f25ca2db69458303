/**
 * Whether `err` is (or was caused by) `reason`: how a test tells a rejection an abort caused from one the
 * operation reached by itself (its own timeout, exit or answer). Ordering, not a clock: how fast an abort
 * settles is a figure for `npm run bench`, never a pass/fail bound on a loaded machine.
 */
export function causedBy(err: unknown, reason: unknown): boolean {
  for (let e: unknown = err, depth = 0; e !== undefined && e !== null && depth < 8; depth++) {
    if (e === reason) return true;
    e = e instanceof Error ? e.cause : undefined;
  }
  return false;
}
