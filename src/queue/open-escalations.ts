import { createHash } from 'node:crypto';
import type { PostableAlert } from '../alertmanager/client.js';
import type { RedisClient } from './connection.js';
import type { RedisKeys } from './keys.js';

/**
 * Escalation alerts that are still open: a `RemediationEscalated` alert says "a human must act", so it must stay
 * firing in Alertmanager while the problem persists, not end by itself after resolve_timeout. Each one is kept here
 * (one hash field per alert identity: its label set) and re-sent with a fresh endsAt until a later run of the same
 * procedure verifies the target healthy, or an operator acknowledges it; then it is sent once more, resolved.
 */
export interface OpenEscalation {
  /** The label set's digest: the alert's identity in Alertmanager (same labels = same alert). */
  key: string;
  procedure: string;
  target: string;
  /** The run that raised it (the latest one, when several runs escalated the same alert). */
  runId: string;
  alert: PostableAlert & { startsAt: string };
  openedAt: string;
  lastSentAt: string;
}

export function escalationKey(labels: Record<string, string>): string {
  const sorted = Object.keys(labels)
    .sort()
    .map((k) => [k, labels[k]]);
  return createHash('sha256').update(JSON.stringify(sorted)).digest('hex').slice(0, 32);
}

export class OpenEscalations {
  constructor(
    private readonly redis: RedisClient,
    private readonly keys: RedisKeys,
  ) {}

  /** Notes an escalation alert that is firing; an alert with the same labels keeps its first startsAt. */
  async open(procedure: string, target: string, runId: string, alert: PostableAlert): Promise<OpenEscalation> {
    const key = escalationKey(alert.labels);
    const now = new Date().toISOString();
    const before = await this.get(key);
    if (before && before.runId === runId && JSON.stringify(before.alert.annotations) === JSON.stringify(alert.annotations))
      return before;
    const entry: OpenEscalation = {
      key,
      procedure,
      target,
      runId,
      alert: { ...alert, startsAt: before?.alert.startsAt ?? alert.startsAt ?? now },
      openedAt: before?.openedAt ?? now,
      lastSentAt: now,
    };
    await this.redis.hset(this.keys.openEscalations, key, JSON.stringify(entry));
    return entry;
  }

  async get(key: string): Promise<OpenEscalation | undefined> {
    const raw = await this.redis.hget(this.keys.openEscalations, key);
    return raw ? (JSON.parse(raw) as OpenEscalation) : undefined;
  }

  async list(): Promise<OpenEscalation[]> {
    const all = await this.redis.hvals(this.keys.openEscalations);
    return all.map((v) => JSON.parse(v) as OpenEscalation);
  }

  async touch(entry: OpenEscalation): Promise<void> {
    await this.redis.hset(
      this.keys.openEscalations,
      entry.key,
      JSON.stringify({ ...entry, lastSentAt: new Date().toISOString() }),
    );
  }

  /**
   * Removes and returns the entries `match` selects (only those this call removed: two closers never both send),
   * and remembers when each was closed, so a listing of Alertmanager taken just before cannot reopen it.
   */
  async close(match: (e: OpenEscalation) => boolean): Promise<OpenEscalation[]> {
    const closed: OpenEscalation[] = [];
    for (const e of (await this.list()).filter(match)) {
      if ((await this.redis.hdel(this.keys.openEscalations, e.key)) === 1) closed.push(e);
      await this.redis.hset(this.keys.closedEscalations, e.key, String(Date.now()));
      await this.redis.pexpire(this.keys.closedEscalations, 3_600_000);
    }
    return closed;
  }

  /** When the alert with this identity was last closed (ms), if within the last hour. */
  async closedAt(key: string): Promise<number | undefined> {
    const raw = await this.redis.hget(this.keys.closedEscalations, key);
    return raw ? Number(raw) : undefined;
  }

  /** True for one process per interval: it re-sends the open escalations. */
  async claimResend(intervalMs: number): Promise<boolean> {
    return (await this.redis.set(this.keys.escalationResend, '1', 'PX', Math.max(100, intervalMs - 50), 'NX')) === 'OK';
  }
}
