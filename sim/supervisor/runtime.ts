/**
 * The supervisor runtime's state and what each control message does to it, after rust-supervisor
 * `src/runtime/control_loop.rs` (line numbers below). Every public method here runs as ONE control-loop message
 * (./control-loop.ts); nothing else touches the slots.
 *
 * Modelled: declared children started at boot; exits, windowed restart limit and backoff; stop-style commands
 * (pause/quarantine/remove) that deliver a cancel and finish when the task stops; stop deadlines; restart with the
 * generation fence; resume; add_child (stored only); shutdown_tree; placeholder slots for unknown ids.
 * Not modelled: the supervision pipeline's other gates (meltdown fuse, hot-loop detector, cold-start and token
 * budgets, runtime/pipeline.rs:234-236), which in the real program can stop a fast crash loop before
 * `restart_limit` is used up; restart scopes other than the failed child (OneForAll/RestForOne).
 */
import type { ChildConfig, SimConfig } from './config.js';
import { unixNanosNow } from '../../src/supervisor/json.js';
import { defaultRestartLimit, livenessJson, MANAGED, recordJson, restartLimitJson, Slot, type Operation } from './slot.js';
import { Task, type TaskExit, type TaskSpec } from './tasks.js';
import { parse as parseYaml } from 'yaml';

export type ShutdownPhase = 'Idle' | 'RequestStop' | 'GracefulDrain' | 'AbortStragglers' | 'Reconcile' | 'Completed';

interface Registered {
  config: ChildConfig;
  path: string;
  generation: number;
  attempt: number;
}

export interface RuntimeHooks {
  /** Post a message to the control loop (child exits, delayed spawns). */
  post(fn: () => void | Promise<void>): void;
  /** A block_forever task took its worker: the control loop starves from now on. */
  starve(): void;
  /** A task holds the runtime between its awaits (`ms` > 0) or stopped doing so (0): ./control-loop.ts `hog`. */
  hog(task: object, ms: number): void;
  /** Lifecycle strings (`handle.subscribe_events()`), printed if the host logs them. */
  event(text: string): void;
  /** The task spec a child runs with now (config plus injected faults). */
  taskSpec(childId: string): TaskSpec;
}

/** A runtime failure: becomes `accepted: false` + `command_failed` with this Display text. */
export class SupervisorError extends Error {
  override readonly name = 'SupervisorError';
}

export class Runtime {
  readonly slots = new Map<string, Slot>();
  readonly registry = new Map<string, Registered>();
  private readonly manifests: string[] = [];
  private readonly declared: ChildConfig[];
  shutdownPhase: ShutdownPhase = 'Idle';
  private shutdownReport: Record<string, unknown> | undefined;

  constructor(
    private readonly config: SimConfig,
    private readonly hooks: RuntimeHooks,
  ) {
    this.declared = [...config.children];
    for (const child of config.children) {
      this.registry.set(child.name, { config: child, path: `/${child.name}`, generation: 0, attempt: 1 });
      this.slots.set(child.name, new Slot(child.name, `/${child.name}`));
    }
  }

  now(): bigint {
    return unixNanosNow();
  }

  /** start_declared_children (control_loop.rs:211). */
  startDeclared(): void {
    for (const child of this.declared) this.spawnChildStart(child.name, false, 0);
  }

  // ------------------------------------------------------------------ spawning and exits

  private spawnChildStart(childId: string, isRestart: boolean, delayMs: number): void {
    if (this.shutdownPhase !== 'Idle') return;
    const slot = this.slots.get(childId);
    if (slot !== undefined) {
      if (slot.pendingRestart !== null) return;
      if (['waiting_for_old_stop', 'aborting_old', 'closed', 'ready_to_start'].includes(slot.fencePhase)) return;
    }
    const reg = this.registry.get(childId);
    if (reg === undefined) return;
    if (isRestart) {
      reg.attempt += 1;
      reg.generation += 1;
    }
    if (slot !== undefined) slot.operation = 'active';
    const { generation, attempt } = reg;
    if (delayMs > 0) {
      setTimeout(() => {
        const task = this.startTask(childId, generation, attempt);
        this.hooks.post(() => this.attach(childId, generation, attempt, task));
      }, delayMs);
      return;
    }
    this.attach(childId, generation, attempt, this.startTask(childId, generation, attempt));
  }

  private startTask(childId: string, generation: number, attempt: number): Task {
    const key = {};
    return new Task(this.hooks.taskSpec(childId), {
      onExit: (exit) => this.hooks.post(() => this.handleChildExit(childId, generation, attempt, exit)),
      onBlock: () => this.hooks.starve(),
      onHog: (ms) => this.hooks.hog(key, ms),
    });
  }

  private attach(childId: string, generation: number, attempt: number, task: Task): void {
    let slot = this.slots.get(childId);
    if (slot === undefined) {
      slot = new Slot(childId, this.registry.get(childId)?.path ?? `/${childId}`);
      this.slots.set(childId, slot);
    }
    slot.activate(generation, attempt, task);
  }

  /** handle_child_exit (control_loop.rs:374-711), without the pipeline's extra gates. */
  handleChildExit(childId: string, generation: number, attempt: number, exit: TaskExit): void {
    const slot = this.slots.get(childId);
    const wasActive = slot?.hasActiveAttempt() ?? false;
    const pending = slot?.pendingRestart;
    const matchesPending = pending != null && pending.oldGeneration === generation && pending.oldAttempt === attempt;
    const matchesActive = slot !== undefined && wasActive && slot.generation === generation && slot.attempt === attempt;
    const countFailure = slot?.operation === 'active' && ['failed', 'panicked', 'timed_out'].includes(exit);
    const lateReport = !wasActive && this.shutdownPhase === 'Completed';
    let releasedPending = null;
    if (slot !== undefined) {
      if (matchesPending) {
        if (slot.stopState === 'cancel_delivered') slot.stopState = 'completed';
        releasedPending = slot.pendingRestart;
        slot.pendingRestart = null;
        slot.clearInstance();
        slot.fencePhase = 'ready_to_start';
      } else if (matchesActive || lateReport || this.shutdownPhase !== 'Idle') {
        slot.clearInstance();
      } else {
        this.hooks.event(`child_exit:${childId}`);
        this.reconcileStopDeadlines();
        return; // a stale report, recorded for audit only
      }
    }
    const limit = slot === undefined ? undefined : this.refreshRestartLimit(slot, countFailure);
    this.hooks.event(`child_exit:${childId}`);
    if (releasedPending != null && slot !== undefined) {
      this.attach(
        childId,
        releasedPending.targetGeneration,
        this.bumpForPending(childId, releasedPending.targetGeneration),
        this.startTaskFor(childId),
      );
      this.reconcileStopDeadlines();
      return;
    }
    if (!this.shouldApplyAutomaticPolicy(childId)) {
      if (slot?.operation === 'removed') this.slots.delete(childId);
      this.reconcileStopDeadlines();
      return;
    }
    // Cancelled and successful exits of a running child: the pipeline stops there (SupervisedStop / DoNotRestart
    // for the sim's permanent workers only restarts failures).
    if (exit === 'cancelled' || exit === 'succeeded' || this.registry.get(childId) === undefined) {
      this.reconcileStopDeadlines();
      return;
    }
    if (limit !== undefined && limit.used > limit.limit) {
      this.hooks.event(`child_restart_limit_exhausted:${childId}`);
      this.reconcileStopDeadlines();
      return;
    }
    this.hooks.event(`restart_plan:${this.config.supervisor.strategy}:supervisor:${childId}`);
    this.spawnChildStart(childId, true, this.backoffMs(childId));
    this.reconcileStopDeadlines();
  }

  private startTaskFor(childId: string): Task {
    const reg = this.registry.get(childId) as Registered;
    return this.startTask(childId, reg.generation, reg.attempt);
  }

  /** spawn_pending_restart_target (control_loop.rs:2191-2230): generation = target, attempt + 1. */
  private bumpForPending(childId: string, targetGeneration: number): number {
    const reg = this.registry.get(childId) as Registered;
    reg.generation = targetGeneration;
    reg.attempt += 1;
    return reg.attempt;
  }

  /** BackoffPolicy::delay_for_child_start_count without jitter: initial * 2^(attempt-1), capped at max. */
  private backoffMs(childId: string): number {
    const attempt = this.registry.get(childId)?.attempt ?? 1;
    const { initial_backoff_ms, max_backoff_ms } = this.config.policy;
    return Math.min(initial_backoff_ms * 2 ** Math.min(attempt - 1, 32), max_backoff_ms);
  }

  private refreshRestartLimit(slot: Slot, countFailure: boolean) {
    const { child_restart_limit, child_restart_window_ms } = this.config.policy;
    return slot.refreshRestartLimit(child_restart_window_ms, child_restart_limit, countFailure, this.now());
  }

  private shouldApplyAutomaticPolicy(childId: string): boolean {
    if (this.shutdownPhase !== 'Idle') return false;
    const op = this.slots.get(childId)?.operation;
    return !(op === 'paused' || op === 'quarantined' || op === 'removed');
  }

  /** reconcile_stop_deadlines (control_loop.rs:2308-2440): run at every control message. */
  reconcileStopDeadlines(): void {
    const now = this.now();
    for (const slot of this.slots.values()) {
      if (slot.pendingRestart !== null) {
        if (slot.fencePhase === 'waiting_for_old_stop' && slot.stopState === 'cancel_delivered' && slot.hasActiveAttempt()) {
          if (slot.stopDeadline !== null && now >= slot.stopDeadline && slot.task !== null) {
            slot.task.abort();
            slot.fencePhase = 'aborting_old';
          }
        }
        continue;
      }
      if (slot.fencePhase === 'waiting_for_old_stop' || slot.fencePhase === 'aborting_old') continue;
      if (slot.stopState !== 'cancel_delivered' || slot.stopDeadline === null) continue;
      if (slot.stopDeadline > now || !slot.hasActiveAttempt()) continue;
      slot.stopState = 'failed';
      slot.lastControlFailure = {
        phase: 'wait_completion',
        reason: 'child did not complete before stop deadline',
        recoverable: true,
      };
    }
  }

  private placeholder(childId: string): Slot {
    let slot = this.slots.get(childId);
    if (slot === undefined) {
      slot = new Slot(childId, this.registry.get(childId)?.path ?? `/${childId}`);
      this.slots.set(childId, slot);
    }
    return slot;
  }

  private stopDeadline(): bigint {
    return this.now() + BigInt(this.config.shutdown.graceful_timeout_ms) * 1_000_000n;
  }

  // ------------------------------------------------------------------ commands (execute_control, :267-368)

  private outcome(slot: Slot, before: Operation, cancelDelivered: boolean, idempotent: boolean, fence: unknown = null) {
    return {
      child_id: slot.childId,
      attempt: slot.attempt,
      generation: slot.generation,
      operation_before: before,
      operation_after: slot.operation,
      managed_child_state_before: MANAGED[before],
      managed_child_state_after: MANAGED[slot.operation],
      status: slot.attempt !== null ? slot.status : null,
      cancel_delivered: cancelDelivered,
      stop_state: slot.stopState,
      restart_limit: restartLimitJson(slot.restartLimit),
      liveness: livenessJson(slot.observeLiveness(this.now())),
      idempotent,
      failure: slot.lastControlFailure,
      generation_fence: fence,
    };
  }

  /** execute_stop_child_control + apply_stop_control_to_runtime_state (:1270-1385, :2910-3005). */
  stopChild(childId: string, target: 'paused' | 'quarantined' | 'removed') {
    this.reconcileStopDeadlines();
    const slot = this.placeholder(childId);
    const before = slot.operation;
    const hadActive = slot.hasActiveAttempt();
    const alreadyCancelled = hadActive && before === target && slot.cancelDelivered;
    const idempotent = hadActive ? alreadyCancelled : before === target && target !== 'removed';
    if (before !== target) {
      slot.operation = target;
      this.hooks.event(`child_control_operation_changed:${childId}:${pascal(before)}:${pascal(target)}`);
    }
    let cancelDelivered = false;
    if (hadActive && !alreadyCancelled) {
      cancelDelivered = slot.cancel();
      if (cancelDelivered) {
        slot.stopState = 'cancel_delivered';
        slot.stopDeadline = this.stopDeadline();
        this.hooks.event(
          `child_control_cancel_delivered:${childId}:${target === 'paused' ? 'pause' : target === 'removed' ? 'remove' : 'quarantine'}_child`,
        );
      }
    } else if (!hadActive) {
      slot.stopState = 'no_active_attempt';
    }
    const outcome = this.outcome(slot, before, cancelDelivered, idempotent);
    if (target === 'removed' && !hadActive) {
      this.slots.delete(childId);
      this.hooks.event(`child_runtime_state_removed:${childId}`);
    }
    return { type: 'child_control', outcome };
  }

  /** set_child_state (:1211-1255): resume only flips the operation back; it starts nothing. */
  resumeChild(childId: string) {
    this.reconcileStopDeadlines();
    const slot = this.placeholder(childId);
    const before = slot.operation;
    slot.operation = 'active';
    const outcome = this.outcome(slot, before, false, before === 'active');
    outcome.status = slot.status; // Some(runtime_state.status) even without an attempt
    if (!slot.hasActiveAttempt()) outcome.stop_state = 'no_active_attempt';
    return { type: 'child_control', outcome };
  }

  /** execute_restart_child_control (:1735-1990). */
  restartChild(childId: string) {
    this.reconcileStopDeadlines();
    if (!this.registry.has(childId)) {
      const conflict = { phase: 'wait_completion', reason: 'unknown child', recoverable: false };
      return {
        type: 'child_control',
        outcome: {
          child_id: childId,
          attempt: null,
          generation: null,
          operation_before: 'active',
          operation_after: 'active',
          managed_child_state_before: 'running',
          managed_child_state_after: 'running',
          status: null,
          cancel_delivered: false,
          stop_state: 'no_active_attempt',
          restart_limit: restartLimitJson(defaultRestartLimit()),
          liveness: livenessJson({ lastHeartbeatAt: null, heartbeatStale: false, readiness: 'unreported' }),
          idempotent: false,
          failure: conflict,
          generation_fence: fenceJson('rejected', null, null, null, false, false, conflict),
        },
      };
    }
    if (this.shutdownPhase !== 'Idle') throw new SupervisorError('invalid transition: supervisor is shutting down');
    const slot = this.placeholder(childId);
    const before = slot.operation;
    if (slot.pendingRestart !== null) {
      const p = slot.pendingRestart;
      const fence = fenceJson(
        'already_pending',
        p.oldGeneration,
        p.oldAttempt,
        p.targetGeneration,
        false,
        slot.fencePhase === 'aborting_old',
        null,
      );
      return { type: 'child_control', outcome: this.outcome(slot, before, false, false, fence) };
    }
    if (!slot.hasActiveAttempt()) {
      this.spawnChildStart(childId, true, 0);
      const target = this.registry.get(childId)?.generation ?? null;
      return {
        type: 'child_control',
        outcome: this.outcome(
          slot,
          before,
          false,
          false,
          fenceJson('started_immediately', null, null, target, false, false, null),
        ),
      };
    }
    const oldGeneration = slot.generation as number;
    const oldAttempt = slot.attempt as number;
    const cancelDelivered = slot.cancel();
    slot.stopDeadline = this.stopDeadline();
    if (cancelDelivered) slot.stopState = 'cancel_delivered';
    slot.pendingRestart = { oldGeneration, oldAttempt, targetGeneration: oldGeneration + 1 };
    slot.fencePhase = 'waiting_for_old_stop';
    const fence = fenceJson('queued_after_stop', oldGeneration, oldAttempt, oldGeneration + 1, cancelDelivered, false, null);
    return { type: 'child_control', outcome: this.outcome(slot, before, cancelDelivered, false, fence) };
  }

  /** AddChild (:282-327): the manifest is parsed, validated and stored; nothing starts. */
  addChild(manifest: string) {
    this.reconcileStopDeadlines();
    if (this.shutdownPhase !== 'Idle')
      throw new SupervisorError('configuration error: Cannot add child: supervisor is shutting down');
    let decl: unknown;
    try {
      decl = parseYaml(manifest);
    } catch (err) {
      throw new SupervisorError(`configuration error: Failed to parse child manifest: ${(err as Error).message.split('\n')[0]}`);
    }
    const name = (decl as { name?: unknown } | null)?.name;
    if (typeof name !== 'string')
      throw new SupervisorError('configuration error: Failed to parse child manifest: missing field `name`');
    if (!/^[a-zA-Z_][a-zA-Z0-9_-]*$/.test(name)) {
      throw new SupervisorError(
        `configuration error: Child validation failed at name: Child name '${name}' contains invalid characters`,
      );
    }
    this.manifests.push(manifest);
    return { type: 'child_added', child_manifest: manifest };
  }

  /** build_current_state (:2146-2185): declared children in order, then other slots. */
  currentState() {
    this.reconcileStopDeadlines();
    const now = this.now();
    const records = [];
    for (const id of this.registry.keys()) {
      const slot = this.slots.get(id);
      if (slot !== undefined) records.push(recordJson(slot, slot.observeLiveness(now)));
    }
    for (const [id, slot] of this.slots) {
      if (!this.registry.has(id)) records.push(recordJson(slot, slot.observeLiveness(now)));
    }
    return {
      records,
      shutdownCompleted: this.shutdownPhase === 'Completed',
      childCount: this.registry.size + this.manifests.length,
    };
  }

  /** execute_shutdown (:771-840): the loop is busy until every child stopped or was given up on. */
  async shutdownTree(requestedBy: string, reason: string): Promise<Record<string, unknown>> {
    if (this.shutdownReport !== undefined) {
      return {
        cause: this.shutdownReport.cause,
        idempotent: true,
        phase: this.shutdownPhase,
        report: { ...this.shutdownReport, idempotent: true },
      };
    }
    const cause = { reason, requested_by: requestedBy };
    const started = this.now();
    const order = [...this.registry.keys()].reverse();
    this.advance('RequestStop');
    const exits = new Map<string, Promise<TaskExit>>();
    for (const id of order) {
      const slot = this.slots.get(id);
      if (slot === undefined || slot.operation === 'removed' || !slot.hasActiveAttempt() || slot.task === null) continue;
      exits.set(id, slot.task.exited);
      slot.cancel();
    }
    this.advance('GracefulDrain');
    const outcomes = new Map<string, Record<string, unknown>>();
    const deadline = Date.now() + this.config.shutdown.graceful_timeout_ms;
    for (const [id, exited] of exits) {
      const exit = await withTimeout(exited, deadline - Date.now());
      if (exit !== undefined)
        outcomes.set(id, this.shutdownOutcome(id, 'Graceful', 'GracefulDrain', exit, 'child completed during graceful drain'));
    }
    this.advance('AbortStragglers');
    for (const [id, exited] of exits) {
      if (outcomes.has(id)) continue;
      const slot = this.slots.get(id);
      const aborted = slot?.task?.abort() ?? false;
      const exit = aborted ? await withTimeout(exited, this.config.shutdown.abort_wait_ms) : undefined;
      outcomes.set(
        id,
        this.shutdownOutcome(
          id,
          exit === undefined ? 'AbortFailed' : 'Aborted',
          'AbortStragglers',
          exit,
          exit === undefined ? 'child did not stop after abort' : 'child aborted after graceful timeout',
        ),
      );
    }
    this.advance('Reconcile');
    for (const id of order) {
      if (!outcomes.has(id))
        outcomes.set(
          id,
          this.shutdownOutcome(
            id,
            'AlreadyExited',
            'Reconcile',
            undefined,
            'child had no active child_start_count during shutdown',
          ),
        );
    }
    this.advance('Completed');
    this.hooks.event(`shutdown_completed:${outcomes.size}`);
    const report = {
      cause,
      completed_at_unix_nanos: this.now(),
      idempotent: false,
      outcomes: order.map((id) => outcomes.get(id)),
      phase: 'Completed',
      reconcile: {
        journal_status: 'Recorded',
        metrics_status: 'Recorded',
        orphan_slots: [],
        registry_status: 'Cleaned',
        runtime_handle_status: 'Cleaned',
        socket_status: 'NotOwned',
        total_slots_checked: 0,
        verified_clean: true,
        warnings: [],
      },
      started_at_unix_nanos: started,
    };
    this.shutdownReport = report;
    return { cause, idempotent: false, phase: 'Completed', report };
  }

  private shutdownOutcome(id: string, status: string, phase: ShutdownPhase, exit: TaskExit | undefined, reason: string) {
    const slot = this.slots.get(id);
    const reg = this.registry.get(id) as Registered;
    if (slot !== undefined && exit !== undefined) slot.clearInstance();
    return {
      cancel_delivered: status !== 'AlreadyExited',
      child_id: { value: id },
      child_start_count: { value: reg.attempt },
      exit: exit === undefined ? null : rustExit(exit),
      generation: { value: reg.generation },
      path: { segments: [id] },
      phase,
      reason,
      status,
    };
  }

  private advance(to: ShutdownPhase): void {
    this.hooks.event(`shutdown_phase_changed:${this.shutdownPhase}:${to}`);
    this.shutdownPhase = to;
  }
}

function fenceJson(
  decision: string,
  oldGen: number | null,
  oldAttempt: number | null,
  target: number | null,
  cancel: boolean,
  abort: boolean,
  conflict: unknown,
) {
  return {
    decision,
    old_generation: oldGen,
    old_attempt: oldAttempt,
    target_generation: target,
    cancel_delivered: cancel,
    abort_requested: abort,
    conflict,
  };
}

function pascal(op: string): string {
  return op.charAt(0).toUpperCase() + op.slice(1);
}

/** TaskExit as serde writes it (externally tagged, no rename): unit variants as strings. */
function rustExit(exit: TaskExit): unknown {
  return {
    succeeded: 'Succeeded',
    cancelled: 'Cancelled',
    failed: { Failed: {} },
    panicked: { Panicked: 'task panicked' },
    timed_out: 'TimedOut',
  }[exit];
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  if (ms <= 0) return Promise.race([p, Promise.resolve(undefined)]);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(undefined), ms);
    void p.then((v) => {
      clearTimeout(t);
      resolve(v);
    });
  });
}
