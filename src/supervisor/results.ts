/**
 * Typed reads of a `dashboard-ipc.v1` answer. Each accessor checks the result's shape (`./schema.ts`) and throws
 * `IpcResultError` when the answer is not the one asked for (`ok: false`, another `type`, a changed shape), with
 * the server's error or the first schema problem in the message.
 */
import { z } from 'zod';
import {
  CommandResult,
  DashboardState,
  IpcResult,
  TargetProcessRegistration,
  type ChildRuntimeRecord,
  type DashboardError,
  type IpcResponse,
} from './schema.js';

export class IpcResultError extends Error {
  override readonly name = 'IpcResultError';
  constructor(
    message: string,
    /** The server's error when the answer was `ok: false`. */
    readonly error?: DashboardError,
  ) {
    super(message);
  }
}

export interface HelloResult {
  type: 'hello';
  protocol_version: string;
  registration: TargetProcessRegistration;
}
export interface StateResult {
  type: 'state';
  target_id: string;
  state: DashboardState;
}
export interface CommandAnswer {
  type: 'command_result';
  target_id: string;
  result: CommandResult;
}

/** The server's error of an `ok: false` answer; undefined for `ok: true`. */
export function responseError(response: IpcResponse): DashboardError | undefined {
  return response.ok ? undefined : response.error;
}

/**
 * Whether asking again could help, by the server's own word: `error.retryable` of an `ok: false` answer, or of
 * the command result's error when a command was answered `accepted: false`. False when nothing failed.
 */
export function isRetryableAnswer(response: IpcResponse): boolean {
  if (!response.ok) return response.error?.retryable ?? false;
  const result = IpcResult.safeParse(response.result);
  if (result.success && result.data.type === 'command_result') return result.data.result.error?.retryable ?? false;
  return false;
}

function readResult<T extends IpcResult['type']>(response: IpcResponse, type: T): Extract<IpcResult, { type: T }> {
  if (!response.ok) {
    const e = response.error;
    throw new IpcResultError(e ? `${e.code} at ${e.stage}: ${e.message}` : 'ok: false', e);
  }
  const parsed = IpcResult.safeParse(response.result);
  if (!parsed.success) throw new IpcResultError(`result does not match dashboard-ipc.v1: ${firstIssue(parsed.error)}`);
  if (parsed.data.type !== type) throw new IpcResultError(`expected a ${type} result, got ${parsed.data.type}`);
  return parsed.data as Extract<IpcResult, { type: T }>;
}

function firstIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  return issue === undefined ? 'unknown' : `${issue.path.join('.') || '(root)'}: ${issue.message}`;
}

export function readHello(response: IpcResponse): HelloResult {
  return readResult(response, 'hello');
}

export function readState(response: IpcResponse): StateResult {
  return readResult(response, 'state');
}

/** A command's result, whether or not the runtime accepted it (see `isAccepted`). */
export function readCommandResult(response: IpcResponse): CommandAnswer {
  return readResult(response, 'command_result');
}

/** A command succeeded: `ok: true` and `result.result.accepted: true` (and so `status: "completed"`). */
export function isAccepted(response: IpcResponse): boolean {
  if (!response.ok) return false;
  const parsed = IpcResult.safeParse(response.result);
  return parsed.success && parsed.data.type === 'command_result' && parsed.data.result.accepted;
}

/** The record of one child in a state answer, or undefined (a removed child with no running attempt has none). */
export function findChildRecord(state: DashboardState, childId: string): ChildRuntimeRecord | undefined {
  return state.child_runtime_records.find((r) => r.child_id === childId);
}

/** The child ids the supervisor declared (topology nodes of kind `child_task`), in declaration order. */
export function declaredChildIds(state: DashboardState): string[] {
  return state.topology.nodes.filter((n) => n.kind === 'child_task' && n.child_id !== null).map((n) => n.child_id as string);
}

/**
 * The time the supervisor says a command may take (`hello` → `registration.supported_commands[].timeout_seconds`,
 * 30 s for every command in rust-supervisor @3f92078, registration.rs:200-217), in milliseconds; undefined when the
 * registration does not list the command.
 */
export function advertisedTimeoutMs(registration: TargetProcessRegistration, kind: string): number | undefined {
  const seconds = registration.supported_commands.find((c) => c.name === kind)?.timeout_seconds;
  return seconds !== undefined && Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : undefined;
}
