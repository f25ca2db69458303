/**
 * P1-004 Runtime Starvation, hands-off, end to end: simulator → real Prometheus (RuntimeStarvation, fast copy of
 * the shipped alert rule) → real Alertmanager → remediator (shipped rules/P1-004-runtime-starvation.yaml, only
 * its vars set) → steps verified against Prometheus → escalation.
 *
 * Scenarios on one supervisor (3 runs: the rule's budget of 3 an hour per target):
 *   1. child-2 blocks forever, the control loop stalls → quarantining it heals.
 *   2. starvation that persists after quarantining: child-1 blocks, and as soon as it is quarantined another
 *      child hangs (the injected fault is a workload that keeps hanging its tasks, once more here) → the run
 *      quarantines what it found, the loop stays stalled, "escalate to L2 with runtime metrics snapshot" fires.
 *      The stall coming back is a new incident for Prometheus (the loop moved for a moment): its own run then
 *      quarantines the second hung child and the loop recovers.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunRecord } from '../../src/engine/record.js';
import { waitFor } from '../helpers/wait.js';
import type { State } from '../sim/client.js';
import { startP1Env, step, stepSummary, timingLine, type P1Env } from './p1-harness-legacy.js';

const notes: string[] = [];
const note = (line: string) => {
  notes.push(line);
  process.stdout.write(`${line}\n`);
};

const BLOCKING = new Set(['BlockForever', 'IgnoreCancel']);

describe('e2e P1-004 Runtime Starvation (real Prometheus + Alertmanager + simulator, nobody acting)', () => {
  let env: P1Env;
  let stopInjector: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    env = await startP1Env({
      procedure: 'P1-004',
      tag: '1004',
      supervisor: { children: 3 },
      vars: (sup) => ({ control_url: sup.adminUrl }),
    });
  });

  afterAll(async () => {
    await stopInjector?.();
    await env?.stop();
    if (notes.length > 0) process.stdout.write(`\nP1-004 closing note:\n${notes.map((n) => `  ${n}`).join('\n')}\n`);
  });

  const state = async (): Promise<State> => (await (await fetch(`${env.sup.adminUrl}/state`)).json()) as State;

  async function runAfter(faultAt: number): Promise<RunRecord> {
    return env.waitRun('a P1-004 run for the injected fault', (r) => Date.parse(r.alert.startsAt) >= faultAt - 1000, 45_000);
  }

  it('a child blocks forever: quarantining it heals hands-off; Prometheus confirms the loop iterates again', async () => {
    const faultAt = Date.now();
    const r = (await (await fetch(`${env.sup.adminUrl}/faults/children/child-2/block-forever`, { method: 'POST' })).json()) as {
      result: string;
    };
    expect(r.result).toBe('Accepted');
    const first = await runAfter(faultAt);
    const run = await env.waitState(first.id, ['succeeded'], 90_000);
    note(timingLine('P1-004', 'verified recovery', faultAt, run) + ' [quarantine]');

    expect(run.alert.labels).toMatchObject({ alertname: 'RuntimeStarvation', instance: env.instance, severity: 'page' });
    // Steps 1 and 2 are diagnostics (onFailure: continue): "not > 0" and "a blocking child" are what send the
    // run down the quarantine branch.
    expect(
      run.steps.map((s) => [s.name, s.status]),
      stepSummary(run),
    ).toEqual([
      ['check-iterations', 'failed'],
      ['review-children', 'failed'],
      ['quarantine-blocking', 'passed'],
      ['verify-recovery', 'passed'],
    ]);
    const check = step(run, 'check-iterations');
    expect(check.observed).toEqual([
      { labels: expect.objectContaining({ instance: env.instance }), value: 0, at: expect.any(String) },
    ]);
    expect(Date.parse(check.observed[0]!.at)).toBeGreaterThanOrEqual(faultAt);
    const review = step(run, 'review-children');
    expect(review.when).toMatchObject({ holds: true });
    expect((review.result?.body as State).children.find((c) => c.id === 'child-2')).toMatchObject({
      behavior: 'BlockForever',
      state: 'running',
    });
    const quarantine = step(run, 'quarantine-blocking');
    expect(quarantine.action).toMatchObject({
      kind: 'http',
      spec: [{ method: 'POST', url: `${env.sup.adminUrl}/children/child-2/quarantine` }],
    });
    expect(quarantine.result).toMatchObject({ status: 'succeeded', body: [{ result: 'Accepted' }] });
    expect(quarantine.observed[0]).toMatchObject({ value: 1, labels: { state: 'quarantined' } });
    const verify = step(run, 'verify-recovery');
    expect(verify.observed.length).toBeGreaterThan(0);
    for (const o of verify.observed) {
      expect(o.value).toBeGreaterThan(0);
      // `after: 5s`: the rate Prometheus reported at least 5 s after the quarantine.
      expect(Date.parse(o.at)).toBeGreaterThanOrEqual(Date.parse(quarantine.endedAt!) + 4000);
    }
    expect(run.sla).toMatchObject({ estimateMs: 8 * 60_000, withinEstimate: true, withinSla: true });
    expect(run.escalations).toEqual([]);
    expect(env.webhookPosts(run.id)).toEqual([]);
    expect(await env.escalationAlerts(run.id)).toEqual([]);
  }, 120_000);

  it('starvation persists after quarantining: escalates to L2 with the runtime metrics snapshot, at Alertmanager and the webhook', async () => {
    await waitFor(
      'RuntimeStarvation to stop firing',
      async () => ((await env.query('ALERTS{alertname="RuntimeStarvation"}')) === undefined ? true : undefined),
      20_000,
      250,
    );
    const faultAt = Date.now();
    const r = (await (await fetch(`${env.sup.adminUrl}/faults/children/child-1/block-forever`, { method: 'POST' })).json()) as {
      result: string;
    };
    expect(r.result).toBe('Accepted');
    // The fault: child-1 blocks; the first time nothing blocks any more (it was quarantined), another running
    // child hangs.
    const rehung: string[] = [];
    let stopped = false;
    const injector = (async () => {
      while (!stopped) {
        try {
          const s = await state();
          const blocking = s.children.filter((c) => BLOCKING.has(c.behavior) && c.state !== 'quarantined');
          const next = s.children.find((c) => c.state === 'running' && c.behavior === 'Normal');
          if (blocking.length === 0 && rehung.length === 0 && next !== undefined) {
            await fetch(`${env.sup.adminUrl}/faults/children/${next.id}/block-forever`, { method: 'POST' });
            rehung.push(next.id);
          }
        } catch {
          /* supervisor busy or gone: try again */
        }
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    stopInjector = async () => {
      stopped = true;
      await injector;
    };
    const first = await runAfter(faultAt);
    const run = await env.waitState(first.id, ['escalated'], 150_000);
    note(timingLine('P1-004', 'escalation', faultAt, run) + ' [starvation persists]');

    expect(rehung).toEqual(['child-3']);
    expect(
      run.steps.map((s) => [s.name, s.status]),
      stepSummary(run),
    ).toEqual([
      ['check-iterations', 'failed'],
      ['review-children', 'failed'],
      ['quarantine-blocking', 'passed'],
      ['verify-recovery', 'failed'],
    ]);
    expect(step(run, 'quarantine-blocking').action?.spec).toEqual([
      expect.objectContaining({ url: `${env.sup.adminUrl}/children/child-1/quarantine` }),
    ]);
    const verify = step(run, 'verify-recovery');
    expect(verify.reason).toMatch(/within 1m/);
    expect(verify.observed.length).toBeGreaterThan(0);
    expect(verify.observed.every((o) => o.value === 0)).toBe(true);

    expect(run.escalations.map((e) => [e.when, e.to, e.status])).toEqual([
      ['failed', 'alertmanager', 'sent'],
      ['failed', 'webhook', 'sent'],
    ]);
    expect(run.escalations[0]!.message).toMatch(
      /persists after quarantining the blocking children: escalate to L2 with the runtime metrics snapshot/,
    );
    const alerts = await waitFor(
      'the RemediationEscalated alert at Alertmanager',
      async () => {
        const a = await env.escalationAlerts(run.id);
        return a.length > 0 ? a : undefined;
      },
      15_000,
    );
    expect(alerts).toHaveLength(1);
    expect(alerts[0]!.labels).toMatchObject({
      procedure: 'P1-004',
      target: env.instance,
      reason: 'failed',
      team: 'l2-engineering',
    });
    // The runtime metrics snapshot: every value Prometheus returned during the run, per step.
    const metrics = JSON.parse(alerts[0]!.annotations.metrics!) as Record<string, { value: number; at: string }[]>;
    expect(Object.keys(metrics)).toEqual(expect.arrayContaining(['check-iterations', 'quarantine-blocking', 'verify-recovery']));
    expect(metrics['verify-recovery']!.every((o) => o.value === 0)).toBe(true);
    expect(alerts[0]!.annotations.step_review_children).toMatch(/BlockForever/);
    const posts = env.webhookPosts(run.id);
    expect(posts).toHaveLength(1);
    expect(Object.keys(posts[0]!.attachments).sort()).toEqual(['metrics', 'step:review-children']);

    // The stall came back as a new incident; its own run quarantines the child that hung next and recovers.
    const again = await env.waitRun(
      'the run of the returning stall',
      (x) => x.id !== run.id && x.id !== first.id && Date.parse(x.alert.startsAt) > faultAt,
      60_000,
    );
    const healed = await env.waitState(again.id, ['succeeded'], 90_000);
    expect(step(healed, 'quarantine-blocking').action?.spec).toEqual([
      expect.objectContaining({ url: `${env.sup.adminUrl}/children/child-3/quarantine` }),
    ]);
    expect(healed.escalations).toEqual([]);
    expect((await env.runs()).filter((x) => x.escalations.length > 0).map((x) => x.id)).toEqual([run.id]);
  }, 240_000);
});
