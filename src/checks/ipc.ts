import { z } from 'zod';
import { DurationText, formatDuration, parseDuration } from '../duration.js';
import { createIpcClient } from '../supervisor/ipc-client.js';
import { stateParams } from '../supervisor/protocol.js';
import { isOperatorTemplate } from '../template.js';
import { describeJson, judgeJson, JsonExpectations, renderWhere, toList } from './json.js';
import { CheckUnavailableError, type Check, type CheckOutcome, type Observation } from './types.js';

/** A query waits this long for its answer unless the rule says otherwise. */
export const IPC_CHECK_TIMEOUT_MS = 5_000;

const Operator = (what: string) =>
  z
    .string()
    .min(1)
    .refine(isOperatorTemplate, `${what} comes from vars or env only (operator values), never from an alert or a forEach item`);

export const IpcCheckSpec = z
  .strictObject({
    /** What to ask: `hello` (answered without the control loop) or `state` (a round trip through it). */
    ipc: z.strictObject({
      /** The supervisor's `ipc.path`: `{{ vars.ipc_path }}`. */
      path: Operator('the socket path'),
      method: z.enum(['state', 'hello']),
      /** Sent with `state` as the relay does (the server ignores it). */
      target_id: Operator('target_id').optional(),
      /** One evaluation waits this long for the answer (default 5s). */
      timeout: DurationText.optional(),
    }),
    /** The answer's `ok`. Default true, unless `timedOut: true`. */
    ok: z.boolean().optional(),
    /** true: holds only when no answer came within the timeout (P1-004: `state` starved). false: an answer came. */
    timedOut: z.boolean().optional(),
    /** JSON expectations over the answer (`result.state.child_runtime_records` …), all must hold: see checks/json.ts. */
    json: JsonExpectations.optional(),
  })
  .superRefine((s, ctx) => {
    if (s.timedOut === true && s.ok !== undefined)
      ctx.addIssue({ code: 'custom', path: ['ok'], message: 'timedOut: true means there is no answer to have an ok' });
    if (s.timedOut === true && s.json !== undefined)
      ctx.addIssue({ code: 'custom', path: ['json'], message: 'timedOut: true means there is no answer to look into' });
  });
export type IpcCheckSpec = z.infer<typeof IpcCheckSpec>;

/**
 * Asks the supervisor's dashboard IPC (`hello` or `state`, through the one client) and judges the answer, once,
 * now: `ok`, `timedOut`, and JSON expectations with element selection (the record of one child, a count, none).
 *
 * No answer is a fact about the supervisor, not an outage of the check: no socket, nobody listening, the
 * connection closed, or no answer within the timeout all make `ok: true` (and any `json`) not hold, with the
 * reason; only `timedOut: true` holds on a timeout. What says nothing about the supervisor is an error the
 * engine records as unknown (CheckUnavailableError, not retried): no permission on the socket, an answer that is
 * not dashboard-ipc.v1.
 *
 * A quarantine or remove of a child id the supervisor does not know SUCCEEDS (it creates a placeholder slot), so
 * a rule checks that the child exists before acting: a `when` of this kind with
 * `json: { path: result.state.child_runtime_records, where: { child_id: "{{ labels.child_id }}" }, count: 1 }`.
 */
export const ipc: Check<IpcCheckSpec> = {
  kind: 'ipc',
  key: 'ipc',
  spec: IpcCheckSpec,
  describe(s) {
    const parts = [`IPC ${s.ipc.method}${s.ipc.timeout !== undefined ? ` (timeout ${s.ipc.timeout})` : ''}`];
    if (s.timedOut === true) parts.push('times out');
    else parts.push(s.ok === false ? 'answers ok: false' : s.timedOut === false && s.ok === undefined ? 'answers' : 'answers ok');
    if (s.json !== undefined) parts.push(...toList(s.json).map(describeJson));
    return parts.join(', ');
  },
  explain(s) {
    if (s.timedOut === true)
      return `IPC ${s.ipc.method} gets no answer within ${s.ipc.timeout ?? formatDuration(IPC_CHECK_TIMEOUT_MS)}`;
    const json = s.json !== undefined ? `, ${toList(s.json).map(describeJson).join(', ')}` : '';
    return `IPC ${s.ipc.method} answers ${s.ok === false ? 'ok: false' : 'ok'}${json}`;
  },
  render: (s, r) => ({
    ...s,
    ipc: {
      ...s.ipc,
      path: r(s.ipc.path, 'path'),
      ...(s.ipc.target_id !== undefined ? { target_id: r(s.ipc.target_id, 'data') } : {}),
    },
    ...(s.json !== undefined
      ? { json: Array.isArray(s.json) ? s.json.map((j) => renderWhere(j, r)) : renderWhere(s.json, r) }
      : {}),
  }),
  async evaluate(s, ctx) {
    const timeoutMs = s.ipc.timeout !== undefined ? parseDuration(s.ipc.timeout) : IPC_CHECK_TIMEOUT_MS;
    const params = s.ipc.method === 'state' && s.ipc.target_id !== undefined ? stateParams(s.ipc.target_id) : {};
    const outcome = await createIpcClient({ path: s.ipc.path }).call(s.ipc.method, params, { signal: ctx.signal, timeoutMs });
    const at = new Date().toISOString();
    const labels = (field: string) => ({ method: s.ipc.method, field });
    const observed: Observation[] = [];
    const see = (field: string, value: Observation['value']) => observed.push({ labels: labels(field), value, at });
    const failures: string[] = [];

    if (
      outcome.status === 'failed' &&
      (outcome.error.kind === 'invalid_response' ||
        outcome.error.kind === 'too_large' ||
        outcome.error.code === 'EACCES' ||
        outcome.error.code === 'ENOTSOCK')
    )
      throw new CheckUnavailableError(`ipc check: ${outcome.error.message}`, { cause: outcome.error, retryable: false });

    const timedOut = outcome.status === 'timed_out';
    see('timedOut', String(timedOut));
    if (s.timedOut !== undefined && s.timedOut !== timedOut)
      failures.push(
        timedOut
          ? `no answer within ${formatDuration(timeoutMs)}`
          : `answered within ${formatDuration(timeoutMs)}, expected no answer`,
      );
    if (s.timedOut === true)
      return verdict(failures, observed, `${s.ipc.method} got no answer within ${formatDuration(timeoutMs)}`);

    if (outcome.status !== 'answered') {
      failures.push(timedOut ? `no answer within ${formatDuration(timeoutMs)}` : `no answer: ${outcome.error.message}`);
      return verdict([...new Set(failures)], observed, '');
    }
    const { response } = outcome;
    see('ok', String(response.ok));
    const wantOk = s.ok ?? (s.timedOut === false && s.json === undefined ? undefined : true);
    if (wantOk !== undefined && response.ok !== wantOk) {
      const e = response.error;
      failures.push(`answered ok: ${response.ok}${e ? ` (${e.code} at ${e.stage}: ${e.message})` : ''}, expected ok: ${wantOk}`);
    }
    for (const j of s.json === undefined ? [] : toList(s.json)) {
      const judged = judgeJson(response, j);
      see(describeJson(j), judged.seen);
      if (!judged.holds) failures.push(judged.reason);
    }
    return verdict(failures, observed, `${s.ipc.method} answered as expected`);
  },
};

function verdict(failures: string[], observed: Observation[], ok: string): CheckOutcome {
  return failures.length > 0 ? { holds: false, observed, reason: failures.join('; ') } : { holds: true, observed, reason: ok };
}
