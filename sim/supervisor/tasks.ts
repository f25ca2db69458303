/**
 * Child tasks: what a host's task factory would run, with the chaos fixtures' behaviours
 * (rust-supervisor tests/chaos/fixtures/child_spawner.rs `ChildBehavior`). A behaviour never shows as a field;
 * only its effects do (exits, `cancelling`, a stalled control loop).
 *
 * - normal: runs until cancelled, then exits `Cancelled`.
 * - panic_after: panics `panic_after_ms` after each start (std's message on stderr, thread `tokio-runtime-worker`),
 *   reported as `Panicked("task panicked")` (child_runner/runner.rs:179: the message is not captured).
 * - ignore_cancel: never looks at its cancellation token; only an abort (shutdown's abort stage) ends it.
 * - block_forever: a busy loop that never yields: it cannot be cancelled or aborted, and it starves the control
 *   loop for as long as the process lives (see ./control-loop.ts `stall`).
 *
 * Any behaviour but block_forever may also hog (`hogMs` > 0): the task does long stretches of blocking work between
 * its awaits, so the control loop wakes `hogMs` late while it runs (./control-loop.ts `hog`). It still reaches
 * its awaits, so a cancel stops it unless it ignores cancellation; when it ends, the loop turns at speed again.
 */
import type { Behavior } from './config.js';
import { printPanic } from './panic.js';

export type TaskExit = 'succeeded' | 'cancelled' | 'failed' | 'panicked' | 'timed_out';

export interface TaskSpec {
  behavior: Behavior;
  panicAfterMs: number;
  heartbeatMs: number;
  /** Blocking work between awaits: the control loop wakes this late while the task runs (0 = none). */
  hogMs: number;
  /** Where the child's panic is reported from, e.g. `src/tasks/ledger_sync.rs:31:13`. */
  panicLocation: string;
}

export interface TaskHooks {
  onExit(exit: TaskExit): void;
  /** A block_forever task took a worker thread for good. */
  onBlock(): void;
  /** The task holds the runtime between its awaits (`ms` > 0), or no longer does (0). */
  onHog(ms: number): void;
}

export class Task {
  heartbeated = false;
  private done = false;
  private readonly timers: NodeJS.Timeout[] = [];
  private settle!: (exit: TaskExit) => void;
  /** Resolves when the task ends (what the shutdown drain waits on, like `wait_for_report`). */
  readonly exited = new Promise<TaskExit>((resolve) => (this.settle = resolve));

  constructor(
    private spec: TaskSpec,
    private readonly hooks: TaskHooks,
  ) {
    this.begin();
  }

  private begin(): void {
    const { behavior } = this.spec;
    if (this.spec.heartbeatMs > 0 && behavior !== 'block_forever') {
      this.heartbeated = true; // TaskContext::heartbeat at start, then every heartbeatMs (only presence matters)
      this.timers.push(setInterval(() => (this.heartbeated = true), this.spec.heartbeatMs));
    }
    if (behavior === 'panic_after') this.timers.push(setTimeout(() => this.panic(), this.spec.panicAfterMs));
    if (behavior === 'block_forever') queueMicrotask(() => this.hooks.onBlock());
    else this.hooks.onHog(this.spec.hogMs);
  }

  /** A fault injected into a running attempt: from now on it behaves as `behavior`. */
  become(spec: TaskSpec): void {
    if (this.done || this.spec.behavior === 'block_forever') return;
    this.stopTimers();
    this.spec = spec;
    this.begin();
  }

  private panic(): void {
    printPanic('tokio-runtime-worker', this.spec.panicLocation, `injected panic after ${this.spec.panicAfterMs}ms`);
    this.exit('panicked');
  }

  cancel(): void {
    if (this.spec.behavior === 'normal' || this.spec.behavior === 'panic_after') {
      setImmediate(() => this.exit('cancelled'));
    }
  }

  /** AbortHandle::abort: ends anything that awaits; a busy loop never reaches an await. */
  abort(): boolean {
    if (this.spec.behavior === 'block_forever') return false;
    setImmediate(() => this.exit('cancelled'));
    return true;
  }

  private exit(exit: TaskExit): void {
    if (this.done) return;
    this.done = true;
    this.stopTimers();
    this.settle(exit);
    this.hooks.onExit(exit);
  }

  private stopTimers(): void {
    for (const t of this.timers.splice(0)) clearTimeout(t);
    this.hooks.onHog(0);
  }
}
