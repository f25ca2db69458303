import { describe, expect, it } from 'vitest';
import { Children } from '../../sim/children.js';

const policy = { restartBudget: 3, budgetRefillSecs: 60, crashIntervalMs: 100, restartBackoffMs: 200 };

/** Drive the state machine with a fake clock in `step` ms increments until `until` ms. */
function run(ch: Children, from: number, until: number, step = 50): string[] {
  const events: string[] = [];
  for (let t = from; t <= until; t += step) events.push(...ch.tick(t).map((e) => e.message));
  return events;
}

describe('Children (simulated child tasks)', () => {
  it('starts N running children with a full budget; target == N', () => {
    const ch = new Children(3, policy, 0);
    expect(ch.target).toBe(3);
    expect(ch.counts()).toEqual({ running: 3, failed: 0, quarantined: 0 });
    expect(ch.records().map((r) => [r.id, r.restart_budget.tokens])).toEqual([
      ['child-1', 3],
      ['child-2', 3],
      ['child-3', 3],
    ]);
  });

  it('a crash loop fails, restarts, drains the budget to 0 and quarantines the child automatically', () => {
    const ch = new Children(2, policy, 0);
    expect(ch.crashLoop('child-2', 0, 'boom')).toEqual({ result: 'Accepted' });
    ch.tick(0);
    expect(ch.get('child-2')).toMatchObject({ state: 'failed', last_exit_reason: 'TaskExit::Panicked: boom' });
    const events = run(ch, 50, 3000);
    const c2 = ch.get('child-2');
    expect(c2).toMatchObject({ state: 'quarantined', restart_count: 3, restart_budget: { tokens: 0, capacity: 3 } });
    expect(events.filter((e) => e.includes('restarted'))).toHaveLength(3);
    expect(events.at(-1)).toContain('quarantined automatically');
    expect(ch.counts()).toEqual({ running: 1, failed: 0, quarantined: 1 });
  });

  it('remove drops the spec so running == target; replace keeps the target with a fresh child', () => {
    const ch = new Children(3, policy, 0);
    ch.quarantine('child-2');
    expect(ch.remove('child-2')).toEqual({ result: 'Accepted' });
    expect(ch.target).toBe(2);
    expect(ch.counts().running).toBe(ch.target);
    expect(ch.remove('child-3', true)).toEqual({ result: 'Accepted', replacement: 'child-4' });
    expect(ch.ids()).toEqual(['child-1', 'child-4']);
    expect(ch.remove('child-9')).toEqual({ result: 'Rejected', reason: 'no child with id "child-9"' });
  });

  it('tokens refill slowly, one per budgetRefillSecs, up to the capacity', () => {
    const ch = new Children(1, policy, 0);
    ch.crashLoop('child-1', 0);
    run(ch, 0, 3000);
    expect(ch.get('child-1')?.restart_budget.tokens).toBe(0);
    ch.tick(3000 + 61_000);
    expect(ch.get('child-1')?.restart_budget.tokens).toBe(1);
    ch.tick(3000 + 600_000);
    expect(ch.get('child-1')?.restart_budget.tokens).toBe(3);
  });

  it('a BlockForever child blocks until quarantined; IgnoreCancel also refuses remove', async () => {
    const ch = new Children(2, policy, 0);
    expect(ch.blockers()).toEqual([]);
    expect(ch.block('child-1', 'BlockForever')).toEqual({ result: 'Accepted' });
    const [blocker] = ch.blockers();
    let released = false;
    void blocker?.then(() => (released = true));
    await Promise.resolve();
    expect(released).toBe(false);
    expect(ch.quarantine('child-1')).toEqual({ result: 'Accepted' });
    await blocker;
    expect(released).toBe(true);
    expect(ch.blockers()).toEqual([]);
    expect(ch.get('child-1')).toMatchObject({ state: 'quarantined', behavior: 'BlockForever' });

    ch.block('child-2', 'IgnoreCancel');
    expect(ch.remove('child-2')).toMatchObject({ result: 'Rejected', reason: expect.stringContaining('IgnoreCancel') });
    expect(ch.quarantine('child-2')).toEqual({ result: 'Accepted' });
    expect(ch.remove('child-2')).toEqual({ result: 'Accepted' });
  });

  it('heal returns a child to normal with a full budget', () => {
    const ch = new Children(1, policy, 0);
    ch.crashLoop('child-1', 0);
    run(ch, 0, 3000);
    expect(ch.heal('child-1')).toEqual({ result: 'Accepted' });
    expect(ch.get('child-1')).toMatchObject({ state: 'running', behavior: 'Normal', restart_budget: { tokens: 3 } });
    expect(run(ch, 3000, 5000)).toEqual([]);
  });
});
