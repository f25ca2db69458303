import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { admitAndRun, LeaseLostError, type Admission, type AdmissionDeps, type Verdict } from '../../../src/engine/admission.js';
import {
  budget,
  GATES,
  operatorCancel,
  pause,
  resolvedCancel,
  silence,
  stormBreaker,
  targetLease,
} from '../../../src/engine/gates.js';
import { newRunRecord, type RunRecord } from '../../../src/engine/record.js';
import { silentLogger } from '../../../src/log.js';
import { createMetrics } from '../../../src/metrics.js';
import { RuleFile, type Procedure } from '../../../src/rules/schema.js';

const procedure = (extra = '', steps = '  - name: act\n    action: { wait: { duration: 1ms } }'): Procedure => ({
  ...RuleFile.parse(parse(`id: P\ntitle: T\nmatch: ['alertname="A"']\ntarget: t1\n${extra}\nsteps:\n${steps}\n`)),
  file: 'p.yaml',
});

const run = (over: Partial<RunRecord> = {}): RunRecord => ({
  ...newRunRecord({
    id: 'run-1',
    procedure: 'P',
    title: 'T',
    target: 't1',
    alert: {
      labels: { alertname: 'A', instance: 'i-1' },
      fingerprint: '0123456789abcdef',
      startsAt: '2026-01-01T00:00:00.000Z',
      status: 'firing',
    },
    trigger: { source: 'alertmanager', receivedAt: '2026-01-01T00:00:00.000Z' },
    dryRun: false,
  }),
  ...over,
});

/** In-memory stand-ins for the Redis stores, recording what the gates did. */
function world(over: { paused?: string; firing?: number; budgetLeft?: boolean; entry?: boolean } = {}) {
  const saved: RunRecord[] = [];
  const leases = new Map<string, string>();
  const calls: string[] = [];
  /** Every question asked of the lease, storm and pause stores (with `entry`: of the one entry round trip). */
  const asked: string[] = [];
  let paused = over.paused;
  const metrics = createMetrics();
  const deps: AdmissionDeps = {
    store: {
      get: async () => undefined,
      save: async (r) => void saved.push(structuredClone(r)),
      resolvedAt: async () => undefined,
      cancelRequest: async () => undefined,
    },
    leases: {
      leaseTtlMs: 1000,
      acquire: async (target, id) => {
        asked.push('acquire');
        const owner = leases.get(target);
        if (owner === undefined || owner === id) return void leases.set(target, id);
        return owner;
      },
      release: async (target, id) => void (leases.get(target) === id && leases.delete(target)),
    },
    budgets: {
      takeBudget: async () => over.budgetLeft ?? true,
      claimBudgetNotice: async () => true,
      budgetHistory: async () => ['run-0', 'run-00'],
    },
    automation: {
      state: async () => (asked.push('state'), paused === undefined ? { paused: false } : { paused: true, reason: paused }),
      pause: async (reason) => ((paused ??= reason), calls.push(`pause: ${reason}`), true),
      claimPauseNotice: async () => true,
      noteTarget: async () => (asked.push('noteTarget'), over.firing ?? 1),
    },
    ...(over.entry
      ? {
          entry: {
            enter: async (target: string, id: string, storm: { windowMs: number } | undefined) => {
              asked.push(`enter ${storm === undefined ? 'lease' : `lease, storm ${storm.windowMs}, pause`}`);
              const owner = leases.get(target);
              if (owner !== undefined && owner !== id) return { holder: owner };
              leases.set(target, id);
              if (storm === undefined) return {};
              return {
                firing: over.firing ?? 1,
                pause: paused === undefined ? { paused: false } : { paused: true, reason: paused },
              };
            },
          },
        }
      : {}),
    storm: { targets: 2, windowMs: 60_000 },
    silencer: {
      createSilence: async (matchers, _until, comment) => (calls.push(`silence ${JSON.stringify(matchers)} ${comment}`), 'sil-1'),
      expireSilence: async (id) => void calls.push(`expire ${id}`),
    },
    escalate: async (r, _p, when) => {
      calls.push(`escalate ${when}`);
      r.escalations.push({ when, to: 'webhook', status: 'sent', at: new Date().toISOString(), message: 'm' });
    },
    notify: async (kind) => void calls.push(`notify ${kind}`),
    metrics,
    log: silentLogger,
    engine: {
      prometheus: { query: () => Promise.reject(new Error('no Prometheus here')), ready: async () => false },
      metrics,
      settings: { dryRun: false, pollIntervalMs: 10, stepTimeoutMs: 5000 },
    },
    leaseRenewMs: 10,
  };
  return { deps, saved, leases, calls, asked };
}

function admission(record: RunRecord, p: Procedure, started = false) {
  const undo: (() => Promise<void>)[] = [];
  const a: Admission = {
    record,
    procedure: p,
    started,
    log: silentLogger,
    lost: new AbortController(),
    onFinish: (f) => void undo.push(f),
  };
  return {
    a,
    finish: async () => {
      for (const f of undo.reverse()) await f();
    },
  };
}

const PASS: Verdict = { kind: 'pass' };

describe('engine/gates', () => {
  it('runs in order: operator-cancel, resolved-cancel, target-lease, storm-breaker, pause, budget, silence', () => {
    expect(GATES.map((g) => g.name)).toEqual([
      'operator-cancel',
      'resolved-cancel',
      'target-lease',
      'storm-breaker',
      'pause',
      'budget',
      'silence',
    ]);
  });

  describe('operator-cancel', () => {
    it('ends a run an operator cancelled before it started', async () => {
      const { deps, saved } = world();
      const record = run({ cancelRequested: { by: 'alice', at: '2026-01-01T00:01:00.000Z', reason: 'wrong target' } });
      await expect(operatorCancel.check(admission(record, procedure()).a, deps)).resolves.toEqual({
        kind: 'finish',
        state: 'cancelled',
      });
      expect(saved.at(-1)).toMatchObject({
        state: 'cancelled',
        reason: 'cancelled by alice at 2026-01-01T00:01:00.000Z before the run started: wrong target',
      });
    });
    it('lets a started run through (it stops after its current step)', async () => {
      const record = run({
        cancelRequested: { by: 'alice', at: 'x' },
        steps: [{ name: 'a', status: 'passed', observed: [], attempts: 1 }],
      });
      await expect(operatorCancel.check(admission(record, procedure(), true).a, world().deps)).resolves.toEqual(PASS);
    });
  });

  describe('resolved-cancel', () => {
    it('ends a run whose alert resolved before it started', async () => {
      const { deps, saved } = world();
      const verdict = await resolvedCancel.check(admission(run({ resolvedAt: '2026-01-01T00:02:00.000Z' }), procedure()).a, deps);
      expect(verdict).toEqual({ kind: 'finish', state: 'cancelled' });
      expect(saved.at(-1)!.reason).toBe('alert resolved at 2026-01-01T00:02:00.000Z, before the run started');
    });
    it('lets a run through whose alert still fires', async () => {
      await expect(resolvedCancel.check(admission(run(), procedure()).a, world().deps)).resolves.toEqual(PASS);
    });
  });

  describe('target-lease', () => {
    it('defers a run whose target another run holds, saying which', async () => {
      const { deps, saved, leases } = world();
      leases.set('t1', 'run-0');
      const verdict = await targetLease.check(admission(run(), procedure()).a, deps);
      expect(verdict.kind).toBe('defer');
      expect(saved.at(-1)!.reason).toBe('waiting: run run-0 is remediating the same target');
    });
    it('takes the lease, and releases it when the run has ended', async () => {
      const { deps, leases } = world();
      const record = run();
      const { a, finish } = admission(record, procedure());
      await expect(targetLease.check(a, deps)).resolves.toEqual(PASS);
      expect(leases.get('t1')).toBe('run-1');
      record.state = 'succeeded';
      await finish();
      expect(leases.has('t1')).toBe(false);
    });
    it('keeps the lease of a run that has not ended (it resumes elsewhere)', async () => {
      const { deps, leases } = world();
      const { a, finish } = admission(run(), procedure());
      await targetLease.check(a, deps);
      await finish();
      expect(leases.get('t1')).toBe('run-1');
    });
    it('a lease another run took is lost: the run may not act again', async () => {
      const { deps, leases } = world();
      const { a, finish } = admission(run(), procedure());
      await targetLease.check(a, deps);
      const lost = new Promise((resolve) => a.lost.signal.addEventListener('abort', resolve));
      leases.set('t1', 'run-2');
      await lost;
      expect(a.lost.signal.reason).toBeInstanceOf(LeaseLostError);
      expect((a.lost.signal.reason as Error).message).toBe('run run-1 lost its lease on target t1: run run-2 holds it now');
      await finish();
    });
  });

  describe('entry: the lease, storm and pause gates in one round trip (RunEntry)', () => {
    const entryGates = async (w: ReturnType<typeof world>, started = false) => {
      const { a } = admission(run(), procedure(), started);
      const verdicts: Verdict[] = [];
      for (const gate of [targetLease, stormBreaker, pause]) verdicts.push(await gate.check(a, w.deps));
      return { a, verdicts };
    };
    it('asks once for a new run, and the storm and pause gates decide on its answer', async () => {
      const w = world({ entry: true, paused: 'by hand' });
      const { a, verdicts } = await entryGates(w);
      expect(verdicts).toEqual([PASS, PASS, PASS]);
      expect(w.asked).toEqual(['enter lease, storm 60000, pause']);
      expect(w.leases.get('t1')).toBe('run-1');
      expect(a.paused).toEqual({ reason: 'by hand' });
    });
    it('defers a run whose target another run holds, with nothing noted for the later gates', async () => {
      const w = world({ entry: true });
      w.leases.set('t1', 'run-0');
      const { a } = admission(run(), procedure());
      expect((await targetLease.check(a, w.deps)).kind).toBe('defer');
      expect(a.entered).toBeUndefined();
      expect(w.saved.at(-1)!.reason).toBe('waiting: run run-0 is remediating the same target');
    });
    it('asks a resumed run for the lease only', async () => {
      const w = world({ entry: true, paused: 'by hand' });
      const { a, verdicts } = await entryGates(w, true);
      expect(verdicts).toEqual([PASS, PASS, PASS]);
      expect(w.asked).toEqual(['enter lease']);
      expect(a.paused).toBeUndefined(); // a run that acted before is not paused halfway
    });
    it('a storm it reveals pauses automation, and the pause gate reads the pause again (it saw the state before)', async () => {
      const w = world({ entry: true, firing: 3 });
      const { a } = await entryGates(w);
      expect(w.calls).toEqual(['pause: storm: 3 distinct targets firing within 60s (threshold 2)']);
      expect(w.asked).toEqual(['enter lease, storm 60000, pause', 'state']);
      expect(a.paused).toEqual({ reason: 'storm: 3 distinct targets firing within 60s (threshold 2)' });
    });
    it('without it, each gate asks its own question', async () => {
      const w = world();
      await entryGates(w);
      expect(w.asked).toEqual(['acquire', 'noteTarget', 'state']);
    });
  });

  describe('storm-breaker', () => {
    it('pauses automation when more distinct targets fire than the threshold', async () => {
      const { deps, calls } = world({ firing: 3 });
      await expect(stormBreaker.check(admission(run(), procedure()).a, deps)).resolves.toEqual(PASS);
      expect(calls).toEqual(['pause: storm: 3 distinct targets firing within 60s (threshold 2)']);
    });
    it('does nothing at or below the threshold', async () => {
      const { deps, calls } = world({ firing: 2 });
      await stormBreaker.check(admission(run(), procedure()).a, deps);
      expect(calls).toEqual([]);
    });
  });

  describe('pause', () => {
    it('makes a run record its plan only while automation is paused', async () => {
      const { a } = admission(run(), procedure());
      await expect(pause.check(a, world({ paused: 'by hand' }).deps)).resolves.toEqual(PASS);
      expect(a.paused).toEqual({ reason: 'by hand' });
    });
    it('leaves a run alone while automation runs', async () => {
      const { a } = admission(run(), procedure());
      await pause.check(a, world().deps);
      expect(a.paused).toBeUndefined();
    });
  });

  describe('budget', () => {
    it('skips a run past the budget and escalates once with the history', async () => {
      const { deps, saved, calls } = world({ budgetLeft: false });
      const verdict = await budget.check(admission(run(), procedure('budget: { runs: 2, per: 1h }')).a, deps);
      expect(verdict).toEqual({ kind: 'finish', state: 'escalated' });
      expect(saved.at(-1)!.reason).toBe(
        'budget exhausted: 2 runs per 3600s on this target (runs run-0, run-00); no action taken',
      );
      expect(calls).toEqual(['escalate budget-exhausted']);
    });
    it('lets a run within the budget through', async () => {
      await expect(budget.check(admission(run(), procedure('budget: { runs: 2, per: 1h }')).a, world().deps)).resolves.toEqual(
        PASS,
      );
    });
  });

  describe('silence', () => {
    it('silences exactly this alert while the run acts, and expires the silence when it ends', async () => {
      const { deps, calls } = world();
      const record = run();
      const { a, finish } = admission(record, procedure('silence: { for: 5m }'));
      await expect(silence.check(a, deps)).resolves.toEqual(PASS);
      expect(calls).toEqual([
        'silence [{"name":"alertname","value":"A","isRegex":false,"isEqual":true},{"name":"instance","value":"i-1","isRegex":false,"isEqual":true}] remediator: P run run-1 in progress',
      ]);
      expect(record.silence).toMatchObject({ id: 'sil-1' });
      record.state = 'succeeded';
      await finish();
      expect(calls.at(-1)).toBe('expire sil-1');
      expect(record.silence?.expired).toBe(true);
    });
  });
});

describe('engine/admission', () => {
  it('a run that lost its target lease does not start its next action', async () => {
    const { deps, leases } = world();
    const p = procedure(
      '',
      '  - name: first\n    action: { wait: { duration: 300ms } }\n  - name: second\n    action: { wait: { duration: 1ms } }',
    );
    const saved: RunRecord[] = [];
    deps.store.save = async (r) => {
      saved.push(structuredClone(r));
      // Once the first action is under way, another run takes the target.
      if (r.checkpoint?.index === 0 && r.checkpoint.phase === 'action') leases.set('t1', 'run-2');
    };
    const outcome = admitAndRun({ run: run(), epoch: 1 }, new Map([['P', p]]), GATES, deps, new AbortController().signal);
    await expect(outcome).rejects.toBeInstanceOf(LeaseLostError);
    const last = saved.at(-1)!;
    expect(last.steps.map((s) => [s.name, s.status])).toEqual([['first', 'passed']]);
    expect(last.steps.some((s) => s.name === 'second')).toBe(false);
  });

  it('a paused run records its plan, tells once about the pause, and acts on nothing', async () => {
    const { deps, calls } = world({ paused: 'storm: 12 distinct targets' });
    const outcome = await admitAndRun(
      { run: run(), epoch: 1 },
      new Map([['P', procedure()]]),
      GATES,
      deps,
      new AbortController().signal,
    );
    expect(outcome).toEqual({ kind: 'done', state: 'skipped' });
    expect(calls).toEqual(['notify paused', 'escalate paused']);
  });
});
