/**
 * Reading a request line the way rust-supervisor does (dashboard/protocol.rs:239-300): serde_json into
 * `IpcRequest {request_id: String, method: String, params: Value = null}`, then the method checked against the
 * known set; then, for commands, `ControlCommandRequest` decoded from `params`.
 *
 * Error texts are serde's. The exact ones produced here: a line that does not start a JSON value ("expected value
 * at line 1 column N"), missing fields (the first missing one in declaration order, "missing field `x`"),
 * wrong JSON types ("invalid type: string \"x\", expected a boolean"), unknown command kinds ("unknown variant").
 * Other malformed lines get the same code and stage with an approximate serde message.
 */
import { parseWireJson } from '../../src/supervisor/json.js';
import { COMMAND_KINDS, IPC_METHODS, type CommandKind } from '../../src/supervisor/protocol.js';

export interface DashboardError {
  code: string;
  stage: string;
  target_id: string | null;
  message: string;
  retryable: boolean;
}

export function dashboardError(
  code: string,
  stage: string,
  targetId: string | null,
  message: string,
  retryable = false,
): DashboardError {
  return { code, stage, target_id: targetId, message, retryable };
}

export interface ParsedRequest {
  request_id: string;
  method: string;
  params: unknown;
}

export type LineResult = { ok: true; request: ParsedRequest } | { ok: false; error: DashboardError };

const invalidJson = (msg: string): LineResult => ({
  ok: false,
  error: dashboardError('invalid_json', 'protocol_parse', null, `failed to parse IPC JSON request: ${msg}`),
});

/** parse_request_line. The caller answers a failure with request_id "invalid-request". */
export function parseRequestLine(line: string): LineResult {
  const trimmed = line.replace(/[\r\n\t ]+$/, '');
  let value: unknown;
  try {
    value = parseWireJson(trimmed);
  } catch {
    const first = trimmed.search(/\S/);
    const column = first === -1 ? trimmed.length : first + 1;
    if (first === -1) return invalidJson(`EOF while parsing a value at line 1 column ${column}`);
    // Exact for a line that does not start a JSON value; for a value broken further on serde names the spot
    // (e.g. "key must be a string at line 1 column 2"), which this does not reproduce.
    return invalidJson(`expected value at line 1 column ${column}`);
  }
  const end = `at line 1 column ${trimmed.length}`;
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return invalidJson(`invalid type: ${unexpected(value)}, expected struct IpcRequest ${end}`);
  }
  const obj = value as Record<string, unknown>;
  for (const field of ['request_id', 'method'] as const) {
    if (field in obj && typeof obj[field] !== 'string')
      return invalidJson(`invalid type: ${unexpected(obj[field])}, expected a string ${end}`);
  }
  for (const field of ['request_id', 'method'] as const) {
    if (!(field in obj)) return invalidJson(`missing field \`${field}\` ${end}`);
  }
  const method = obj.method as string;
  if (!(IPC_METHODS as readonly string[]).includes(method)) {
    return {
      ok: false,
      error: dashboardError('unsupported_method', 'protocol_parse', null, `unsupported dashboard IPC method ${method}`),
    };
  }
  return { ok: true, request: { request_id: obj.request_id as string, method, params: 'params' in obj ? obj.params : null } };
}

/** serde's `Unexpected` display. */
function unexpected(v: unknown): string {
  if (v === null) return 'null';
  if (typeof v === 'boolean') return `boolean \`${v}\``;
  if (typeof v === 'number') return Number.isInteger(v) ? `integer \`${v}\`` : `floating point \`${v}\``;
  if (typeof v === 'string') return `string ${JSON.stringify(v)}`;
  if (Array.isArray(v)) return 'sequence';
  return 'map';
}

export interface CommandRequest {
  command_id: string;
  target_id: string;
  command: CommandKind;
  target: { child_path: string | null; child_manifest: string | null };
  reason: string;
  requested_by: string;
  confirmed: boolean;
  requested_at_unix_nanos: bigint;
}

const U64_MAX = 18446744073709551615n;

/**
 * decode_command_params: `serde_json::from_value::<ControlCommandRequest>(params)`. A Value map iterates in key
 * order, type errors surface as each known key is met, and missing fields are reported last, first in declaration
 * order (model.rs:997-1014). Unknown fields (the relay's correlation_id) are ignored.
 */
export function decodeCommandParams(
  params: unknown,
): { ok: true; command: CommandRequest } | { ok: false; error: DashboardError } {
  const fail = (msg: string) => ({
    ok: false as const,
    error: dashboardError('invalid_command_params', 'protocol_parse', null, `failed to parse command params: ${msg}`),
  });
  if (params === null || typeof params !== 'object' || Array.isArray(params)) {
    return fail(`invalid type: ${unexpected(params)}, expected struct ControlCommandRequest`);
  }
  const p = params as Record<string, unknown>;
  const type = (key: string, v: unknown): string | undefined => {
    switch (key) {
      case 'command_id':
      case 'target_id':
      case 'reason':
      case 'requested_by':
        return typeof v === 'string' ? undefined : `invalid type: ${unexpected(v)}, expected a string`;
      case 'confirmed':
        return typeof v === 'boolean' ? undefined : `invalid type: ${unexpected(v)}, expected a boolean`;
      case 'command':
        if (typeof v !== 'string') return `invalid type: ${unexpected(v)}, expected a string`;
        return (COMMAND_KINDS as readonly string[]).includes(v)
          ? undefined
          : `unknown variant \`${v}\`, expected one of ${COMMAND_KINDS.map((k) => `\`${k}\``).join(', ')}`;
      case 'requested_at_unix_nanos': {
        if (typeof v === 'number' && Number.isInteger(v))
          return v < 0 ? `invalid value: integer \`${v}\`, expected u128` : undefined;
        if (typeof v === 'string' && /^\d+$/.test(v) && BigInt(v) <= U64_MAX) return undefined; // a big integer on the wire
        return `invalid type: ${unexpected(v)}, expected u128`;
      }
      case 'target': {
        if (v === null || typeof v !== 'object' || Array.isArray(v))
          return `invalid type: ${unexpected(v)}, expected struct ControlCommandTarget`;
        for (const k of ['child_manifest', 'child_path']) {
          const inner = (v as Record<string, unknown>)[k];
          if (inner !== undefined && inner !== null && typeof inner !== 'string')
            return `invalid type: ${unexpected(inner)}, expected a string`;
        }
        return undefined;
      }
      default:
        return undefined;
    }
  };
  for (const key of Object.keys(p).sort()) {
    const problem = type(key, p[key]);
    if (problem !== undefined) return fail(problem);
  }
  for (const field of [
    'command_id',
    'target_id',
    'command',
    'target',
    'reason',
    'requested_by',
    'confirmed',
    'requested_at_unix_nanos',
  ]) {
    if (!(field in p)) return fail(`missing field \`${field}\``);
  }
  const target = p.target as Record<string, unknown>;
  return {
    ok: true,
    command: {
      command_id: p.command_id as string,
      target_id: p.target_id as string,
      command: p.command as CommandKind,
      target: {
        child_path: (target.child_path as string | null) ?? null,
        child_manifest: (target.child_manifest as string | null) ?? null,
      },
      reason: p.reason as string,
      requested_by: p.requested_by as string,
      confirmed: p.confirmed as boolean,
      requested_at_unix_nanos: BigInt(p.requested_at_unix_nanos as number | string),
    },
  };
}
