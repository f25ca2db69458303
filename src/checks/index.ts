import { promql } from './promql.js';
import { stepResult } from './step-result.js';
import type { AnyCheck } from './types.js';

/** The only list of check kinds. A new check: one file, one line here. */
export const checks: readonly AnyCheck[] = [promql, stepResult];
export const checkByKind: ReadonlyMap<string, AnyCheck> = new Map(checks.map((c) => [c.kind, c]));

/**
 * The check for a rule file's flat `expect`/`when` object: `promql` when it has a query, else `step`.
 * (`rules/schema.ts` CheckSpec has already refused mixes of the two.)
 */
export function checkFor(spec: { promql?: string | undefined }): AnyCheck {
  return typeof spec.promql === 'string' ? promql : stepResult;
}
