import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { DurationText, formatDuration, parseDuration } from '../duration.js';
import { isOperatorTemplate } from '../template.js';
import { createIpcClient, type IpcClient, type IpcOutcome } from '../supervisor/ipc-client.js';
import {
  commandKindOf,
  commandMethod,
  commandParams,
  COMMAND_KINDS,
  CONFIRMATION_REQUIRED,
  IpcRequestError,
  isChildId,
  stateParams,
  type CommandKind,
} from '../supervisor/protocol.js';
import { advertisedTimeoutMs, isAccepted, readHello } from '../supervisor/results.js';
import { ActionError, capOutput, type Action, type ActionContext, type ActionResult } from './types.js';

/** `state` and `hello` answer in milliseconds when the supervisor is well; a query waits this long by default. */
export const QUERY_TIMEOUT_MS = 5_000;
/** A command's timeout when the supervisor does not advertise one (its own default: registration.rs:200-217). */
export const COMMAND_TIMEOUT_MS = 30_000;
/** Asking `hello` for the advertised command timeout takes at most this long. */
const HELLO_TIMEOUT_MS = 2_000;

export const IPC_METHODS = ['hello', 'state', ...COMMAND_KINDS.map((k) => commandMethod(k))] as const;
/** A template that only operator values (vars, env) may fill: never alert labels, annotations or forEach items. */
export const OperatorTemplate = (what: string) =>
  z
    .string()
    .min(1)
    .refine(isOperatorTemplate, `${what} comes from vars or env only (operator values), never from an alert or a forEach item`);

export const IpcSpec = z
  .strictObject({
    /** The supervisor's `ipc.path` socket: `{{ vars.ipc_path }}`. */
    path: OperatorTemplate('the socket path'),
    /** `hello`, `state`, or `command.<kind>` (the wire method; the request's `command` field is derived from it). */
    method: z.enum(IPC_METHODS),
    /** The supervisor's `ipc.target_id` (`{{ vars.target_id }}`); commands are refused when it differs. */
    target_id: OperatorTemplate('target_id').optional(),
    /** The child a child command acts on; sent as `target.child_path = "/" + child`. Must be one path segment. */
    child: z.string().min(1).optional(),
    /** Sent as `confirmed`. Must be written `true` for remove_child, add_child and shutdown_tree. */
    confirmed: z.boolean().optional(),
    /** `command.add_child` only: the child's YAML `ChildDeclaration` (`{{ vars.child_manifest }}`). */
    manifest: z.string().min(1).optional(),
    /** Words added to the command's reason, after "<procedure> step <step>". */
    reason: z.string().min(1).optional(),
    /** Default: the timeout the supervisor advertises for the command (30 s), 5 s for hello and state. */
    timeout: DurationText.optional(),
  })
  .superRefine((s, ctx) => {
    const kind = commandKindOf(s.method);
    const issue = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
    if (kind === undefined) {
      for (const k of ['child', 'confirmed', 'manifest', 'reason'] as const)
        if (s[k] !== undefined) issue(k, `"${k}" is for commands, not ${s.method}`);
      return;
    }
    if (s.target_id === undefined) issue('target_id', `${s.method} needs target_id (the supervisor's ipc.target_id)`);
    if (CONFIRMATION_REQUIRED.has(kind) && s.confirmed !== true)
      issue('confirmed', `${s.method} is refused by the supervisor without confirmation: write confirmed: true in the rule`);
    const takesChild = kind !== 'add_child' && kind !== 'shutdown_tree';
    if (takesChild && s.child === undefined) issue('child', `${s.method} needs child (the child id)`);
    if (!takesChild && s.child !== undefined) issue('child', `${s.method} takes no child`);
    if (kind === 'add_child' && s.manifest === undefined) issue('manifest', 'command.add_child needs manifest (YAML)');
    if (kind !== 'add_child' && s.manifest !== undefined) issue('manifest', 'manifest is for command.add_child only');
  });
export type IpcSpec = z.infer<typeof IpcSpec>;

/**
 * Speaks rust-tokio-supervisor's dashboard IPC (`dashboard-ipc.v1`) through the one client
 * (`src/supervisor/ipc-client.ts`): asks `hello` or `state`, or sends a `command.*` with every required field
 * filled from the run: `command_id` from the run id and step (and child), `reason` from the procedure and step,
 * `requested_by: remediator`, `requested_at_unix_nanos` now, `target_id` and `confirmed` from the rule,
 * `target.child_path = "/" + child`.
 *
 * Result: `succeeded` iff the answer is `ok: true` and, for a command, `result.result.accepted: true`.
 * `body` is the answer (numbers above 2^53 as decimal strings), `output` the answer line (capped), `detail`
 * `{method, timedOut, elapsedMs, errorCode?, accepted?, commandId?}`. No answer within the timeout is a result,
 * `failed` with `detail.timedOut: true` (P1-004's starvation signal), not an error. No socket or nobody
 * listening throws a retryable ActionError; an unreadable answer a non-retryable one.
 *
 * Note: the supervisor accepts a quarantine or remove of an unknown child id (it makes a placeholder slot), so a
 * rule checks that the child exists (an `ipc` check on `state`) before acting on it.
 */
export const ipc: Action<IpcSpec> = {
  kind: 'ipc',
  spec: IpcSpec,
  describe(s) {
    const parts = [`IPC ${s.method}`];
    if (s.child !== undefined) parts.push(`child ${s.child}`);
    if (s.confirmed === true) parts.push('(confirmed)');
    parts.push(`on ${s.path}`);
    if (s.timeout !== undefined) parts.push(`timeout ${s.timeout}`);
    return parts.join(' ');
  },
  // A command without its own timeout waits as long as hello advertises (known only at run time): STEP_TIMEOUT bounds it.
  timeoutMs: (s) =>
    s.timeout !== undefined ? parseDuration(s.timeout) : commandKindOf(s.method) === undefined ? QUERY_TIMEOUT_MS : undefined,
  render: (s, r) => ({
    ...s,
    path: r(s.path, 'path'),
    ...(s.target_id !== undefined ? { target_id: r(s.target_id, 'data') } : {}),
    // One path segment: an alert's child label may not hold "/" nor be "." or "..".
    ...(s.child !== undefined ? { child: r(s.child, 'path') } : {}),
    ...(s.manifest !== undefined ? { manifest: r(s.manifest, 'data') } : {}),
    ...(s.reason !== undefined ? { reason: r(s.reason, 'text') } : {}),
  }),
  async run(s, ctx) {
    ctx.signal.throwIfAborted();
    const client = createIpcClient({ path: s.path });
    const request = await prepareIpcRequest(s, ctx, client);
    if ('notSent' in request) {
      return {
        status: 'failed',
        output: `not sent: ${request.notSent}`,
        detail: { method: s.method, timedOut: false, sent: false },
      };
    }
    if (request.commandId !== undefined) {
      ctx.log.info(
        { method: s.method, commandId: request.commandId, child: s.child ?? null, timeoutMs: request.timeoutMs },
        'sending IPC command',
      );
    }
    const outcome = await client.call(s.method, request.params, { signal: ctx.signal, timeoutMs: request.timeoutMs });
    const result = toResult(s.method, outcome, request.timeoutMs);
    if (request.commandId !== undefined) result.detail = { ...result.detail, commandId: request.commandId };
    return result;
  },
};

export type PreparedIpcRequest = { params: unknown; timeoutMs: number; commandId?: string } | { notSent: string };

/**
 * The request the `ipc` action sends for a (rendered) spec: its params and timeout, the command's fields filled
 * from the run. `{ notSent }` when the spec cannot be sent as it stands (a child id that is not one segment).
 * For a command without its own timeout this asks `hello` for the advertised one, and throws a retryable
 * ActionError when there is no socket or nobody listens. Shared with `remediator ipc`.
 */
export async function prepareIpcRequest(s: IpcSpec, ctx: ActionContext, client: IpcClient): Promise<PreparedIpcRequest> {
  const kind = commandKindOf(s.method);
  const own = s.timeout !== undefined ? parseDuration(s.timeout) : undefined;
  if (kind === undefined) {
    const params = s.method === 'state' && s.target_id !== undefined ? stateParams(s.target_id) : {};
    return { params, timeoutMs: own ?? QUERY_TIMEOUT_MS };
  }
  if (s.child !== undefined && !isChildId(s.child))
    return { notSent: `child ${JSON.stringify(s.child)} is not one path segment` };
  const input = commandInput(kind, s, ctx);
  let params;
  try {
    params = commandParams(kind, input);
  } catch (err) {
    if (!(err instanceof IpcRequestError)) throw err;
    return { notSent: err.message };
  }
  return { params, timeoutMs: own ?? (await advertised(client, kind, ctx)), commandId: input.commandId };
}

/**
 * The command's fields from the run. `command_id` is `<procedure>-<run id>-<step>[-<child>][-a<attempt>]` (unique per
 * command the run sends, and the same for a repeated takeover of the same attempt), `reason`
 * `<procedure> step <step>[: <rule's reason>]`.
 */
function commandInput(kind: CommandKind, s: IpcSpec, ctx: ActionContext) {
  const run = ctx.run;
  const base = run !== undefined ? `${run.procedure}-${run.id}-${run.step}` : `remediator-${randomUUID()}`;
  const commandId = [
    base,
    ...(s.child !== undefined ? [s.child] : []),
    ...(run && run.attempt > 1 ? [`a${run.attempt}`] : []),
  ].join('-');
  const origin = run !== undefined ? `${run.procedure} step ${run.step}` : 'remediator';
  return {
    commandId,
    targetId: s.target_id!,
    ...(s.child !== undefined ? { childId: s.child } : {}),
    ...(kind === 'add_child' ? { childManifest: s.manifest! } : {}),
    reason: s.reason !== undefined ? `${origin}: ${s.reason}` : origin,
    requestedBy: 'remediator',
    confirmed: s.confirmed ?? false,
  };
}

/** The command timeout the supervisor advertises in its hello answer; 30 s when it does not say. */
async function advertised(client: IpcClient, kind: CommandKind, ctx: ActionContext): Promise<number> {
  const hello = await client.call('hello', {}, { signal: ctx.signal, timeoutMs: HELLO_TIMEOUT_MS });
  if (hello.status === 'failed' && hello.error.kind === 'connect') throw connectFailure(hello.error);
  if (hello.status !== 'answered' || !hello.response.ok) return COMMAND_TIMEOUT_MS;
  try {
    return advertisedTimeoutMs(readHello(hello.response).registration, kind) ?? COMMAND_TIMEOUT_MS;
  } catch {
    return COMMAND_TIMEOUT_MS;
  }
}

function connectFailure(error: Extract<IpcOutcome, { status: 'failed' }>['error']): ActionError {
  return new ActionError(`ipc: ${error.message}`, error.retryable, { cause: error });
}

export function toResult(method: string, outcome: IpcOutcome, timeoutMs: number): ActionResult {
  if (outcome.status === 'timed_out') {
    return {
      status: 'failed',
      output: `no answer to ${method} within ${formatDuration(timeoutMs)}`,
      detail: { method, timedOut: true, elapsedMs: Math.round(outcome.elapsedMs) },
    };
  }
  if (outcome.status === 'failed') throw connectFailure(outcome.error);
  const { response, line } = outcome;
  const command = commandKindOf(method) !== undefined;
  const accepted = command ? isAccepted(response) : undefined;
  const errorCode = response.error?.code ?? commandErrorCode(response.result);
  return {
    status: response.ok && accepted !== false ? 'succeeded' : 'failed',
    output: capOutput(line),
    body: response,
    detail: {
      method,
      timedOut: false,
      elapsedMs: Math.round(outcome.elapsedMs),
      ...(accepted !== undefined ? { accepted } : {}),
      ...(errorCode !== undefined ? { errorCode } : {}),
    },
  };
}

/** `result.result.error.code` of a command answered `accepted: false` (e.g. command_failed). */
function commandErrorCode(result: unknown): string | undefined {
  const code = (result as { result?: { error?: { code?: unknown } | null } } | undefined)?.result?.error?.code;
  return typeof code === 'string' ? code : undefined;
}
