/**
 * The answers of `dashboard-ipc.v1` as zod schemas (types of the same name below each).
 *
 * Field names, nesting and enums are those of developerworks/rust-supervisor @3f92078:
 * `src/dashboard/protocol.rs:109-156` (IpcResult, IpcResponse), `src/dashboard/error.rs:14`,
 * `src/dashboard/model.rs` (TargetProcessRegistration :33, DashboardState :91, RuntimeState :201,
 * DashboardChildRuntimeRecord :631, DashboardChildControlResult :731, DashboardCommandResult :805,
 * ControlCommandResult :1018). Serde writes every `Option` as `null` there, except `result`/`error` of the
 * envelope, which are left out when absent.
 *
 * Another program's data, so objects are loose (unknown fields pass through) while enums are exact: an
 * unknown enum value means the protocol changed, and the caller should hear about it.
 * `*_unix_nanos` values are wire integers (`number`, or a decimal string when above 2^53: see `./json.ts`).
 */
import { z } from 'zod';

export const WireInteger = z.union([z.number().int(), z.string().regex(/^-?\d+$/)]);
export type WireInteger = z.infer<typeof WireInteger>;

export const DashboardError = z.looseObject({
  code: z.string(),
  stage: z.string(),
  target_id: z.string().nullable(),
  message: z.string(),
  retryable: z.boolean(),
});
export type DashboardError = z.infer<typeof DashboardError>;

export const SupportedCommand = z.looseObject({ name: z.string(), idempotent: z.boolean(), timeout_seconds: z.number() });
export const TargetProcessRegistration = z.looseObject({
  target_id: z.string(),
  display_name: z.string(),
  ipc_path: z.string(),
  lease_seconds: z.number(),
  supported_commands: z.array(SupportedCommand),
});
export type TargetProcessRegistration = z.infer<typeof TargetProcessRegistration>;

const SupervisorNode = z.looseObject({
  node_id: z.string(),
  child_id: z.string().nullable(),
  path: z.string(),
  name: z.string(),
  kind: z.enum(['root_supervisor', 'child_task']),
  tags: z.array(z.string()),
  criticality: z.enum(['critical', 'standard', 'best_effort']),
  state_summary: z.string(),
  diagnostics: z.record(z.string(), z.string()),
});
const SupervisorEdge = z.looseObject({
  edge_id: z.string(),
  source_path: z.string(),
  target_path: z.string(),
  kind: z.enum(['parent_child', 'dependency']),
  order: z.number(),
});

/** `RuntimeState`: the older row per child; the runtime overwrites it from the records (model.rs:885). */
export const RuntimeStateRow = z.looseObject({
  child_path: z.string(),
  lifecycle_state: z.string(),
  health: z.string(),
  readiness: z.string(),
  generation: z.number(),
  child_start_count: z.number(),
  restart_count: z.number(),
  last_failure: z.string().nullable(),
  last_policy_decision: z.string().nullable(),
  shutdown_state: z.string(),
});

export const AttemptStatus = z.enum(['starting', 'running', 'ready', 'cancelling', 'stopped']);
export const Operation = z.enum(['active', 'paused', 'quarantined', 'removed']);
export const ManagedChildState = z.enum(['running', 'paused', 'quarantined', 'removed']);
export const StopState = z.enum(['idle', 'no_active_attempt', 'cancel_delivered', 'completed', 'failed']);
export const Readiness = z.enum(['unreported', 'ready', 'not_ready']);
export const FencePhase = z.enum(['open', 'waiting_for_old_stop', 'aborting_old', 'ready_to_start', 'closed']);

export const Liveness = z.looseObject({
  last_heartbeat_at_unix_nanos: WireInteger.nullable(),
  heartbeat_stale: z.boolean(),
  readiness: Readiness,
});
export const RestartLimit = z.looseObject({
  window_millis: WireInteger,
  limit: z.number(),
  used: z.number(),
  remaining: z.number(),
  exhausted: z.boolean(),
  updated_at_unix_nanos: WireInteger,
});
export type RestartLimit = z.infer<typeof RestartLimit>;
export const ControlFailure = z.looseObject({
  phase: z.enum(['wait_completion']),
  reason: z.string(),
  recoverable: z.boolean(),
});

/** One child as the control loop sees it. `status: null` means no attempt is running (between attempts too). */
export const ChildRuntimeRecord = z.looseObject({
  child_id: z.string(),
  child_path: z.string(),
  generation: z.number().nullable(),
  attempt: z.number().nullable(),
  status: AttemptStatus.nullable(),
  operation: Operation,
  managed_child_state: ManagedChildState,
  liveness: Liveness,
  restart_limit: RestartLimit,
  stop_state: StopState,
  failure: ControlFailure.nullable(),
  generation_fence_phase: FencePhase,
  pending_restart: z
    .looseObject({ old_generation: z.number(), old_attempt: z.number(), target_generation: z.number() })
    .nullable(),
});
export type ChildRuntimeRecord = z.infer<typeof ChildRuntimeRecord>;

export const DashboardState = z.looseObject({
  target: z.looseObject({
    target_id: z.string(),
    display_name: z.string(),
    registration_state: z.enum(['active', 'rejected', 'expired']),
    connection_state: z.enum(['registered', 'connecting', 'connected', 'reconnecting', 'unavailable', 'expired']),
  }),
  topology: z.looseObject({
    root: SupervisorNode,
    nodes: z.array(SupervisorNode),
    edges: z.array(SupervisorEdge),
    declaration_order: z.array(z.string()),
  }),
  runtime_state: z.array(RuntimeStateRow),
  child_runtime_records: z.array(ChildRuntimeRecord),
  recent_events: z.array(z.unknown()),
  recent_logs: z.array(z.unknown()),
  dropped_event_count: z.number(),
  dropped_log_count: z.number(),
  config_version: z.string(),
  generated_at_unix_nanos: WireInteger,
  state_generation: z.number(),
});
export type DashboardState = z.infer<typeof DashboardState>;

const FenceOutcome = z.looseObject({
  decision: z.enum(['started_immediately', 'queued_after_stop', 'already_pending', 'blocked_by_shutdown', 'rejected']),
  old_generation: z.number().nullable(),
  old_attempt: z.number().nullable(),
  target_generation: z.number().nullable(),
  cancel_delivered: z.boolean(),
  abort_requested: z.boolean(),
  conflict: ControlFailure.nullable(),
});

/** What a child command did (`DashboardChildControlResult`). */
export const ChildControlOutcome = z.looseObject({
  child_id: z.string(),
  attempt: z.number().nullable(),
  generation: z.number().nullable(),
  operation_before: Operation,
  operation_after: Operation,
  managed_child_state_before: ManagedChildState,
  managed_child_state_after: ManagedChildState,
  status: AttemptStatus.nullable(),
  cancel_delivered: z.boolean(),
  stop_state: StopState,
  restart_limit: RestartLimit,
  liveness: Liveness,
  idempotent: z.boolean(),
  failure: ControlFailure.nullable(),
  generation_fence: FenceOutcome.nullable(),
});
export type ChildControlOutcome = z.infer<typeof ChildControlOutcome>;

/** `state_delta` of an accepted command (`DashboardCommandResult`, tagged by `type`). */
export const StateDelta = z.discriminatedUnion('type', [
  z.looseObject({ type: z.literal('child_control'), outcome: ChildControlOutcome }),
  z.looseObject({ type: z.literal('child_added'), child_manifest: z.string() }),
  z.looseObject({ type: z.literal('current_state'), state: z.unknown() }),
  z.looseObject({ type: z.literal('shutdown'), result: z.unknown() }),
]);
export type StateDelta = z.infer<typeof StateDelta>;

/** `ControlCommandResult`: `accepted: false` + `status: "failed"` + `error` when the runtime refused. */
export const CommandResult = z.looseObject({
  command_id: z.string(),
  target_id: z.string(),
  accepted: z.boolean(),
  status: z.string(),
  error: DashboardError.nullable(),
  state_delta: StateDelta.nullable(),
  completed_at_unix_nanos: WireInteger.nullable(),
});
export type CommandResult = z.infer<typeof CommandResult>;

export const IpcResult = z.discriminatedUnion('type', [
  z.looseObject({ type: z.literal('hello'), protocol_version: z.string(), registration: TargetProcessRegistration }),
  z.looseObject({ type: z.literal('state'), target_id: z.string(), state: DashboardState }),
  z.looseObject({ type: z.literal('subscription'), target_id: z.string(), subscription: z.enum(['events', 'logs']) }),
  z.looseObject({ type: z.literal('command_result'), target_id: z.string(), result: CommandResult }),
]);
export type IpcResult = z.infer<typeof IpcResult>;

/** The envelope only; `result` is checked by the accessor that reads it (`./results.ts`). */
export const IpcResponse = z.looseObject({
  request_id: z.string(),
  ok: z.boolean(),
  result: z.unknown().optional(),
  error: DashboardError.optional(),
});
export type IpcResponse = z.infer<typeof IpcResponse>;
