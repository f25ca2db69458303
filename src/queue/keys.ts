import { createHash } from 'node:crypto';

export const QUEUE_NAME = 'remediations';

/** Target strings come from alert labels: hash them so a key never carries untrusted text. */
function digest(text: string): string {
  return createHash('sha256').update(text).digest('hex').slice(0, 32);
}

/**
 * One spelling per target, so that variants of the same target share one lease, one budget and one storm-breaker
 * entry instead of multiplying them: `Host-1`, ` host-1 `, `host\u200b-1`, `ｈｏｓｔ-1` and `host-1:9100` are all
 * `host-1`. Unicode compatibility forms are folded (NFKC), controls, invisible format characters (zero-width,
 * bidi) and white space are dropped, case is folded, and a port (`host:9100`, `[::1]:9100`) or a host name's final
 * dot is cut. Coarser is the safe direction: two targets wrongly merged wait for each other; two spellings wrongly
 * kept apart would each get the budget.
 */
export function canonicalTarget(target: string): string {
  const folded = target
    .normalize('NFKC')
    .replace(/[\p{Cc}\p{Cf}\p{Z}\s]/gu, '')
    .toLowerCase();
  return folded.replace(/^(\[[^\]]*\]|[^:/[\]]+):\d+$/, '$1').replace(/^([^/]+)\.$/, '$1');
}

/**
 * Every Redis key remediator writes, in one place. All share the `{prefix}` hash tag so that the Lua
 * scripts touching several of them work on Redis Cluster too.
 */
export function redisKeys(queuePrefix: string) {
  const tag = `{${queuePrefix}}`;
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
    lease: (target: string) => `${tag}:lease:${digest(canonicalTarget(target))}`,
    budget: (procedure: string, target: string) => `${tag}:budget:${digest(`${procedure}\u0000${canonicalTarget(target)}`)}`,
    /** Set when automation is paused by hand or by the storm breaker. */
    paused: `${tag}:paused`,
    /** Claimed by the one process that escalates about the current pause. */
    pausedNotice: `${tag}:paused:notice`,
    /** Claimed by the one run that escalates an exhausted budget within its window. */
    budgetNotice: (procedure: string, target: string) =>
      `${tag}:budget-notice:${digest(`${procedure}\u0000${canonicalTarget(target)}`)}`,
    /** ZSET of recently firing targets (storm detection). */
    stormTargets: `${tag}:storm:targets`,
  };
}
export type RedisKeys = ReturnType<typeof redisKeys>;

/** One job per incident: procedure + alert fingerprint + startsAt. No ':' and not all digits (BullMQ rules). */
export function incidentJobId(procedure: string, fingerprint: string, startsAt: string): string {
  return `inc-${createHash('sha256').update(`${procedure}|${fingerprint}|${startsAt}`).digest('hex').slice(0, 40)}`;
}
