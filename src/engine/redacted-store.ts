import { envRedactor } from '../redact.js';
import type { Procedure } from '../rules/schema.js';
import type { RunStore } from './admission.js';
import type { RunRecord } from './record.js';

/**
 * A run store whose saves are redacted: values of the env variables the run's procedure names in its templates are
 * replaced (redact.ts) in the stored copy, wherever they ended up (a rendered spec, an action's output, a reason),
 * so neither the API nor the console can serve them. The run in memory keeps them: it is the action's input.
 */
export function redactingRunStore(
  store: RunStore,
  procedures: ReadonlyMap<string, Procedure>,
  env: Readonly<Record<string, string | undefined>> = process.env,
): RunStore {
  const redact = (record: RunRecord): RunRecord => {
    const procedure = procedures.get(record.procedure);
    return procedure === undefined ? record : envRedactor(procedure, env)(record);
  };
  return {
    get: (id) => store.get(id),
    save: (record) => store.save(redact(record)),
    resolvedAt: (id) => store.resolvedAt(id),
    cancelRequest: (id) => store.cancelRequest(id),
  };
}
