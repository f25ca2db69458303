/**
 * `dashboard-ipc.v1`: the messages of rust-tokio-supervisor's dashboard IPC, as names, types and builders.
 *
 * Shapes follow the supervisor's source (developerworks/rust-supervisor @3f92078):
 * `src/dashboard/protocol.rs` (envelope, methods, `invalid-request`), `src/dashboard/error.rs`
 * (`DashboardError`), `src/dashboard/model.rs:997` (`ControlCommandRequest`: all eight fields required),
 * and the requests its one production client sends (developerworks/rust-supervisor-relay
 * `src/ipc_client.rs:68-325`). The answers' shapes are in `./schema.ts`.
 */
import { unixNanosNow } from './json.js';

export const PROTOCOL_VERSION = 'dashboard-ipc.v1';

/** The request_id the server writes when it could not parse the line or did not know the method. */
export const INVALID_REQUEST_ID = 'invalid-request';

/** `ControlCommandKind` (model.rs:969), snake_case on the wire. */
export const COMMAND_KINDS = [
  'restart_child',
  'pause_child',
  'resume_child',
  'quarantine_child',
  'remove_child',
  'add_child',
  'shutdown_tree',
] as const;
export type CommandKind = (typeof COMMAND_KINDS)[number];

/** Commands the server refuses without `confirmed: true` (ipc_server.rs `validate_command`). */
export const CONFIRMATION_REQUIRED: ReadonlySet<CommandKind> = new Set(['remove_child', 'add_child', 'shutdown_tree']);

export const QUERY_METHODS = ['hello', 'state', 'events.subscribe', 'logs.tail'] as const;
export type QueryMethod = (typeof QUERY_METHODS)[number];
export type CommandMethod = `command.${CommandKind}`;
/** Every method `IpcMethod::parse` accepts (protocol.rs:66); any other name gets `unsupported_method`. */
export type IpcMethod = QueryMethod | CommandMethod;

export const IPC_METHODS: readonly IpcMethod[] = [...QUERY_METHODS, ...COMMAND_KINDS.map((k) => commandMethod(k))];

export function commandMethod<K extends CommandKind>(kind: K): `command.${K}` {
  return `command.${kind}`;
}

/** The command kind a `command.*` method names, or undefined for anything else. */
export function commandKindOf(method: string): CommandKind | undefined {
  if (!method.startsWith('command.')) return undefined;
  const kind = method.slice('command.'.length);
  return (COMMAND_KINDS as readonly string[]).includes(kind) ? (kind as CommandKind) : undefined;
}

export function isIpcMethod(method: string): method is IpcMethod {
  return (IPC_METHODS as readonly string[]).includes(method);
}

/**
 * One request line: `IpcRequest {request_id, method, params}` (protocol.rs:19). Written with its keys sorted, as the
 * relay's `serde_json::json!` maps write them (`{"method":…,"params":…,"request_id":…}`).
 */
export interface IpcRequest {
  method: string;
  params: unknown;
  request_id: string;
}

/**
 * `params` of every `command.*` request, with the relay's extra `correlation_id` (the server ignores unknown
 * fields). Keys are in the order the relay writes them (serde_json's sorted maps), so our lines and the relay's
 * are byte-comparable.
 */
export interface CommandParams {
  command: CommandKind;
  command_id: string;
  confirmed: boolean;
  correlation_id: string | null;
  reason: string;
  /** Unix nanoseconds. A bigint, so that it is written as a bare JSON integer (serde `u128` refuses a string). */
  requested_at_unix_nanos: bigint;
  requested_by: string;
  target: { child_manifest?: string; child_path: string | null };
  target_id: string;
}

export interface CommandInput {
  /** The caller's idempotency id, echoed in the result (e.g. run id + step). */
  commandId: string;
  /** Must equal the supervisor's `ipc.target_id`, or the command is refused. */
  targetId: string;
  /** The child; sent as `target.child_path = "/" + childId`. Or give `childPath` itself. */
  childId?: string;
  childPath?: string;
  /** `add_child` only: the child's YAML `ChildDeclaration`. */
  childManifest?: string;
  /** Non-empty, or the server answers `validation_failed`. */
  reason: string;
  /** Non-empty; the server believes whatever it says. */
  requestedBy: string;
  /** Required explicitly: `remove_child`, `add_child` and `shutdown_tree` need `true`. */
  confirmed: boolean;
  /** Default: now. */
  requestedAtUnixNanos?: bigint;
  correlationId?: string | null;
}

/** A builder was given something the protocol cannot carry; nothing was sent. */
export class IpcRequestError extends Error {
  override readonly name = 'IpcRequestError';
}

/**
 * The params of a `command.<kind>` request, every required field filled. The `command` field is derived from
 * `kind`, and the method from the same kind (`commandMethod`), so method and command can never disagree (the
 * server runs `params.command` and never compares it with the method).
 */
export function commandParams(kind: CommandKind, input: CommandInput): CommandParams {
  if (!(COMMAND_KINDS as readonly string[]).includes(kind)) throw new IpcRequestError(`unknown command kind ${kind}`);
  for (const [field, value] of [
    ['commandId', input.commandId],
    ['targetId', input.targetId],
    ['reason', input.reason],
    ['requestedBy', input.requestedBy],
  ] as const) {
    if (typeof value !== 'string' || value.trim() === '') throw new IpcRequestError(`${field} must be a non-empty string`);
  }
  if (typeof input.confirmed !== 'boolean') throw new IpcRequestError('confirmed must be given as true or false');
  const childPath = childPathOf(kind, input);
  let target: CommandParams['target'] = { child_path: childPath };
  if (kind === 'add_child') {
    if (typeof input.childManifest !== 'string' || input.childManifest.trim() === '') {
      throw new IpcRequestError('add_child needs childManifest (a YAML child declaration)');
    }
    target = { child_manifest: input.childManifest, child_path: childPath };
  } else if (input.childManifest !== undefined) {
    throw new IpcRequestError(`childManifest is only for add_child, not ${kind}`);
  }
  return {
    command: kind,
    command_id: input.commandId,
    confirmed: input.confirmed,
    correlation_id: input.correlationId ?? null,
    reason: input.reason,
    requested_at_unix_nanos: input.requestedAtUnixNanos ?? unixNanosNow(),
    requested_by: input.requestedBy,
    target,
    target_id: input.targetId,
  };
}

function childPathOf(kind: CommandKind, input: CommandInput): string | null {
  if (input.childId !== undefined && input.childPath !== undefined) {
    throw new IpcRequestError('give childId or childPath, not both');
  }
  if (kind === 'shutdown_tree' || kind === 'add_child') {
    if (input.childId !== undefined || input.childPath !== undefined) {
      throw new IpcRequestError(`${kind} takes no child`);
    }
    return null;
  }
  if (input.childPath !== undefined) {
    if (!input.childPath.startsWith('/') || lastSegment(input.childPath) === undefined) {
      throw new IpcRequestError(`childPath must be absolute and name a child: ${JSON.stringify(input.childPath)}`);
    }
    return input.childPath;
  }
  const id = input.childId;
  if (id === undefined || !isChildId(id)) {
    throw new IpcRequestError(`${kind} needs a childId that is one path segment (got ${JSON.stringify(id)})`);
  }
  return `/${id}`;
}

/**
 * A child id that names exactly one child: one path segment, never `.`/`..`, no separator, control character or
 * surrounding space. The server takes the LAST segment of `target.child_path`, so an id holding `/` would
 * silently name another child; one with odd characters is refused here before anything is sent.
 */
export function isChildId(id: string): boolean {
  // eslint-disable-next-line no-control-regex -- control characters are what is refused
  return id !== '.' && id !== '..' && id.trim() === id && /^[^/\\\u0000-\u001f\u007f]{1,256}$/.test(id);
}

/** The child id the server takes from a path: its last non-empty segment (ipc_server.rs `child_id`). */
export function lastSegment(path: string): string | undefined {
  return path
    .split('/')
    .reverse()
    .find((s) => s !== '');
}

/** `hello`: the liveness probe that does not go through the control loop. */
export function helloParams(): Record<string, never> {
  return {};
}

/** `state`: the relay sends the target id (`ipc_client.rs:76-82`); the server ignores params. */
export function stateParams(targetId: string): { target_id: string } {
  return { target_id: targetId };
}
