import type { Entered, RunEntry } from '../engine/admission.js';
import type { RedisClient } from './connection.js';
import { LUA_NOTE_TARGET, pauseState, type AutomationControl } from './control.js';
import { canonicalTarget, type RedisKeys } from './keys.js';
import { LUA_ACQUIRE_LEASE } from './locks.js';
import { script, type Script } from './scripts.js';

// enterRun-3: KEYS[1] the target's lease, KEYS[2] zset of firing targets, KEYS[3] the pause.
// ARGV: run id, lease ttl ms, canonical target, now ms, storm window ms ('' when the run started before: no note).
// acquireLease (queue/locks.ts), then noteTarget (queue/control.ts), then GET of the pause, in that order, in one
// call; nothing after the lease when another run holds it. Output: {owner} when another run holds the target, else
// {'', distinct targets firing in the window (-1: not noted), the pause's value (false: none; not read when not noted)}.
const ENTER_RUN_3 = `${LUA_ACQUIRE_LEASE}${LUA_NOTE_TARGET}
local owner = acquireLease(KEYS[1], ARGV[1], ARGV[2])
if owner ~= '' then return {owner} end
if ARGV[5] == '' then return {'', -1, false} end
return {'', noteTarget(KEYS[2], ARGV[3], ARGV[4], ARGV[5]), redis.call('GET', KEYS[3])}
`;

/**
 * A run's entry in one round trip (engine/admission.ts RunEntry): the target's lease, then, for a run not started
 * before, the storm breaker's note of its target and the pause state, as the lease, storm-breaker and pause gates
 * would ask one after another. The lease is TargetLocks' (same key, owner and TTL), the note and the pause
 * AutomationControl's (same keys; a start pause this process holds wins over Redis, as in AutomationControl.state).
 */
export class RunEntryScript implements RunEntry {
  private readonly enterScript: Script;

  constructor(
    redis: RedisClient,
    private readonly keys: RedisKeys,
    private readonly leaseTtlMs: number,
    private readonly automation: AutomationControl,
  ) {
    this.enterScript = script(redis, 'remediatorEnterRun', ENTER_RUN_3);
  }

  async enter(target: string, runId: string, storm: { windowMs: number } | undefined): Promise<Entered> {
    const [owner, firing, paused] = (await this.enterScript(
      3,
      this.keys.lease(target),
      this.keys.stormTargets,
      this.keys.paused,
      runId,
      String(this.leaseTtlMs),
      canonicalTarget(target), // spellings of one target count once
      String(Date.now()),
      storm === undefined ? '' : String(storm.windowMs),
    )) as [string, number?, (string | null)?];
    if (owner !== '') return { holder: owner };
    if (storm === undefined) return {};
    return { firing: firing!, pause: this.automation.heldAtStart() ?? pauseState(paused ?? null) };
  }
}
