/**
 * Durations as rule files and the environment write them: Prometheus style, `500ms`, `10s`, `1m30s`, `2h`.
 * Kept tiny and strict so a typo (`10sec`) is a load error, not a surprise at 3 a.m. A leaf module: the one
 * duration syntax and the one schema for it, used by the config, the rule schema and the plugins' specs.
 */
import { z } from 'zod';

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const DURATION = /^(?:\d+(?:ms|s|m|h|d))+$/;
const PART = /(\d+)(ms|s|m|h|d)/g;
const MESSAGE = 'expected a duration like 10s, 1m30s or 500ms';

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

/**
 * A duration kept as written (`30s`): for plugin specs that print it back (`wait 30s`, `(timeout 30s)`) and
 * store it in run records as the rule said it. In JSON Schema: a string with the pattern.
 */
export const DurationText = z.string().regex(DURATION, MESSAGE).describe('a duration like 10s, 1m30s or 500ms');

/** A duration parsed once, to milliseconds. In JSON Schema it stays a string with the pattern. */
export const Duration = DurationText.transform(parseDuration);
