import type { RedisClient } from './connection.js';
import { canonicalTarget, type RedisKeys } from './keys.js';

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

// noteTarget-1: KEYS[1] zset of firing targets; ARGV: target, now ms, window ms. Output: distinct targets in the window.
const NOTE_TARGET_1 = `
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[2]) - tonumber(ARGV[3]))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return redis.call('ZCARD', KEYS[1])
`;

/**
 * The kill switch and the storm breaker, shared by every receiver and worker through Redis.
 * While paused, no automatic action runs: runs are recorded with the plan of what would have run.
 */
export class AutomationControl {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
  ) {}

  async state(): Promise<PauseState> {
    const raw = await this.redis.get(this.keys.paused);
    return raw === null ? { paused: false } : { paused: true, ...(JSON.parse(raw) as Omit<PauseState, 'paused'>) };
  }

  /** Pauses automation; false when it was paused already (the first reason stays). */
  async pause(reason: string, by: string): Promise<boolean> {
    const set = await this.redis.set(this.keys.paused, JSON.stringify({ reason, by, at: new Date().toISOString() }), 'NX');
    return set === 'OK';
  }

  async resume(): Promise<boolean> {
    return (await this.redis.del(this.keys.paused, this.keys.pausedNotice, this.keys.stormTargets)) > 0;
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
    return (await this.redis.eval(
      NOTE_TARGET_1,
      1,
      this.keys.stormTargets,
      canonicalTarget(target), // spellings of one target count once
      String(Date.now()),
      String(windowMs),
    )) as number;
  }
}
