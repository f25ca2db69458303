/**
 * The supervisor_* series of one scrape, on a registry made for that scrape (as mysqld_exporter builds a
 * registry per request): a series exists only when its value was measured in this scrape. A child that is no
 * longer in the `state` answer, or a `state` that did not answer, leaves no stale series behind.
 *
 * Labels. Prometheus attaches `job` and `instance` (the exporter's scrape address) to every series, and the
 * exporter runs beside the supervisor, so `instance` names the supervisor's host or pod and is there even when
 * the supervisor process is gone (then `supervisor_process_up 0` and `supervisor_ipc_up 0` carry it). The
 * exporter never writes `instance` or `job` itself (Prometheus would rename them `exported_*`). Per-child series
 * add `child_id`, one of the supervisor's declared children (a bounded set); one-hot series add the enum value.
 * `supervisor_target_info{target_id}` joins the supervisor's `ipc.target_id` to `instance` when a rule needs it.
 */
import { Gauge, Registry } from 'prom-client';
import { AttemptStatus, Operation, type ChildRuntimeRecord } from '../supervisor/schema.js';
import type { Measurement } from './collect.js';

/** `status` values of a child's attempt, plus `none` for `status: null` (no attempt running). */
export const ATTEMPT_STATUSES = [...AttemptStatus.options, 'none'] as const;
export const OPERATIONS = Operation.options;

/** Every supervisor_* series name with its help text (docs/supervisor.md lists the same). */
export const SERIES = {
  ipcUp: ['supervisor_ipc_up', '1 if the IPC socket answered hello within IPC_TIMEOUT (any well-formed answer), else 0.'],
  ipcSocketPresent: ['supervisor_ipc_socket_present', '1 if the supervisor ipc.path exists and is a socket (stat only), else 0.'],
  stateOk: [
    'supervisor_ipc_state_ok',
    '1 if state answered ok:true within IPC_TIMEOUT: the control loop turns. 0 on a timeout, an error or no socket.',
  ],
  stateDuration: [
    'supervisor_ipc_state_duration_seconds',
    'How long the state call of this scrape took (up to IPC_TIMEOUT when it timed out).',
  ],
  stateLastSuccess: [
    'supervisor_ipc_state_last_success_timestamp_seconds',
    'When state last answered ok:true to this exporter (Unix seconds); absent until it has once.',
  ],
  targetInfo: ['supervisor_target_info', "Constant 1 labelled with the supervisor's ipc.target_id (configured or answered)."],
  processUp: ['supervisor_process_up', '1 if a process named SUPERVISOR_PROCESS (/proc/<pid>/comm, exact) runs, else 0.'],
  processStart: [
    'supervisor_process_start_time_seconds',
    'Start time of the supervisor process (Unix seconds; the oldest match).',
  ],
  relayUp: ['supervisor_relay_process_up', '1 if a process whose command line matches RELAY_PROCESS_PATTERN runs, else 0.'],
  relayStart: [
    'supervisor_relay_process_start_time_seconds',
    'Start time of the relay process (Unix seconds; the oldest match).',
  ],
  relaySocket: [
    'supervisor_relay_registration_socket_present',
    '1 if RELAY_REGISTRATION_PATH exists and is a socket (stat only: never connected to), else 0.',
  ],
  childrenDeclared: [
    'supervisor_children_declared',
    'Children the supervisor declares (state topology nodes of kind child_task).',
  ],
  childOperation: ['supervisor_child_operation', "The child's control operation, one-hot (active|paused|quarantined|removed)."],
  childAttemptActive: [
    'supervisor_child_attempt_active',
    '1 if the child has a running attempt (record status is not null), else 0.',
  ],
  childAttemptStatus: ['supervisor_child_attempt_status', "The child's attempt status, one-hot; none when no attempt runs."],
  childRestartLimit: ['supervisor_child_restart_limit', 'Restarts the child may use in its window (restart_limit.limit).'],
  childRestartUsed: ['supervisor_child_restart_limit_used', 'Restarts used in the current window (restart_limit.used).'],
  childRestartRemaining: [
    'supervisor_child_restart_limit_remaining',
    'Restarts left in the current window (restart_limit.remaining).',
  ],
  childRestartExhausted: [
    'supervisor_child_restart_limit_exhausted',
    '1 if the restart limit is exhausted (restart_limit.exhausted): the runtime stops restarting the child.',
  ],
  childHeartbeatStale: [
    'supervisor_child_heartbeat_stale',
    "1 if the child's heartbeat is stale (liveness.heartbeat_stale), else 0.",
  ],
} as const satisfies Record<string, readonly [string, string]>;

export interface SeriesMemory {
  /** Unix seconds of the last ok:true state answer, if any. */
  lastGoodStateAt?: number;
}

/** A registry holding exactly this measurement's series. */
export function seriesRegistry(m: Measurement, memory: SeriesMemory = {}): Registry {
  const registry = new Registry();
  const gauge = <L extends string = never>([name, help]: readonly [string, string], labelNames: readonly L[] = []) =>
    new Gauge<L>({ name, help, labelNames, registers: [registry] });
  const bit = (b: boolean) => (b ? 1 : 0);

  gauge(SERIES.ipcUp).set(bit(m.hello.answered));
  gauge(SERIES.stateOk).set(bit(m.state.ok));
  gauge(SERIES.stateDuration).set(m.state.seconds);
  if (memory.lastGoodStateAt !== undefined) gauge(SERIES.stateLastSuccess).set(memory.lastGoodStateAt);
  if (m.ipcSocketPresent !== undefined) gauge(SERIES.ipcSocketPresent).set(bit(m.ipcSocketPresent));
  if (m.targetId !== undefined) gauge(SERIES.targetInfo, ['target_id']).set({ target_id: m.targetId }, 1);

  if (m.process !== undefined) {
    gauge(SERIES.processUp).set(bit(m.process.up));
    if (m.process.startTimeSeconds !== undefined) gauge(SERIES.processStart).set(m.process.startTimeSeconds);
  }
  if (m.relayProcess !== undefined) {
    gauge(SERIES.relayUp).set(bit(m.relayProcess.up));
    if (m.relayProcess.startTimeSeconds !== undefined) gauge(SERIES.relayStart).set(m.relayProcess.startTimeSeconds);
  }
  if (m.relayRegistrationPresent !== undefined) gauge(SERIES.relaySocket).set(bit(m.relayRegistrationPresent));

  const state = m.state.state;
  if (state !== undefined) {
    gauge(SERIES.childrenDeclared).set(state.topology.nodes.filter((n) => n.kind === 'child_task').length);
    writeChildren(state.child_runtime_records, gauge);
  }
  return registry;
}

type GaugeOf = <L extends string = never>(def: readonly [string, string], labelNames?: readonly L[]) => Gauge<L>;

function writeChildren(records: readonly ChildRuntimeRecord[], gauge: GaugeOf): void {
  const operation = gauge(SERIES.childOperation, ['child_id', 'operation']);
  const active = gauge(SERIES.childAttemptActive, ['child_id']);
  const status = gauge(SERIES.childAttemptStatus, ['child_id', 'status']);
  const limit = gauge(SERIES.childRestartLimit, ['child_id']);
  const used = gauge(SERIES.childRestartUsed, ['child_id']);
  const remaining = gauge(SERIES.childRestartRemaining, ['child_id']);
  const exhausted = gauge(SERIES.childRestartExhausted, ['child_id']);
  const stale = gauge(SERIES.childHeartbeatStale, ['child_id']);
  for (const r of records) {
    const child_id = r.child_id;
    for (const op of OPERATIONS) operation.set({ child_id, operation: op }, r.operation === op ? 1 : 0);
    active.set({ child_id }, r.status === null ? 0 : 1);
    for (const s of ATTEMPT_STATUSES) status.set({ child_id, status: s }, (r.status ?? 'none') === s ? 1 : 0);
    limit.set({ child_id }, r.restart_limit.limit);
    used.set({ child_id }, r.restart_limit.used);
    remaining.set({ child_id }, r.restart_limit.remaining);
    exhausted.set({ child_id }, r.restart_limit.exhausted ? 1 : 0);
    stale.set({ child_id }, r.liveness.heartbeat_stale ? 1 : 0);
  }
}
