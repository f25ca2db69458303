import type { RedisClient } from './connection.js';
import type { RedisKeys } from './keys.js';
import { script, type Script } from './scripts.js';

/**
 * Per-target coordination owned by the RUN (job id), not the process: a run resumed on another worker
 * after a crash still owns its target, and a dead worker's lease simply expires.
 */

/**
 * Lua: acquireLease(key, owner, ttl ms) takes or renews the lease; '' when `owner` holds it now, else the holder.
 * One definition for every script that takes a lease (this file's and queue/entry.ts's).
 */
export const LUA_ACQUIRE_LEASE = `
local function acquireLease(key, owner, ttl)
  local holder = redis.call('GET', key)
  if not holder then redis.call('SET', key, owner, 'PX', ttl) return '' end
  if holder == owner then redis.call('PEXPIRE', key, ttl) return '' end
  return holder
end
`;
// acquireLease-1: KEYS[1] lease; ARGV[1] owner run id, ARGV[2] ttl ms. Output: "" when acquired/renewed, else the owner.
const ACQUIRE_LEASE_1 = `${LUA_ACQUIRE_LEASE}return acquireLease(KEYS[1], ARGV[1], ARGV[2])`;
// releaseLease-1: KEYS[1] lease; ARGV[1] owner. Compare-and-delete.
const RELEASE_LEASE_1 = `
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`;
// takeBudget-1: KEYS[1] zset of runs in the window; ARGV: run id, now ms, window ms, max runs.
// Output: 1 allowed (idempotent for the same run), 0 exhausted.
const TAKE_BUDGET_1 = `
local now = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[3]))
if redis.call('ZSCORE', KEYS[1], ARGV[1]) then return 1 end
if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[4]) then
  redis.call('ZADD', KEYS[1], now, ARGV[1])
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return 1
end
return 0
`;

export class TargetLocks {
  private readonly acquireScript: Script;
  private readonly releaseScript: Script;
  private readonly budgetScript: Script;

  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    readonly leaseTtlMs: number,
  ) {
    this.acquireScript = script(redis, 'remediatorAcquireLease', ACQUIRE_LEASE_1);
    this.releaseScript = script(redis, 'remediatorReleaseLease', RELEASE_LEASE_1);
    this.budgetScript = script(redis, 'remediatorTakeBudget', TAKE_BUDGET_1);
  }

  /** Undefined when this run holds the target now; otherwise the run id that holds it. */
  async acquire(target: string, runId: string): Promise<string | undefined> {
    const owner = (await this.acquireScript(1, this.keys.lease(target), runId, String(this.leaseTtlMs))) as string;
    return owner === '' ? undefined : owner;
  }

  async release(target: string, runId: string): Promise<void> {
    await this.releaseScript(1, this.keys.lease(target), runId);
  }

  /** Counts this run against the procedure's budget for the target; false when the budget is spent. */
  async takeBudget(procedure: string, target: string, runId: string, runs: number, perMs: number): Promise<boolean> {
    const ok = await this.budgetScript(
      1,
      this.keys.budget(procedure, target),
      runId,
      String(Date.now()),
      String(perMs),
      String(runs),
    );
    return ok === 1;
  }

  /** True for the first exhausted run of a window: it escalates, later ones are recorded without repeating it. */
  async claimBudgetNotice(procedure: string, target: string, windowMs: number): Promise<boolean> {
    return (await this.redis.set(this.keys.budgetNotice(procedure, target), '1', 'PX', windowMs, 'NX')) === 'OK';
  }

  /** The run holding the target's lease now, if any (read only: the console's procedures page). */
  async leaseHolder(target: string): Promise<string | undefined> {
    return (await this.redis.get(this.keys.lease(target))) ?? undefined;
  }

  /** How many runs count against the budget in the current window (read only). */
  async budgetUsed(procedure: string, target: string, perMs: number): Promise<number> {
    return this.redis.zcount(this.keys.budget(procedure, target), Date.now() - perMs, '+inf');
  }

  /** Run ids counted in the window, oldest first (the history attached to a budget escalation). */
  async budgetHistory(procedure: string, target: string): Promise<string[]> {
    return this.redis.zrange(this.keys.budget(procedure, target), 0, -1);
  }
}
