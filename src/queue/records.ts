import type { RedisClient } from './connection.js';
import { isFinal, type OperatorAction, type RunRecord, type RunState } from '../engine/record.js';
import { capRecordJson } from '../engine/record-cap.js';
import { canonicalTarget, sha256Hex, type RedisKeys } from './keys.js';
import { script, type Script } from './scripts.js';

/**
 * Run records in Redis: one hash per run (`json`, `epoch`) plus a ZSET index by creation time.
 * Writes are fenced by epoch (BullMQ's attemptsStarted) in Lua, so a worker that lost its lock
 * cannot overwrite the checkpoint of the worker that took the run over.
 */

// writeRun-5: KEYS[1] run hash, KEYS[2] index zset, KEYS[3] change counter, KEYS[4] the run's shared trigger data,
// KEYS[5] the incident's resolved tombstone; ARGV: json, epoch, ttl ms, id, score, mode ('create'|'save'|'reopen'),
// meta (procedure, target, state), trigger json ('' none), provisional ('1': a final outcome that only recorded a plan).
// Output: 1 written, 0 refused (exists for create / stale epoch for save / not provisional for reopen), for reopen
// 1 + the new generation.
const WRITE_RUN_5 = `
local exists = redis.call('EXISTS', KEYS[1]) == 1
local gen = 0
if ARGV[6] == 'create' then
  if exists then return 0 end
elseif ARGV[6] == 'reopen' then
  if not exists or redis.call('HGET', KEYS[1], 'provisional') ~= '1' then return 0 end
  gen = redis.call('HINCRBY', KEYS[1], 'gen', 1)
  redis.call('HSET', KEYS[1], 'epoch', '0')
else
  local stored = tonumber(redis.call('HGET', KEYS[1], 'epoch') or '-1')
  if stored ~= nil and tonumber(ARGV[2]) < stored then return 0 end
end
redis.call('HSET', KEYS[1], 'json', ARGV[1], 'epoch', ARGV[2], 'meta', ARGV[7], 'provisional', ARGV[9])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
if ARGV[8] ~= '' then redis.call('SET', KEYS[4], ARGV[8], 'PX', ARGV[3]) end
if ARGV[6] == 'create' then
  local resolved = redis.call('GET', KEYS[5])
  if resolved then redis.call('HSET', KEYS[1], 'resolvedAt', resolved) redis.call('DEL', KEYS[5]) end
  redis.call('ZADD', KEYS[2], ARGV[5], ARGV[4])
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', tonumber(ARGV[5]) - tonumber(ARGV[3]))
end
redis.call('INCR', KEYS[3])
return 1 + gen
`;

// markResolved-2: KEYS[1] run hash, KEYS[2] the incident's resolved tombstone; ARGV: time, ttl ms.
// Output: 1 the run exists (resolvedAt set unless set before), 0 no run yet: the resolution is remembered for it.
const MARK_RESOLVED_2 = `
if redis.call('HEXISTS', KEYS[1], 'json') == 1 then redis.call('HSETNX', KEYS[1], 'resolvedAt', ARGV[1]) return 1 end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2], 'NX')
return 0
`;

// createRuns: the runs of one or more webhooks in one call (one round trip, and one script, for the payloads that
// arrived while the previous call was out: Producer.ingest). KEYS[1] index zset, KEYS[2] change counter, KEYS[3] the
// intake stream, KEYS[3 + p] payload p's shared trigger data (p = 1..P), then per run its hash, its resolved
// tombstone and its route claim; ARGV[1] ttl ms, ARGV[2] P, then per payload its number of runs and its trigger json
// ('' none), then per run: json, epoch, id, score, meta, wanted route, job id, job data json. Per run: the route claim
// (SET NX: the first delivery's route stays, as Producer.routeOfRun; read back only when an earlier one holds it),
// then for a new run its job appended to the intake stream (XADD: job id, claimed route, data), which a worker's
// dispatcher adds to BullMQ (queue/intake.ts), and the writes of writeRun-5 in 'create' mode. The record's `queued`
// field says its entry was appended: set in the record's own HSET, after the XADD, so a record never says so without
// its entry. A known run without it (created by a version that added its job apart, which may have failed) gets an
// entry now, harmless since dispatch is idempotent. A payload that created a run then stores its trigger data. Each
// payload runs under pcall: an error stops that payload where it happened (as a script of its own would have
// stopped), the others go on. The index is trimmed and the counter bumped once per call.
// Output per payload: {1, runs} with per run {code, claimed route} (code 1 created, 0 known already, 2 known and only
// its plan was recorded: provisional, the caller may reopen it; no entry), or {0, error message}.
const CREATE_RUNS = `
local ttl = ARGV[1]
local payloads = tonumber(ARGV[2])
local out = {}
local created, newest = 0, nil
local k, a = 3 + payloads, 3 + 2 * payloads
for p = 1, payloads do
  local count, shared = tonumber(ARGV[1 + 2 * p]), ARGV[2 + 2 * p]
  local runs = {}
  local ok, err = pcall(function()
    local mine = 0
    for i = 1, count do
      local r, v = k + 3 * (i - 1), a + 8 * (i - 1)
      local run, tomb, route = KEYS[r + 1], KEYS[r + 2], KEYS[r + 3]
      local claimed = ARGV[v + 5]
      if not redis.call('SET', route, claimed, 'PX', ttl, 'NX') then claimed = redis.call('GET', route) end
      local code = 1
      if redis.call('EXISTS', run) == 1 then
        code = redis.call('HGET', run, 'provisional') == '1' and 2 or 0
        if code == 0 and redis.call('HEXISTS', run, 'queued') == 0 then
          redis.call('XADD', KEYS[3], '*', 'job', ARGV[v + 6], 'route', claimed, 'data', ARGV[v + 7])
          redis.call('HSET', run, 'queued', '1')
        end
      else
        redis.call('XADD', KEYS[3], '*', 'job', ARGV[v + 6], 'route', claimed, 'data', ARGV[v + 7])
        redis.call('HSET', run, 'json', ARGV[v], 'epoch', ARGV[v + 1], 'meta', ARGV[v + 4], 'provisional', '', 'queued', '1')
        redis.call('PEXPIRE', run, ttl)
        local resolved = redis.call('GET', tomb)
        if resolved then redis.call('HSET', run, 'resolvedAt', resolved) redis.call('DEL', tomb) end
        local score = tonumber(ARGV[v + 3])
        redis.call('ZADD', KEYS[1], score, ARGV[v + 2])
        if newest == nil or score > newest then newest = score end
        created = created + 1
        mine = mine + 1
      end
      runs[i] = { code, claimed }
    end
    if mine > 0 and shared ~= '' then redis.call('SET', KEYS[3 + p], shared, 'PX', ttl) end
  end)
  if ok then
    out[p] = { 1, runs }
  else
    out[p] = { 0, type(err) == 'table' and (err.err or err.message) or tostring(err) }
  end
  -- The next payload's keys and arguments follow this one's, wherever its error stopped it.
  k, a = k + 3 * count, a + 8 * count
end
if created > 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', newest - tonumber(ttl))
  redis.call('INCR', KEYS[2])
end
return out
`;

/** A run's job as createRuns appends it to the intake stream: its BullMQ job id and its data (JSON, no route). */
export interface IntakeJob {
  id: string;
  data: string;
}

/** One webhook's part of a createRuns call: its new records, each one's wanted route and job (same order). */
export interface CreateRunsPayload {
  records: readonly RunRecord[];
  routes: readonly string[];
  jobs: readonly IntakeJob[];
  /** The records' targets in canonical form, when the caller has them already. */
  targets?: readonly string[];
}

/**
 * The name createRuns has on a connection (and on a pipeline made from it). The producer connection leaves it out
 * of auto-pipelining (queue/connection.ts): Producer.ingest batches its calls itself, one script per batch.
 */
export const CREATE_RUNS_COMMAND = 'remediatorCreateRuns';

/** Targets' canonical spellings, remembered for a run's later saves (a worker saves each run 3+ times). */
const canonicalTargets = new Map<string, string>();

function canonicalOf(target: string): string {
  let canonical = canonicalTargets.get(target);
  if (canonical === undefined) {
    if (canonicalTargets.size >= 1024) canonicalTargets.clear();
    canonical = canonicalTarget(target);
    canonicalTargets.set(target, canonical);
  }
  return canonical;
}

/** What list() filters on, stored beside the JSON so a filter reads a few bytes per run, not its record. */
function meta(record: RunRecord, canonical = canonicalOf(record.target)): string {
  return `${record.procedure}\n${canonical}\n${record.state}`;
}

type Trigger = RunRecord['trigger'] & { ref?: string };
type Shared = Pick<RunRecord['trigger'], 'receiver' | 'groupKey'>;

/**
 * A webhook's receiver and group key are the same for every alert it carries (a group key can be kilobytes, and a
 * payload can carry a thousand alerts): stored once per content, each record keeps a reference.
 */
export function splitTrigger(trigger: Trigger): { stored: Trigger; shared?: { ref: string; json: string } } {
  const { receiver, groupKey, ...rest } = trigger;
  if (receiver === undefined && groupKey === undefined) return { stored: trigger };
  const json = JSON.stringify({ receiver, groupKey });
  const ref = sha256Hex(json).slice(0, 32);
  return { stored: { ...rest, ref }, shared: { ref, json } };
}

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
    /**
     * Whether get() puts the shared trigger data back (one more round trip). A worker's store does not: the engine
     * never reads it, and a record saved with its reference keeps it.
     */
    private readonly expandShared = true,
  ) {
    this.writeRun = script(redis, 'remediatorWriteRun', WRITE_RUN_5);
    this.markResolvedScript = script(redis, 'remediatorMarkResolved', MARK_RESOLVED_2);
    this.appendField = script(redis, 'remediatorAppendField', APPEND_FIELD_2);
    this.requestCancelScript = script(redis, 'remediatorRequestCancel', REQUEST_CANCEL_2);
    script(redis, CREATE_RUNS_COMMAND, CREATE_RUNS);
  }

  private readonly writeRun: Script;
  private readonly markResolvedScript: Script;
  private readonly appendField: Script;
  private readonly requestCancelScript: Script;

  /**
   * The arguments of createRuns (CREATE_RUNS_COMMAND) for the new records of one or more webhooks (the records of one
   * payload share its trigger object), each with the route its job should go to (claimed there unless an earlier
   * delivery claimed one) and its job. `targets`: the records' targets in canonical form, when the caller has them.
   * The script answers one {code, claimed route} per record, in this order.
   */
  createRunsArgs(payloads: readonly CreateRunsPayload[]): (string | number)[] {
    const keys: string[] = [];
    const argv: string[] = [];
    const triggerKeys: string[] = [];
    const counts: string[] = [];
    for (const { records, routes, jobs, targets } of payloads) {
      let sharedJson = '';
      let sharedRef: string | undefined;
      let last: { trigger: RunRecord['trigger']; split: ReturnType<typeof splitTrigger> } | undefined;
      for (const [n, record] of records.entries()) {
        const created = Date.parse(record.trigger.receivedAt);
        // Split (and hash) once: a payload's records share one trigger object.
        if (last?.trigger !== record.trigger) last = { trigger: record.trigger, split: splitTrigger(record.trigger) };
        const { stored, shared } = last.split;
        if (shared !== undefined && sharedRef === undefined) {
          sharedRef = shared.ref;
          sharedJson = shared.json;
        }
        if (shared !== undefined && shared.ref !== sharedRef) throw new Error('createRunsArgs: one trigger per payload');
        const { json } = capRecordJson({ ...record, trigger: stored });
        keys.push(this.keys.run(record.id), this.keys.resolvedTombstone(record.id), this.keys.route(record.id));
        const score = String(Number.isFinite(created) ? created : Date.now());
        argv.push(
          json,
          String(record.epoch),
          record.id,
          score,
          meta(record, targets?.[n]),
          routes[n]!,
          jobs[n]!.id,
          jobs[n]!.data,
        );
      }
      triggerKeys.push(this.keys.trigger(sharedRef ?? 'none'));
      counts.push(String(records.length), sharedJson);
    }
    return [
      3 + triggerKeys.length + keys.length,
      this.keys.runIndex,
      this.keys.runsVersion,
      this.keys.intake,
      ...triggerKeys,
      ...keys,
      String(this.retentionMs),
      String(payloads.length),
      ...counts,
      ...argv,
    ];
  }

  /** Capped (engine/record-cap.ts), with its shared trigger data stored apart; fenced by epoch. */
  private write(record: RunRecord, mode: 'create' | 'save' | 'reopen'): Promise<number> {
    const created = Date.parse(record.trigger.receivedAt);
    const { stored, shared } = splitTrigger(record.trigger);
    const { json } = capRecordJson({ ...record, trigger: stored });
    return this.writeRun(
      5,
      this.keys.run(record.id),
      this.keys.runIndex,
      this.keys.runsVersion,
      this.keys.trigger(shared?.ref ?? 'none'),
      this.keys.resolvedTombstone(record.id),
      json,
      String(record.epoch),
      String(this.retentionMs),
      record.id,
      String(Number.isFinite(created) ? created : Date.now()),
      mode,
      meta(record),
      shared?.json ?? '',
      isFinal(record.state) && record.planOnly !== undefined ? '1' : '',
    ) as Promise<number>;
  }

  /**
   * An incident whose run only recorded its plan (first seen in dry-run or while automation was paused) is not over:
   * a later delivery, when automation acts, reopens it as this new record (same id) and gets the job id of its new
   * generation. Undefined when the existing run acted (or is still going): then it is a duplicate.
   */
  async reopen(record: RunRecord): Promise<string | undefined> {
    const r = await this.write({ ...record, epoch: 0 }, 'reopen');
    return r >= 2 ? `${record.id}-g${r - 1}` : undefined;
  }

  /** Puts the shared trigger data (receiver, group key) back into records read from Redis. */
  private async expandTriggers(records: RunRecord[]): Promise<void> {
    const refs = [
      ...new Set(records.flatMap((r) => ((r.trigger as Trigger).ref !== undefined ? [(r.trigger as Trigger).ref!] : []))),
    ];
    if (refs.length === 0) return;
    const values = await this.redis.mget(...refs.map((ref) => this.keys.trigger(ref)));
    const byRef = new Map(refs.map((ref, i) => [ref, values[i] ? (JSON.parse(values[i]) as Shared) : undefined]));
    for (const r of records) {
      const { ref, ...rest } = r.trigger as Trigger;
      if (ref === undefined) continue;
      const shared = byRef.get(ref);
      r.trigger = {
        ...rest,
        ...(shared?.receiver !== undefined ? { receiver: shared.receiver } : {}),
        ...(shared?.groupKey !== undefined ? { groupKey: shared.groupKey } : {}),
      };
    }
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
    if (this.expandShared) await this.expandTriggers([record]);
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
    const r = await this.requestCancelScript(2, this.keys.run(id), this.keys.runsVersion, JSON.stringify(request));
    return r === 1 ? 'requested' : r === 2 ? 'already' : 'missing';
  }

  async cancelRequest(id: string): Promise<RunRecord['cancelRequested']> {
    const raw = await this.redis.hget(this.keys.run(id), 'cancel');
    return raw ? (JSON.parse(raw) as RunRecord['cancelRequested']) : undefined;
  }

  /** Adds an operator action to the run's audit trail; false when there is no such run. */
  async appendAudit(id: string, entry: OperatorAction): Promise<boolean> {
    return (await this.appendField(2, this.keys.run(id), this.keys.runsVersion, JSON.stringify(entry), 'audit')) === 1;
  }

  /** Links a re-run to the run it repeats. */
  async addRerun(id: string, rerunId: string): Promise<boolean> {
    return (await this.appendField(2, this.keys.run(id), this.keys.runsVersion, JSON.stringify(rerunId), 'reruns')) === 1;
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
    // No run yet (the resolution overtook its firing: retries, HA peers): remembered, so the firing that comes later
    // records its run as cancelled instead of acting on an incident that is over.
    return (
      (await this.markResolvedScript(2, this.keys.run(id), this.keys.resolvedTombstone(id), at, String(this.retentionMs))) === 1
    );
  }

  async resolvedAt(id: string): Promise<string | undefined> {
    return (await this.redis.hget(this.keys.run(id), 'resolvedAt')) ?? undefined;
  }

  /**
   * Newest first. Reads only what it returns: filters look at each run's small `meta` field (procedure, canonical
   * target, state), a page of ids at a time, and only the records returned are read whole. At most LIST_SCAN runs
   * are looked at per call (page further with `before`).
   */
  async list(filter: RunFilter = {}): Promise<RunRecord[]> {
    const limit = Math.min(filter.limit ?? 100, 1000);
    const max = filter.before !== undefined ? `(${filter.before}` : '+inf';
    const min = filter.since !== undefined ? String(filter.since) : '-inf';
    const target = filter.target !== undefined ? canonicalTarget(filter.target) : undefined;
    const filtered = filter.procedure !== undefined || target !== undefined || filter.state !== undefined;
    const wanted: string[] = [];
    for (let offset = 0; wanted.length < limit && offset < LIST_SCAN;) {
      const ids = await this.redis.zrevrangebyscore(this.keys.runIndex, max, min, 'LIMIT', offset, filtered ? LIST_PAGE : limit);
      if (ids.length === 0) break;
      offset += ids.length;
      if (!filtered) {
        wanted.push(...ids);
        break;
      }
      const pipeline = this.redis.pipeline();
      for (const id of ids) pipeline.hget(this.keys.run(id), 'meta');
      const metas = (await pipeline.exec()) ?? [];
      ids.forEach((id, i) => {
        const m = metas[i]?.[1];
        if (typeof m !== 'string' || wanted.length >= limit) return;
        const [procedure, canonical, state] = m.split('\n');
        if (filter.procedure !== undefined && procedure !== filter.procedure) return;
        if (target !== undefined && canonical !== target) return;
        if (filter.state !== undefined && state !== filter.state) return;
        wanted.push(id);
      });
    }
    if (wanted.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const id of wanted) pipeline.hget(this.keys.run(id), 'json');
    const replies = (await pipeline.exec()) ?? [];
    // resolvedAt lives beside the JSON; list shows the JSON's copy, which the worker sets when it sees it.
    const runs = replies.flatMap(([err, json]) => (err || typeof json !== 'string' ? [] : [JSON.parse(json) as RunRecord]));
    await this.expandTriggers(runs);
    return runs;
  }
}

/** Runs a filtered list looks at per call, and per round trip. */
const LIST_SCAN = 10_000;
const LIST_PAGE = 500;
