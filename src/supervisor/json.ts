/**
 * JSON for `dashboard-ipc.v1`, without losing digits.
 *
 * The supervisor writes its timestamps as Rust `u128` Unix nanoseconds (`*_unix_nanos`, ~1.7e18), larger
 * than 2^53, so `JSON.parse` would round them. Here every number that is an integer outside
 * `Number.MIN_SAFE_INTEGER..Number.MAX_SAFE_INTEGER` becomes its exact **decimal string** (`"1747650000123456789"`);
 * every other number stays a JS `number`. Strings were chosen over `bigint` so that a parsed answer can go
 * through `JSON.stringify` (logs, run records) unchanged. `toBigInt()` turns either form back into a `bigint`.
 *
 * Writing goes the other way: a `bigint` value is written as a bare JSON integer, which is what the
 * supervisor's serde `u128` needs for `requested_at_unix_nanos` (a string there is rejected).
 */
import { isSafeNumber, parse, stringify, type NumberParser } from 'lossless-json';

/** An integer from the wire: a `number` when safe, else its exact decimal string. */
export type WireInteger = number | string;

const keepUnsafeIntegers: NumberParser = (text) => {
  if (isSafeNumber(text)) return Number(text);
  // An integer too large for a double: keep every digit. A non-integer keeps the nearest double (the
  // protocol has no such values; a float's rounding is what serde did when writing it anyway).
  return /^-?\d+$/.test(text) ? text : Number(text);
};

/** Parse one line losslessly (see the module comment). Throws SyntaxError on invalid JSON. */
export function parseWireJson(text: string): unknown {
  return parse(text, null, keepUnsafeIntegers);
}

/** Serialize for the wire: like `JSON.stringify` (no spaces), with `bigint` written as a bare integer. */
export function stringifyWireJson(value: unknown): string {
  const out = stringify(value);
  if (out === undefined) throw new TypeError('value cannot be serialized as JSON');
  return out;
}

/** A wire integer (number or decimal string) or a bigint as a `bigint`; throws on anything else. */
export function toBigInt(value: WireInteger | bigint): bigint {
  if (typeof value === 'bigint') return value;
  if (typeof value === 'number' && Number.isInteger(value)) return BigInt(value);
  if (typeof value === 'string' && /^-?\d+$/.test(value)) return BigInt(value);
  throw new TypeError(`not an integer: ${String(value)}`);
}

const wallAtStart = BigInt(Date.now()) * 1_000_000n;
const monotonicAtStart = process.hrtime.bigint();

/** Now as Unix nanoseconds: the wall clock at load plus the monotonic clock since (never goes backwards). */
export function unixNanosNow(): bigint {
  return wallAtStart + (process.hrtime.bigint() - monotonicAtStart);
}
