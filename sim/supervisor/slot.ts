/**
 * One child's runtime slot, as the control loop keeps it (rust-supervisor `src/runtime/child_slot.rs`), and its
 * projection to the IPC record (`to_record` + `DashboardChildRuntimeRecord`, dashboard/model.rs:631-692).
 *
 * Faithful details that matter to a reader of `state`:
 * - between attempts and after the last one, generation/attempt/status are null (`clear_instance`);
 * - `restart_limit` is the default (60 s, limit = remaining = u32::MAX, updated_at 0) until the first exit
 *   refreshes it; `exhausted` is `used >= limit`, while restarts stop only when `used > limit`;
 * - a heartbeat is "seen" whenever the slot is observed while the attempt lives, so `heartbeat_stale` turns
 *   true only 5 s after the attempt ended (`observe_liveness`, `DEFAULT_HEARTBEAT_TIMEOUT_SECS`).
 */
import type { Task } from './tasks.js';

export type Operation = 'active' | 'paused' | 'quarantined' | 'removed';
export type AttemptStatus = 'starting' | 'running' | 'ready' | 'cancelling' | 'stopped';
export type StopState = 'idle' | 'no_active_attempt' | 'cancel_delivered' | 'completed' | 'failed';
export type FencePhase = 'open' | 'waiting_for_old_stop' | 'aborting_old' | 'ready_to_start' | 'closed';

export const U32_MAX = 4294967295;
const HEARTBEAT_TIMEOUT_NS = 5_000_000_000n;

export interface RestartLimitState {
  windowMs: number;
  limit: number;
  used: number;
  remaining: number;
  exhausted: boolean;
  updatedAt: bigint;
}

export interface ControlFailure {
  phase: 'wait_completion';
  reason: string;
  recoverable: boolean;
}

export interface PendingRestart {
  oldGeneration: number;
  oldAttempt: number;
  targetGeneration: number;
}

export interface Liveness {
  lastHeartbeatAt: bigint | null;
  heartbeatStale: boolean;
  readiness: 'unreported' | 'ready' | 'not_ready';
}

export function defaultRestartLimit(): RestartLimitState {
  return { windowMs: 60_000, limit: U32_MAX, used: 0, remaining: U32_MAX, exhausted: false, updatedAt: 0n };
}

export class Slot {
  status: AttemptStatus = 'stopped';
  operation: Operation = 'active';
  generation: number | null = null;
  attempt: number | null = null;
  task: Task | null = null;
  cancelDelivered = false;
  stopState: StopState = 'no_active_attempt';
  stopDeadline: bigint | null = null;
  lastControlFailure: ControlFailure | null = null;
  restartLimit: RestartLimitState = defaultRestartLimit();
  fencePhase: FencePhase = 'open';
  pendingRestart: PendingRestart | null = null;
  lastHeartbeatAt: bigint | null = null;
  private failures: bigint[] = [];

  constructor(
    readonly childId: string,
    readonly path: string,
  ) {}

  hasActiveAttempt(): boolean {
    return this.attempt !== null && this.task !== null;
  }

  activate(generation: number, attempt: number, task: Task): void {
    Object.assign(this, {
      generation,
      attempt,
      status: 'running',
      task,
      cancelDelivered: false,
      stopState: 'idle',
      stopDeadline: null,
      lastControlFailure: null,
      lastHeartbeatAt: null,
      fencePhase: 'open',
    });
  }

  clearInstance(): void {
    Object.assign(this, {
      generation: null,
      attempt: null,
      status: 'stopped',
      task: null,
      cancelDelivered: false,
      stopDeadline: null,
      stopState: 'no_active_attempt',
    });
  }

  /** `ChildSlot::cancel`: deliver once; the attempt shows `cancelling` from then on. */
  cancel(): boolean {
    if (this.task === null || this.cancelDelivered) return false;
    this.task.cancel();
    this.cancelDelivered = true;
    this.status = 'cancelling';
    return true;
  }

  observeLiveness(now: bigint): Liveness {
    if (this.task?.heartbeated) this.lastHeartbeatAt = now;
    const readiness = this.task === null ? 'unreported' : 'ready';
    const stale = this.lastHeartbeatAt !== null && now - this.lastHeartbeatAt >= HEARTBEAT_TIMEOUT_NS;
    return { lastHeartbeatAt: this.lastHeartbeatAt, heartbeatStale: stale, readiness };
  }

  /** `refresh_restart_limit`: prune the window, count this exit if it is a failure, recompute. */
  refreshRestartLimit(windowMs: number, limit: number, countFailure: boolean, now: bigint): RestartLimitState {
    const windowNs = BigInt(windowMs) * 1_000_000n;
    this.failures = this.failures.filter((t) => now - t <= windowNs);
    if (countFailure) this.failures.push(now);
    const used = this.failures.length;
    const updatedAt = now <= this.restartLimit.updatedAt ? this.restartLimit.updatedAt + 1n : now;
    this.restartLimit = { windowMs, limit, used, remaining: Math.max(limit - used, 0), exhausted: used >= limit, updatedAt };
    return this.restartLimit;
  }
}

export function restartLimitJson(r: RestartLimitState) {
  return {
    window_millis: r.windowMs,
    limit: r.limit,
    used: r.used,
    remaining: r.remaining,
    exhausted: r.exhausted,
    updated_at_unix_nanos: r.updatedAt,
  };
}

export function livenessJson(l: Liveness) {
  return { last_heartbeat_at_unix_nanos: l.lastHeartbeatAt, heartbeat_stale: l.heartbeatStale, readiness: l.readiness };
}

export const MANAGED: Record<Operation, string> = {
  active: 'running',
  paused: 'paused',
  quarantined: 'quarantined',
  removed: 'removed',
};

/** `DashboardChildRuntimeRecord`, fields in declaration order. */
export function recordJson(slot: Slot, liveness: Liveness) {
  return {
    child_id: slot.childId,
    child_path: slot.path,
    generation: slot.generation,
    attempt: slot.attempt,
    status: slot.attempt !== null ? slot.status : null,
    operation: slot.operation,
    managed_child_state: MANAGED[slot.operation],
    liveness: livenessJson(liveness),
    restart_limit: restartLimitJson(slot.restartLimit),
    stop_state: slot.stopState,
    failure: slot.lastControlFailure,
    generation_fence_phase: slot.fencePhase,
    pending_restart: null,
  };
}
