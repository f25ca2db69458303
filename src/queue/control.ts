import type { RedisClient } from './connection.js';
import { canonicalTarget, type RedisKeys } from './keys.js';
import { script, type Script } from './scripts.js';

/** An operator action that belongs to no single run (pause, resume), kept in a capped list. */
export interface AuditEntry {
  action: 'pause' | 'resume';
  by: string;
  at: string;
  reason?: string;
}

export interface PauseState {
  paused: boolean;
  reason?: string;
  by?: string;
  at?: string;
}

/**
 * Lua: noteTarget(key, target, now ms, window ms) records a firing target in the storm breaker's zset and returns
 * how many distinct targets fired within the window. One definition for this file's script and queue/entry.ts's.
 */
export const LUA_NOTE_TARGET = `
local function noteTarget(key, target, now, window)
  redis.call('ZADD', key, now, target)
  redis.call('ZREMRANGEBYSCORE', key, '-inf', tonumber(now) - tonumber(window))
  redis.call('PEXPIRE', key, window)
  return redis.call('ZCARD', key)
end
`;
// noteTarget-1: KEYS[1] zset of firing targets; ARGV: target, now ms, window ms. Output: distinct targets in the window.
const NOTE_TARGET_1 = `${LUA_NOTE_TARGET}return noteTarget(KEYS[1], ARGV[1], ARGV[2], ARGV[3])`;

/**
 * PAUSED=true at start, until the pause is written to Redis: this process holds automation paused by itself
 * meanwhile, so a Redis that is not reachable at start cannot lose the kill switch (issue 9). Shared by the
 * process's controls (receiver and worker); written by `holdStartPause`.
 */
export class StartPause {
  private pending: boolean;
  constructor(paused: boolean) {
    this.pending = paused;
  }
  get held(): boolean {
    return this.pending;
  }
  /** Written to Redis, or lifted by a resume: from now on Redis alone says whether automation is paused. */
  settle(): void {
    this.pending = false;
  }
}

export const START_PAUSE_REASON = 'PAUSED=true at start';

/** The pause key's value as a state (null: not paused). */
export function pauseState(raw: string | null): PauseState {
  return raw === null ? { paused: false } : { paused: true, ...(JSON.parse(raw) as Omit<PauseState, 'paused'>) };
}

/**
 * The kill switch and the storm breaker, shared by every receiver and worker through Redis.
 * While paused, no automatic action runs: runs are recorded with the plan of what would have run.
 */
export class AutomationControl {
  private readonly noteTargetScript: Script;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly startPause?: StartPause,
  ) {
    this.noteTargetScript = script(redis, 'remediatorNoteTarget', NOTE_TARGET_1);
  }

  async state(): Promise<PauseState> {
    return this.heldAtStart() ?? pauseState(await this.redis.get(this.keys.paused));
  }

  /** The start pause this process holds until Redis has it (StartPause), if any: it wins over what Redis says. */
  heldAtStart(): PauseState | undefined {
    if (this.startPause?.held !== true) return undefined;
    return { paused: true, reason: `${START_PAUSE_REASON} (held by this process until Redis has it)`, by: 'config' };
  }

  /** Pauses automation; false when it was paused already (the first reason stays). */
  async pause(reason: string, by: string): Promise<boolean> {
    const set = await this.redis.set(this.keys.paused, JSON.stringify({ reason, by, at: new Date().toISOString() }), 'NX');
    return set === 'OK';
  }

  async resume(): Promise<boolean> {
    const held = this.startPause?.held === true;
    const deleted = await this.redis.del(this.keys.paused, this.keys.pausedNotice, this.keys.stormTargets);
    this.startPause?.settle(); // a resume also lifts a start pause not yet written
    return deleted > 0 || held;
  }

  /**
   * Writes PAUSED=true's pause to Redis, trying again every `retryMs` until it is there (or `stop()`): the start
   * pause is held in this process meanwhile (StartPause). Resolves once written, or when a resume lifted it first.
   */
  async holdStartPause(retryMs = 500, stopped: () => boolean = () => false): Promise<void> {
    while (this.startPause?.held === true && !stopped()) {
      try {
        await this.pause(START_PAUSE_REASON, 'config'); // false: paused already; either way Redis has a pause
        this.startPause.settle();
        return;
      } catch {
        await new Promise((r) => setTimeout(r, retryMs).unref());
      }
    }
  }

  async audit(entry: AuditEntry): Promise<void> {
    await this.redis.multi().lpush(this.keys.audit, JSON.stringify(entry)).ltrim(this.keys.audit, 0, 199).exec();
  }

  /** Newest first. */
  async recentAudit(limit = 20): Promise<AuditEntry[]> {
    return (await this.redis.lrange(this.keys.audit, 0, limit - 1)).map((l) => JSON.parse(l) as AuditEntry);
  }

  /** True exactly once per pause: whoever gets it sends the one escalation about the pause. */
  async claimPauseNotice(): Promise<boolean> {
    return (await this.redis.set(this.keys.pausedNotice, '1', 'NX')) === 'OK';
  }

  /** Records a firing target and returns how many distinct targets fired within the window. */
  async noteTarget(target: string, windowMs: number): Promise<number> {
    return (await this.noteTargetScript(
      1,
      this.keys.stormTargets,
      canonicalTarget(target), // spellings of one target count once
      String(Date.now()),
      String(windowMs),
    )) as number;
  }
}
