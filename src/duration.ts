/**
 * Durations as rule files and the environment write them: Prometheus style, `500ms`, `10s`, `1m30s`, `2h`.
 * Kept tiny and strict so a typo (`10sec`) is a load error, not a surprise at 3 a.m.
 */
const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const DURATION = /^(?:\d+(?:ms|s|m|h|d))+$/;
const PART = /(\d+)(ms|s|m|h|d)/g;

export function isDuration(text: string): boolean {
  return DURATION.test(text);
}

/** Milliseconds for a duration string; throws on anything that is not one. */
export function parseDuration(text: string): number {
  if (!DURATION.test(text)) throw new Error(`expected a duration like 10s, 1m30s or 500ms, got ${JSON.stringify(text)}`);
  let ms = 0;
  for (const [, amount, unit] of text.matchAll(PART)) ms += Number(amount) * UNIT_MS[unit as keyof typeof UNIT_MS];
  return ms;
}

/** The shortest readable form: 90000 → "1m30s". */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0s';
  const parts: string[] = [];
  let rest = Math.round(ms);
  for (const [unit, size] of [
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)}${unit}`);
      rest %= size;
    }
  }
  if (rest > 0) parts.push(`${rest}ms`);
  return parts.join('');
}
