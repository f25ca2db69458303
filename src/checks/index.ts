import { ipc } from './ipc.js';
import { promql } from './promql.js';
import { socket } from './socket.js';
import { stepResult } from './step-result.js';
import type { AnyCheck } from './types.js';

/**
 * The only list of check kinds. A new check: one file, one line here; `rules/schema.ts` builds the
 * `expect`/`when` shape from this list (rule validation, `remediator schema`, `docs` and `plan` follow).
 * Order matters only for the default kind (the one without a `key`), which must be unique.
 */
export const checks: readonly AnyCheck[] = [promql, ipc, socket, stepResult];
export const checkByKind: ReadonlyMap<string, AnyCheck> = new Map(checks.map((c) => [c.kind, c]));
