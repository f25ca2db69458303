import type { RedisClient } from './connection.js';
import type { OperatorAction, RunRecord, RunState } from '../engine/record.js';
import type { RedisKeys } from './keys.js';

/**
 * Run records in Redis: one hash per run (`json`, `epoch`) plus a ZSET index by creation time.
 * Writes are fenced by epoch (BullMQ's attemptsStarted) in Lua, so a worker that lost its lock
 * cannot overwrite the checkpoint of the worker that took the run over.
 */

// KEYS[1] run hash, KEYS[2] index zset, KEYS[3] change counter; ARGV: json, epoch, ttl ms, id, score, mode ('create'|'save')
// Output: 1 written, 0 refused (exists for create / stale epoch for save)
const WRITE_RUN_3 = `
local exists = redis.call('EXISTS', KEYS[1]) == 1
if ARGV[6] == 'create' then
  if exists then return 0 end
else
  local stored = tonumber(redis.call('HGET', KEYS[1], 'epoch') or '-1')
  if stored ~= nil and tonumber(ARGV[2]) < stored then return 0 end
end
redis.call('HSET', KEYS[1], 'json', ARGV[1], 'epoch', ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
if ARGV[6] == 'create' then
  redis.call('ZADD', KEYS[2], ARGV[5], ARGV[4])
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', tonumber(ARGV[5]) - tonumber(ARGV[3]))
end
redis.call('INCR', KEYS[3])
return 1
`;

// appendAudit-2: KEYS[1] run hash, KEYS[2] change counter; ARGV[1] entry JSON, ARGV[2] field. Output: 1, or 0 when no run.
const APPEND_FIELD_2 = `
if redis.call('HEXISTS', KEYS[1], 'json') == 0 then return 0 end
local list = cjson.decode(redis.call('HGET', KEYS[1], ARGV[2]) or '[]')
table.insert(list, cjson.decode(ARGV[1]))
redis.call('HSET', KEYS[1], ARGV[2], cjson.encode(list))
redis.call('INCR', KEYS[2])
return 1
`;
// requestCancel-2: KEYS[1] run hash, KEYS[2] change counter; ARGV[1] request JSON. Output: 1 set, 0 no run, 2 already asked.
const REQUEST_CANCEL_2 = `
if redis.call('HEXISTS', KEYS[1], 'json') == 0 then return 0 end
if redis.call('HSETNX', KEYS[1], 'cancel', ARGV[1]) == 0 then return 2 end
redis.call('INCR', KEYS[2])
return 1
`;

export interface RunFilter {
  procedure?: string;
  target?: string;
  state?: RunState;
  limit?: number;
  /** Only runs received at or after this time (ms since the epoch). */
  since?: number;
  /** Paging: only runs received strictly before this time (ms); pass the last page's oldest `receivedAt`. */
  before?: number;
}

export class StaleEpochError extends Error {
  override readonly name = 'StaleEpochError';
}

export class RecordStore {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly retentionMs: number,
    /**
     * Called after each checkpoint is saved and before the engine goes on (to an action): with REDIS_WAIT_REPLICAS,
     * waits until replicas hold the checkpoint and every write before it on this connection (the job taken, the
     * lease, the budget), so a failover right after cannot make a new worker act again from an older state.
     */
    private readonly replicated?: () => Promise<void>,
  ) {}

  private write(record: RunRecord, mode: 'create' | 'save'): Promise<number> {
    const created = Date.parse(record.trigger.receivedAt);
    return this.redis.eval(
      WRITE_RUN_3,
      3,
      this.keys.run(record.id),
      this.keys.runIndex,
      this.keys.runsVersion,
      JSON.stringify(record),
      String(record.epoch),
      String(this.retentionMs),
      record.id,
      String(Number.isFinite(created) ? created : Date.now()),
      mode,
    ) as Promise<number>;
  }

  /** Stores a new record; false when one with this id exists already (a duplicate incident). */
  async create(record: RunRecord): Promise<boolean> {
    return (await this.write(record, 'create')) === 1;
  }

  /** Saves a checkpoint; throws StaleEpochError when a newer worker owns the run. */
  async save(record: RunRecord): Promise<void> {
    if ((await this.write(record, 'save')) !== 1) {
      throw new StaleEpochError(`run ${record.id}: a newer worker (epoch > ${record.epoch}) owns this run`);
    }
    await this.replicated?.();
  }

  async get(id: string): Promise<RunRecord | undefined> {
    const [json, resolvedAt, cancel, audit, reruns] = await this.redis.hmget(
      this.keys.run(id),
      'json',
      'resolvedAt',
      'cancel',
      'audit',
      'reruns',
    );
    if (json === null || json === undefined) return undefined;
    const record = JSON.parse(json) as RunRecord;
    if (resolvedAt) record.resolvedAt ??= resolvedAt;
    if (cancel) record.cancelRequested = JSON.parse(cancel) as RunRecord['cancelRequested'];
    if (audit) record.audit = JSON.parse(audit) as OperatorAction[];
    if (reruns) record.reruns = JSON.parse(reruns) as string[];
    return record;
  }

  /**
   * An operator's cancel request, kept beside the record (a worker's checkpoint cannot overwrite it). 'requested'
   * the first time, 'already' after, 'missing' when there is no such run.
   */
  async requestCancel(
    id: string,
    request: { by: string; at: string; reason?: string },
  ): Promise<'requested' | 'already' | 'missing'> {
    const r = await this.redis.eval(REQUEST_CANCEL_2, 2, this.keys.run(id), this.keys.runsVersion, JSON.stringify(request));
    return r === 1 ? 'requested' : r === 2 ? 'already' : 'missing';
  }

  async cancelRequest(id: string): Promise<RunRecord['cancelRequested']> {
    const raw = await this.redis.hget(this.keys.run(id), 'cancel');
    return raw ? (JSON.parse(raw) as RunRecord['cancelRequested']) : undefined;
  }

  /** Adds an operator action to the run's audit trail; false when there is no such run. */
  async appendAudit(id: string, entry: OperatorAction): Promise<boolean> {
    return (
      (await this.redis.eval(APPEND_FIELD_2, 2, this.keys.run(id), this.keys.runsVersion, JSON.stringify(entry), 'audit')) === 1
    );
  }

  /** Links a re-run to the run it repeats. */
  async addRerun(id: string, rerunId: string): Promise<boolean> {
    return (
      (await this.redis.eval(APPEND_FIELD_2, 2, this.keys.run(id), this.keys.runsVersion, JSON.stringify(rerunId), 'reruns')) ===
      1
    );
  }

  /** Changes with every run write: live views poll this one number instead of the records. */
  async version(): Promise<string> {
    return (await this.redis.get(this.keys.runsVersion)) ?? '0';
  }

  /**
   * Notes that the incident's alert resolved. Kept beside the record (not inside its JSON) so a worker
   * saving a checkpoint at the same moment cannot overwrite it. False when there is no such run.
   */
  async markResolved(id: string, at: string): Promise<boolean> {
    const script = `if redis.call('HEXISTS', KEYS[1], 'json') == 1 then redis.call('HSETNX', KEYS[1], 'resolvedAt', ARGV[1]) return 1 end return 0`;
    return (await this.redis.eval(script, 1, this.keys.run(id), at)) === 1;
  }

  async resolvedAt(id: string): Promise<string | undefined> {
    return (await this.redis.hget(this.keys.run(id), 'resolvedAt')) ?? undefined;
  }

  /** Newest first. Reads at most 1000 ids in the time range, then filters. */
  async list(filter: RunFilter = {}): Promise<RunRecord[]> {
    const limit = Math.min(filter.limit ?? 100, 1000);
    const max = filter.before !== undefined ? `(${filter.before}` : '+inf';
    const min = filter.since !== undefined ? String(filter.since) : '-inf';
    const ids = await this.redis.zrevrangebyscore(this.keys.runIndex, max, min, 'LIMIT', 0, 1000);
    if (ids.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const id of ids) pipeline.hget(this.keys.run(id), 'json');
    const replies = (await pipeline.exec()) ?? [];
    const runs: RunRecord[] = [];
    for (const [err, json] of replies) {
      if (err || typeof json !== 'string') continue; // expired since the index was read
      const run = JSON.parse(json) as RunRecord;
      // resolvedAt lives beside the JSON; list shows the JSON's copy, which the worker sets when it sees it.
      if (filter.procedure !== undefined && run.procedure !== filter.procedure) continue;
      if (filter.target !== undefined && run.target !== filter.target) continue;
      if (filter.state !== undefined && run.state !== filter.state) continue;
      runs.push(run);
      if (runs.length >= limit) break;
    }
    return runs;
  }
}
