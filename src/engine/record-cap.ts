/**
 * Run records have a size (issue 9, amplification): a query returning ten thousand series, a 10 MB JSON body or a
 * forEach over a thousand items must not make one record tens of MB (Redis memory, and every read of the API).
 * The stored copy is capped, and says what was cut in `truncated` (one note per field). The run itself worked with
 * everything: only what is kept for reading afterwards is cut.
 */
import type { Observation } from '../checks/types.js';
import type { CheckRecord, RunRecord, StepRecord } from './record.js';

export const RECORD_LIMITS = {
  /** Observed values kept per check (the first ones; the reason says how many failed). */
  observations: 100,
  /** Characters of an action's output. */
  output: 16 * 1024,
  /** Characters of an action's JSON body (as JSON) or its detail. */
  body: 16 * 1024,
  /** The whole record as JSON; past it, outputs and observations are cut harder. */
  record: 128 * 1024,
} as const;

interface Caps {
  observations: number;
  output: number;
  body: number;
}

function capObserved(list: Observation[] | undefined, max: number, at: string, notes: string[]): Observation[] | undefined {
  if (list === undefined || list.length <= max) return list;
  notes.push(`${at}: kept ${max} of ${list.length} observed values`);
  return list.slice(0, max);
}

function capText(text: string | undefined, max: number, at: string, notes: string[]): string | undefined {
  if (text === undefined || text.length <= max) return text;
  notes.push(`${at}: kept ${max} of ${text.length} characters`);
  return `${text.slice(0, max)}\n…[cut: ${text.length - max} more characters]`;
}

function capJson(value: unknown, max: number, at: string, notes: string[]): unknown {
  if (value === undefined) return value;
  const size = JSON.stringify(value)?.length ?? 0;
  if (size <= max) return value;
  notes.push(`${at}: ${size} characters of JSON not kept (over ${max})`);
  return `[cut: ${size} characters of JSON]`;
}

function capCheck<C extends CheckRecord>(check: C | undefined, caps: Caps, at: string, notes: string[]): C | undefined {
  if (check === undefined) return check;
  return { ...check, observed: capObserved(check.observed, caps.observations, `${at}.observed`, notes) ?? [] };
}

function capStep(step: StepRecord, i: number, caps: Caps, notes: string[]): StepRecord {
  const at = `steps[${i}]`;
  const out: StepRecord = { ...step, observed: capObserved(step.observed, caps.observations, `${at}.observed`, notes) ?? [] };
  const when = capCheck(step.when, caps, `${at}.when`, notes);
  const expect = capCheck(step.expect, caps, `${at}.expect`, notes);
  if (when !== undefined) out.when = when;
  if (expect !== undefined) out.expect = expect;
  if (step.result !== undefined) {
    const result = { ...step.result };
    const output = capText(result.output, caps.output, `${at}.result.output`, notes);
    if (output !== undefined) result.output = output;
    if (result.body !== undefined) result.body = capJson(result.body, caps.body, `${at}.result.body`, notes);
    if (result.detail !== undefined)
      result.detail = capJson(result.detail, caps.body, `${at}.result.detail`, notes) as Record<string, unknown>;
    out.result = result;
  }
  if (step.action !== undefined)
    out.action = { ...step.action, spec: capJson(step.action.spec, caps.body, `${at}.action.spec`, notes) };
  return out;
}

/** The record as it is stored: within RECORD_LIMITS, with a note of everything cut. Never changes `record`. */
export function capRecord(record: RunRecord): RunRecord {
  return capRecordJson(record).record;
}

/** Whether some list of observed values is longer than the first round keeps (then the record cannot be stored as is). */
function longLists(record: RunRecord): boolean {
  const max = RECORD_LIMITS.observations;
  return record.steps.some(
    (s) => s.observed.length > max || (s.when?.observed.length ?? 0) > max || (s.expect?.observed.length ?? 0) > max,
  );
}

/**
 * capRecord, and the stored record's JSON (measured anyway to check the size: not serialised a second time).
 *
 * A record whose whole JSON is within the smallest per-field cap (RECORD_LIMITS.body, .output) has no field over its
 * cap: each capped field's JSON (or text) is a part of the record's, no longer. Unless a list of observed values is
 * too long, such a record is stored as it is, serialised once; the per-field rounds (capByRounds) give the same
 * result for it, at the cost of a copy of every step and a JSON of every spec, body and detail.
 */
export function capRecordJson(record: RunRecord): { record: RunRecord; json: string } {
  // No step yet (every record a webhook makes): nothing here can be cut, so every round below would keep the record
  // as it is; its JSON once, without the rounds' copies (issue 13: a webhook's records, one per alert).
  if (record.steps.length === 0) return { record, json: JSON.stringify(record) };
  if (!longLists(record)) {
    const json = JSON.stringify(record);
    if (json.length <= Math.min(RECORD_LIMITS.body, RECORD_LIMITS.output)) return { record, json };
  }
  return capByRounds(record);
}

/** The capping itself: each field to its cap, harder rounds until the whole is within RECORD_LIMITS.record. */
export function capByRounds(record: RunRecord): { record: RunRecord; json: string } {
  const rounds: Caps[] = [
    { observations: RECORD_LIMITS.observations, output: RECORD_LIMITS.output, body: RECORD_LIMITS.body },
    { observations: 10, output: 2048, body: 2048 },
    { observations: 0, output: 256, body: 256 },
  ];
  let capped = record;
  let json = '';
  for (const caps of rounds) {
    const notes: string[] = [];
    capped = { ...record, steps: record.steps.map((s, i) => capStep(s, i, caps, notes)) };
    if (notes.length > 0) capped.truncated = [...new Set([...(record.truncated ?? []), ...notes])];
    else capped = record;
    json = JSON.stringify(capped);
    if (json.length <= RECORD_LIMITS.record) break;
  }
  return { record: capped, json };
}
