/**
 * JSON expectations: what a rule says about a JSON answer (an `ipc` check's answer, an earlier step's body), and
 * the element selection (`where`) that `forEach` uses too. One expectation:
 *
 *   { path: result.state.child_runtime_records,        # dotted path from the top of the answer
 *     where: { child_id: "{{ labels.child_id }}" },     # keep the array elements whose fields equal these
 *     field: restart_limit.exhausted,                   # read this inside each kept element
 *     value: true }                                     # …and compare
 *
 * - `path` alone reaches a value; `where`, `field`, `count` or `none` make it a selection over the array at `path`
 *   (every element without `where`).
 * - Comparisons, exactly one: `value` (equal; a list means "one of"), `op` + `value` (`== != > >= < <=`, numbers),
 *   `count` (how many elements were selected; with `op` to compare: `count: 1, op: ">="`), `none: true` (no element
 *   selected: the same as `count: 0`), `exists` (the path, or the field of every selected element, is there or not).
 * - With a selection, `value`/`op` must hold for EVERY selected element, and at least one must be selected
 *   ("the record of this child is exhausted" is false when there is no such record: say `none` for that).
 * - `where` compares each named field (a dotted path inside the element) with the given value or values as text,
 *   so `where: { status: running }`, `{ attempt: 2 }` and `{ "liveness.heartbeat_stale": true }` all work; `null`
 *   matches a null or missing field.
 *
 * Only `where` values are templated (so a rule can pick the alert's child); paths, fields and expected values are
 * fixed in the rule: an alert can choose which element is looked at, never what is expected of it.
 */
import { z } from 'zod';
import type { Render } from '../template.js';
import type { Observation } from './types.js';

const Scalar = z.union([z.string(), z.number(), z.boolean(), z.null()]);
type Scalar = z.infer<typeof Scalar>;
const Op = z.enum(['==', '!=', '>', '>=', '<', '<=']);
type Op = z.infer<typeof Op>;
const DottedPath = z.string().regex(/^[^.\s]+(\.[^.\s]+)*$/, 'a dotted path such as result.state.child_runtime_records');

/** `where`: field (dotted path in an element) → the value, or the values, it must equal. */
export const Where = z.record(z.string().min(1), z.union([Scalar, z.array(Scalar).min(1)]));
export type Where = z.infer<typeof Where>;

export const JsonExpectation = z
  .strictObject({
    path: DottedPath,
    where: Where.optional(),
    field: DottedPath.optional(),
    value: z.union([Scalar, z.array(Scalar).min(1)]).optional(),
    op: Op.optional(),
    count: z.number().int().min(0).optional(),
    none: z.literal(true).optional(),
    exists: z.boolean().optional(),
  })
  .superRefine((j, ctx) => {
    const forms = [j.value !== undefined && j.count === undefined, j.count !== undefined, j.none, j.exists !== undefined].filter(
      Boolean,
    ).length;
    if (forms !== 1)
      ctx.addIssue({ code: 'custom', message: 'say exactly one of value (with op), count (with op), none or exists' });
    if (
      j.op !== undefined &&
      j.count === undefined &&
      (j.value === undefined || Array.isArray(j.value) || typeof j.value !== 'number')
    )
      ctx.addIssue({ code: 'custom', path: ['op'], message: 'op compares with a number value (or with count)' });
    if (j.count !== undefined && j.value !== undefined)
      ctx.addIssue({ code: 'custom', path: ['value'], message: 'value and count cannot be combined' });
  });
export type JsonExpectation = z.infer<typeof JsonExpectation>;
/** One expectation or a list, all of which must hold. */
export const JsonExpectations = z.union([JsonExpectation, z.array(JsonExpectation).min(1)]);
export type JsonExpectations = z.infer<typeof JsonExpectations>;

export function toList(j: JsonExpectations): JsonExpectation[] {
  return Array.isArray(j) ? j : [j];
}

/**
 * Fills the templates of `where` values (the `data` sink: an exact comparison, nothing else; an empty alert value is
 * refused, since `child_id: ""` would select every element without the field).
 */
export function renderWhere<T extends { where?: Where | undefined }>(j: T, render: Render): T {
  if (j.where === undefined) return j;
  const fill = (v: Scalar): Scalar => (typeof v === 'string' ? render(v, 'data') : v);
  return {
    ...j,
    where: Object.fromEntries(Object.entries(j.where).map(([k, v]) => [k, Array.isArray(v) ? v.map(fill) : fill(v)])),
  };
}

/** A dotted path (`a.b.0.c`) from `root`: object keys (own only) and array indexes. */
export function lookup(root: unknown, path: string): { ok: true; value: unknown } | { ok: false } {
  let here: unknown = root;
  for (const key of path.split('.')) {
    if (Array.isArray(here) && /^\d+$/.test(key) && Number(key) < here.length) here = here[Number(key)];
    else if (typeof here === 'object' && here !== null && !Array.isArray(here) && Object.hasOwn(here, key))
      here = (here as Record<string, unknown>)[key];
    else return { ok: false };
  }
  return { ok: true, value: here };
}

/** A value as `where` compares it: primitives as text, null and missing as null, anything else never equal. */
function asText(v: unknown): string | null | undefined {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean') return String(v);
  return undefined;
}

/** The elements of `array` (objects) whose every `where` field equals one of its values (compared as text). */
export function selectElements(array: readonly unknown[], where: Where = {}): unknown[] {
  const wanted = Object.entries(where).map(([field, allowed]): [string, (string | null)[]] => [
    field,
    (Array.isArray(allowed) ? allowed : [allowed]).map((a) => (a === null ? null : String(a))),
  ]);
  return array.filter((el) => {
    if (typeof el !== 'object' || el === null || Array.isArray(el)) return false;
    return wanted.every(([field, allowed]) => {
      const found = lookup(el, field);
      const text = asText(found.ok ? found.value : undefined);
      return text !== undefined && allowed.includes(text);
    });
  });
}

export interface JsonJudgement {
  holds: boolean;
  /** What was seen, for the run record. */
  seen: Observation['value'];
  /** Why it does not hold (or what held), in words. */
  reason: string;
}

/** One expectation against a JSON root. */
export function judgeJson(root: unknown, j: JsonExpectation): JsonJudgement {
  const at = lookup(root, j.path);
  const name = describeJson(j);
  const selecting = j.where !== undefined || j.field !== undefined || j.count !== undefined || j.none === true;
  if (!selecting) {
    // A plain path to a value.
    if (j.exists !== undefined)
      return verdict(at.ok === j.exists, at.ok ? show(at.value) : null, `${j.path} ${at.ok ? 'is there' : 'is not there'}`, name);
    if (!at.ok) return { holds: false, seen: null, reason: `${j.path} not found` };
    return compareOne(at.value, j, name, j.path);
  }
  if (!at.ok) return { holds: false, seen: null, reason: `${j.path} not found` };
  if (!Array.isArray(at.value)) return { holds: false, seen: show(at.value), reason: `${j.path} is not an array` };
  const selected = j.where !== undefined ? selectElements(at.value, j.where) : at.value;
  const what = j.where !== undefined ? `${j.path} elements where ${showWhere(j.where)}` : `${j.path} elements`;
  if (j.none === true) return verdict(selected.length === 0, selected.length, `${selected.length} ${what}`, name);
  if (j.count !== undefined) {
    const op = j.op ?? '==';
    return verdict(compare(selected.length, op, j.count), selected.length, `${selected.length} ${what}`, name);
  }
  if (selected.length === 0) return { holds: false, seen: 0, reason: `no ${what}` };
  const values = selected.map((el: unknown) => (j.field === undefined ? { ok: true as const, value: el } : lookup(el, j.field)));
  if (j.exists !== undefined) {
    const ok = values.every((v) => v.ok === j.exists);
    return verdict(
      ok,
      values.filter((v) => v.ok).length,
      `${j.field ?? 'element'} ${j.exists ? 'present' : 'absent'} in ${values.filter((v) => v.ok === j.exists).length} of ${selected.length} ${what}`,
      name,
    );
  }
  for (const [i, v] of values.entries()) {
    if (!v.ok)
      return { holds: false, seen: null, reason: `${j.field} not found in ${what} (element ${i + 1} of ${selected.length})` };
    const one = compareOne(v.value, j, name, `${j.field ?? 'element'} of ${what}`);
    if (!one.holds)
      return selected.length > 1 ? { ...one, reason: `${one.reason} (element ${i + 1} of ${selected.length})` } : one;
  }
  const seen = values.length === 1 && values[0]!.ok ? show(values[0]!.value) : values.length;
  return { holds: true, seen, reason: `${name}: holds for ${selected.length} of ${selected.length}` };
}

function compareOne(found: unknown, j: JsonExpectation, name: string, where: string): JsonJudgement {
  const seen = show(found);
  if (j.op !== undefined) {
    const n = toNumber(found);
    if (n === undefined) return { holds: false, seen, reason: `${where} is ${JSON.stringify(found)}, not a number` };
    return verdict(compare(n, j.op, j.value as number), seen, `${where} is ${n}`, name);
  }
  const allowed = Array.isArray(j.value) ? j.value : [j.value];
  const holds = allowed.some((a) => equal(found, a ?? null));
  return verdict(holds, seen, `${where} is ${JSON.stringify(found) ?? 'undefined'}`, name);
}

function verdict(holds: boolean, seen: Observation['value'], what: string, name: string): JsonJudgement {
  return { holds, seen, reason: holds ? `${name}: ${what}` : `${what}, expected ${name}` };
}

/** Equal as JSON scalars; a big integer kept as a decimal string equals the same number written in the rule. */
function equal(found: unknown, want: Scalar): boolean {
  if (found === want) return true;
  if (typeof found === 'string' && typeof want === 'number' && /^-?\d+$/.test(found))
    return BigInt(found) === BigInt(Math.trunc(want)) && Number.isInteger(want);
  return false;
}

function toNumber(v: unknown): number | undefined {
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && /^-?\d+(\.\d+)?$/.test(v)) return Number(v);
  return undefined;
}

function compare(a: number, op: Op, b: number): boolean {
  switch (op) {
    case '==':
      return a === b;
    case '!=':
      return a !== b;
    case '>':
      return a > b;
    case '>=':
      return a >= b;
    case '<':
      return a < b;
    case '<=':
      return a <= b;
  }
}

function show(v: unknown): Observation['value'] {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string' || typeof v === 'number') return v;
  if (typeof v === 'boolean') return String(v);
  // eslint-disable-next-line @typescript-eslint/no-base-to-string -- only what JSON cannot say (a symbol, a function) gets here
  const text = JSON.stringify(v) ?? String(v);
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

function showWhere(where: Where): string {
  return Object.entries(where)
    .map(([k, v]) => `${k}=${Array.isArray(v) ? v.map((x) => String(x)).join('|') : String(v)}`)
    .join(',');
}

/** `result.state.child_runtime_records[child_id=x].restart_limit.exhausted == true`, `…[status=running] count >= 1`. */
export function describeJson(j: JsonExpectation): string {
  const base = `${j.path}${j.where !== undefined ? `[${showWhere(j.where)}]` : j.field !== undefined ? '[*]' : ''}${j.field !== undefined ? `.${j.field}` : ''}`;
  if (j.none === true) return `${j.path}${j.where !== undefined ? `[${showWhere(j.where)}]` : ''} none`;
  if (j.count !== undefined)
    return `${j.path}${j.where !== undefined ? `[${showWhere(j.where)}]` : ''} count ${j.op ?? '=='} ${j.count}`;
  if (j.exists !== undefined) return `${base} ${j.exists ? 'exists' : 'does not exist'}`;
  if (j.op !== undefined) return `${base} ${j.op} ${String(j.value)}`;
  return Array.isArray(j.value) ? `${base} in ${JSON.stringify(j.value)}` : `${base} == ${JSON.stringify(j.value)}`;
}
