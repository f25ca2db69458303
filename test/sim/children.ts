/**
 * The supervisor's simulated child tasks: a pure state machine driven by `tick(now)`, no timers, no I/O,
 * so unit tests can drive it with a fake clock.
 */

export type ChildState = 'running' | 'failed' | 'quarantined';
/** What the task is doing. `BlockForever` and `IgnoreCancel` stall the control loop (P1-004). */
export type ChildBehavior = 'Normal' | 'CrashLoop' | 'BlockForever' | 'IgnoreCancel';

export const CHILD_STATES: readonly ChildState[] = ['running', 'failed', 'quarantined'];

export interface ChildRecord {
  id: string;
  state: ChildState;
  behavior: ChildBehavior;
  restart_count: number;
  last_exit_reason: string | null;
  restart_budget: { tokens: number; capacity: number };
}

export interface ChildPolicy {
  restartBudget: number;
  budgetRefillSecs: number;
  crashIntervalMs: number;
  restartBackoffMs: number;
}

export type CommandResult = { result: 'Accepted' } | { result: 'Rejected'; reason: string };

/** Something worth a journal line. */
export type ChildEvent = { child: string; message: string };

interface Child {
  id: string;
  state: ChildState;
  behavior: ChildBehavior;
  restartCount: number;
  lastExitReason: string | null;
  /** Fractional tokens; reported floored. */
  tokens: number;
  /** When a crash-looping running child panics next. */
  nextCrashAt: number;
  /** When a failed child is due for restart. */
  restartAt: number;
  crashReason: string;
  /** Resolves the promise a blocked child holds the control loop on. */
  release: (() => void) | null;
  blocked: Promise<void> | null;
}

export class Children {
  private readonly children = new Map<string, Child>();
  private lastRefill: number;
  private nextId: number;

  constructor(
    count: number,
    private readonly policy: ChildPolicy,
    now: number,
  ) {
    this.lastRefill = now;
    this.nextId = count + 1;
    for (let i = 1; i <= count; i++) this.add(`child-${i}`);
  }

  private add(id: string): void {
    this.children.set(id, {
      id,
      state: 'running',
      behavior: 'Normal',
      restartCount: 0,
      lastExitReason: null,
      tokens: this.policy.restartBudget,
      nextCrashAt: Infinity,
      restartAt: Infinity,
      crashReason: '',
      release: null,
      blocked: null,
    });
  }

  /** The target: how many child specs the supervisor holds. Removing a spec lowers it. */
  get target(): number {
    return this.children.size;
  }

  ids(): string[] {
    return [...this.children.keys()];
  }

  counts(): Record<ChildState, number> {
    const c: Record<ChildState, number> = { running: 0, failed: 0, quarantined: 0 };
    for (const ch of this.children.values()) c[ch.state]++;
    return c;
  }

  records(): ChildRecord[] {
    return [...this.children.values()].map((c) => ({
      id: c.id,
      state: c.state,
      behavior: c.behavior,
      restart_count: c.restartCount,
      last_exit_reason: c.lastExitReason,
      restart_budget: { tokens: Math.floor(c.tokens), capacity: this.policy.restartBudget },
    }));
  }

  get(id: string): ChildRecord | undefined {
    return this.records().find((r) => r.id === id);
  }

  /** Advance the state machine to `now`. Returns the events worth journaling. */
  tick(now: number): ChildEvent[] {
    const events: ChildEvent[] = [];
    const refill = (now - this.lastRefill) / 1000 / this.policy.budgetRefillSecs;
    this.lastRefill = now;
    for (const c of this.children.values()) {
      c.tokens = Math.min(this.policy.restartBudget, c.tokens + refill);
      if (c.state === 'running' && c.behavior === 'CrashLoop' && now >= c.nextCrashAt) {
        c.state = 'failed';
        c.lastExitReason = `TaskExit::Panicked: ${c.crashReason}`;
        c.restartAt = now + this.policy.restartBackoffMs;
        events.push({ child: c.id, message: `child ${c.id} exited: ${c.lastExitReason}` });
      } else if (c.state === 'failed' && now >= c.restartAt) {
        if (c.tokens >= 1) {
          c.tokens -= 1;
          c.restartCount += 1;
          c.state = 'running';
          c.nextCrashAt = now + this.policy.crashIntervalMs;
          events.push({
            child: c.id,
            message: `child ${c.id} restarted (restart_count=${c.restartCount}, restart_budget.tokens=${Math.floor(c.tokens)})`,
          });
        } else {
          c.state = 'quarantined';
          events.push({
            child: c.id,
            message: `child ${c.id} restart budget exhausted (restart_budget.tokens=0); child quarantined automatically`,
          });
        }
      }
    }
    return events;
  }

  /**
   * What the control loop must wait for before its iteration completes: a promise per child that is
   * blocking (BlockForever / IgnoreCancel and not quarantined). Empty when nothing blocks.
   */
  blockers(): Promise<void>[] {
    const out: Promise<void>[] = [];
    for (const c of this.children.values()) if (c.blocked !== null) out.push(c.blocked);
    return out;
  }

  /** Fault injection: make `id` crash-loop (panic every crashIntervalMs, restart after restartBackoffMs). */
  crashLoop(id: string, now: number, reason?: string): CommandResult {
    const c = this.children.get(id);
    if (c === undefined) return { result: 'Rejected', reason: `no child with id "${id}"` };
    if (c.state === 'quarantined') return { result: 'Rejected', reason: `child "${id}" is quarantined` };
    this.unblock(c);
    c.behavior = 'CrashLoop';
    c.crashReason = reason ?? `simulated panic in ${id} (fault: crash-loop)`;
    if (c.state === 'running') c.nextCrashAt = now;
    return { result: 'Accepted' };
  }

  /** Fault injection: `id` blocks the control loop until it is quarantined (or, for BlockForever, removed). */
  block(id: string, behavior: 'BlockForever' | 'IgnoreCancel'): CommandResult {
    const c = this.children.get(id);
    if (c === undefined) return { result: 'Rejected', reason: `no child with id "${id}"` };
    if (c.state !== 'running') return { result: 'Rejected', reason: `child "${id}" is ${c.state}, not running` };
    this.unblock(c);
    c.behavior = behavior;
    c.nextCrashAt = Infinity;
    c.blocked = new Promise<void>((res) => {
      c.release = res;
    });
    return { result: 'Accepted' };
  }

  /** Fault injection: back to normal behaviour (a failed or quarantined child is restarted fresh). */
  heal(id: string): CommandResult {
    const c = this.children.get(id);
    if (c === undefined) return { result: 'Rejected', reason: `no child with id "${id}"` };
    this.unblock(c);
    c.behavior = 'Normal';
    c.state = 'running';
    c.nextCrashAt = Infinity;
    c.restartAt = Infinity;
    c.tokens = this.policy.restartBudget;
    return { result: 'Accepted' };
  }

  /** handle.quarantine_child(): stop supervising it; a blocked task is abandoned, so the loop resumes. */
  quarantine(id: string): CommandResult {
    const c = this.children.get(id);
    if (c === undefined) return { result: 'Rejected', reason: `no child with id "${id}"` };
    this.unblock(c);
    c.state = 'quarantined';
    c.nextCrashAt = Infinity;
    c.restartAt = Infinity;
    return { result: 'Accepted' };
  }

  /**
   * handle.remove_child(): drop the child spec (target_count falls by one, so running == target again when
   * every other child runs). With `replace`, a fresh spec takes its place (new id) and the target stays.
   * An IgnoreCancel child cannot be cancelled: quarantine it first.
   */
  remove(id: string, replace = false): CommandResult & { replacement?: string } {
    const c = this.children.get(id);
    if (c === undefined) return { result: 'Rejected', reason: `no child with id "${id}"` };
    if (c.behavior === 'IgnoreCancel' && c.state !== 'quarantined') {
      return { result: 'Rejected', reason: `child "${id}" ignores cancellation (IgnoreCancel); quarantine it first` };
    }
    this.unblock(c);
    this.children.delete(id);
    if (replace) {
      const fresh = `child-${this.nextId++}`;
      this.add(fresh);
      return { result: 'Accepted', replacement: fresh };
    }
    return { result: 'Accepted' };
  }

  private unblock(c: Child): void {
    c.release?.();
    c.release = null;
    c.blocked = null;
  }
}
