import * as crypto from 'node:crypto';
import { canonicalTarget } from '../target.js';
import { DEFAULT_ROUTE } from '../routes.js';

export const QUEUE_NAME = 'remediations';

/** The BullMQ queue of a route: `remediations` for `default` (as before routing existed), `remediations-<route>`. */
export function queueName(route: string): string {
  return route === DEFAULT_ROUTE ? QUEUE_NAME : `${QUEUE_NAME}-${route}`;
}

/**
 * SHA-256 of a string (UTF-8), in hex: crypto.hash's one call where Node has it (20.12+), a Hash object otherwise.
 * The same digest either way; the one call makes no object per hash (issue 13: one per alert of every webhook).
 */
export const sha256Hex: (text: string) => string =
  typeof (crypto as { hash?: unknown }).hash === 'function'
    ? (text) => crypto.hash('sha256', text, 'hex')
    : (text) => crypto.createHash('sha256').update(text).digest('hex');

/** Target strings come from alert labels: hash them so a key never carries untrusted text. */
function digest(text: string): string {
  return sha256Hex(text).slice(0, 32);
}

export { canonicalTarget } from '../target.js';

/**
 * Every Redis key remediator writes, in one place. All share the `{prefix}` hash tag so that the Lua
 * scripts touching several of them work on Redis Cluster too.
 */
export function redisKeys(queuePrefix: string) {
  const tag = `{${queuePrefix}}`;
  // A run asks for its target's lease key twice or more (taken, renewed, released): hashed once per target.
  const leases = new Map<string, string>();
  const lease = (target: string) => {
    let key = leases.get(target);
    if (key === undefined) {
      if (leases.size >= 1024) leases.clear();
      key = `${tag}:lease:${digest(canonicalTarget(target))}`;
      leases.set(target, key);
    }
    return key;
  };
  return {
    /** BullMQ's `prefix` option. */
    bullPrefix: tag,
    run: (runId: string) => `${tag}:run:${runId}`,
    /** ZSET of run ids scored by creation time: the history API's index. */
    runIndex: `${tag}:runs`,
    /** A resolution that arrived before its incident's firing notification (no run yet to mark). */
    resolvedTombstone: (runId: string) => `${tag}:resolved:${runId}`,
    /** The delivery data many runs share (receiver, group key), stored once per content, referenced from each record. */
    trigger: (ref: string) => `${tag}:trigger:${ref}`,
    /** Counter bumped on every run write: what live views poll to know that something changed. */
    runsVersion: `${tag}:runs:version`,
    /** Capped list (newest first) of operator actions that belong to no single run: pause, resume. */
    audit: `${tag}:audit`,
    /** Hash of escalation alerts still open in Alertmanager (re-sent until a later run verifies, or an ack). */
    openEscalations: `${tag}:escalations:open`,
    /** When each escalation alert identity was last resolved (so a stale listing cannot reopen it). */
    closedEscalations: `${tag}:escalations:closed`,
    /** Claimed by the one process that re-sends the open escalations this interval. */
    escalationResend: `${tag}:escalations:resend`,
    /** Per target, whatever its spelling (canonicalTarget). */
    lease,
    budget: (procedure: string, target: string) => `${tag}:budget:${digest(`${procedure}\u0000${canonicalTarget(target)}`)}`,
    /** Set when automation is paused by hand or by the storm breaker. */
    paused: `${tag}:paused`,
    /** Claimed by the one process that escalates about the current pause. */
    pausedNotice: `${tag}:paused:notice`,
    /** The route an incident's jobs go to, claimed by its first delivery (so a routing change never splits one). */
    route: (runId: string) => `${tag}:route:${runId}`,
    /** Claimed by the one run that escalates an exhausted budget within its window. */
    budgetNotice: (procedure: string, target: string) =>
      `${tag}:budget-notice:${digest(`${procedure}\u0000${canonicalTarget(target)}`)}`,
    /** ZSET of recently firing targets (storm detection). */
    stormTargets: `${tag}:storm:targets`,
    /**
     * Stream of jobs the receivers stored with their records (createRuns), which the workers' dispatchers add to
     * BullMQ (queue/intake.ts). An entry is the durable job until it is dispatched.
     */
    intake: `${tag}:intake`,
  };
}
export type RedisKeys = ReturnType<typeof redisKeys>;

/** One job per incident: procedure + alert fingerprint + startsAt. No ':' and not all digits (BullMQ rules). */
export function incidentJobId(procedure: string, fingerprint: string, startsAt: string): string {
  return `inc-${sha256Hex(`${procedure}|${fingerprint}|${startsAt}`).slice(0, 40)}`;
}
