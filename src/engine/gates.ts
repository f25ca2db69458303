/**
 * The admission gates, in the order a run meets them (engine/admission.ts composes them). Each has one
 * reason; the entry gates (storm, pause, budget, silence) apply once, before a run first acts: a run resumed
 * after a crash or a hand-back has been admitted already.
 */
import { LeaseLostError } from './errors.js';
import { PASS, WORKER_ID, type Admission, type AdmissionDeps, type Gate, type Verdict } from './admission.js';
import { isFinal } from './record.js';
import { cancelReason } from './run.js';

/** An operator asked to cancel the run before it started (console or CLI): it ends without acting. */
export const operatorCancel: Gate = {
  name: 'operator-cancel',
  async check(run, deps) {
    const { record } = run;
    if (run.started || record.cancelRequested === undefined) return PASS;
    Object.assign(record, {
      state: 'cancelled',
      reason: cancelReason(record.cancelRequested, 'before the run started'),
      endedAt: new Date().toISOString(),
    });
    await deps.store.save(record);
    deps.metrics.runs.inc({ procedure: run.procedure.id, outcome: 'cancelled' });
    return { kind: 'finish', state: record.state };
  },
};

/** The alert resolved before the run started: nothing to do. */
export const resolvedCancel: Gate = {
  name: 'resolved-cancel',
  async check(run, deps) {
    const { record } = run;
    if (run.started || record.resolvedAt === undefined) return PASS;
    Object.assign(record, {
      state: 'cancelled',
      reason: `alert resolved at ${record.resolvedAt}, before the run started`,
      endedAt: new Date().toISOString(),
    });
    await deps.store.save(record);
    return { kind: 'finish', state: record.state };
  },
};

/**
 * One remediation per target: the run takes the target's lease or waits for the run that holds it. While it
 * runs, the lease is renewed; when it is lost (another run holds it now, or no renewal succeeded within its
 * TTL) the run may not act again: its next action attempt stops (Admission.lost). Released when the run ends.
 */
export const targetLease: Gate = {
  name: 'target-lease',
  async check(run, deps) {
    const { record } = run;
    let holder: string | undefined;
    if (deps.entry !== undefined) {
      // One round trip: the lease, and for a run not started before the storm note and the pause state as well.
      const { holder: other, ...entered } = await deps.entry.enter(
        record.target,
        record.id,
        run.started ? undefined : { windowMs: deps.storm.windowMs },
      );
      holder = other;
      if (holder === undefined) run.entered = entered;
    } else holder = await deps.leases.acquire(record.target, record.id);
    if (holder !== undefined) {
      record.reason = `waiting: run ${holder} is remediating the same target`;
      await deps.store.save(record);
      run.log.info({ holder }, 'target busy, run deferred');
      const busy = deps.targetBusyRetryMs ?? 2000;
      return { kind: 'defer', delayMs: busy + Math.floor(Math.random() * busy) };
    }
    record.worker = WORKER_ID;
    const ttl = deps.leases.leaseTtlMs;
    let renewedAt = Date.now();
    const lose = (why: string) => {
      if (run.lost.signal.aborted) return;
      run.log.error({ why }, 'target lease lost; the run stops acting');
      run.lost.abort(new LeaseLostError(`run ${record.id} lost its lease on target ${record.target}: ${why}`));
    };
    const renew = setInterval(
      () =>
        void deps.leases.acquire(record.target, record.id).then(
          (other) => (other === undefined ? (renewedAt = Date.now()) : lose(`run ${other} holds it now`)),
          (err: Error) => {
            run.log.warn({ err: err.message }, 'could not renew the target lease');
            if (Date.now() - renewedAt >= ttl) lose(`not renewed for ${Date.now() - renewedAt} ms (TTL ${ttl} ms)`);
          },
        ),
      deps.leaseRenewMs ?? Math.max(1000, ttl / 3),
    );
    run.onFinish(async () => {
      clearInterval(renew);
      if (isFinal(record.state)) await deps.leases.release(record.target, record.id);
    });
    return PASS;
  },
};

/** Many distinct targets firing at once is a wider incident: pause automation (the pause gate then applies). */
export const stormBreaker: Gate = {
  name: 'storm-breaker',
  async check(run, deps) {
    if (run.started) return PASS;
    const { targets, windowMs } = deps.storm;
    const firing = run.entered?.firing ?? (await deps.automation.noteTarget(run.record.target, windowMs));
    if (firing > targets) {
      await deps.automation.pause(
        `storm: ${firing} distinct targets firing within ${windowMs / 1000}s (threshold ${targets})`,
        'storm-breaker',
      );
      delete run.entered?.pause; // read before this pause: the pause gate asks again
    }
    return PASS;
  },
};

/** Automation paused (kill switch or storm breaker): the run records the plan of what would have run, nothing more. */
export const pause: Gate = {
  name: 'pause',
  async check(run, deps) {
    if (run.started) return PASS;
    const state = run.entered?.pause ?? (await deps.automation.state());
    if (state.paused) run.paused = { reason: state.reason ?? 'by hand' };
    return PASS;
  },
};

/** Past the procedure's budget on this target: no action; escalate once per window with the history. */
export const budget: Gate = {
  name: 'budget',
  async check(run, deps): Promise<Verdict> {
    const { record, procedure } = run;
    if (run.started || run.paused || procedure.budget === undefined) return PASS;
    const { runs, per } = procedure.budget;
    if (await deps.budgets.takeBudget(procedure.id, record.target, record.id, runs, per)) return PASS;
    const history = await deps.budgets.budgetHistory(procedure.id, record.target);
    Object.assign(record, {
      state: 'skipped',
      reason: `budget exhausted: ${runs} runs per ${per / 1000}s on this target (runs ${history.join(', ')}); no action taken`,
      startedAt: new Date().toISOString(),
      endedAt: new Date().toISOString(),
    });
    if (await deps.budgets.claimBudgetNotice(procedure.id, record.target, per)) {
      await deps.escalate(record, procedure, 'budget-exhausted');
      if (record.escalations.some((e) => e.status === 'sent')) record.state = 'escalated';
    } else {
      record.reason += '; escalated already in this window';
    }
    await deps.store.save(record);
    deps.metrics.runs.inc({ procedure: procedure.id, outcome: record.state });
    return { kind: 'finish', state: record.state };
  },
};

/** Rule `silence`: silence exactly this alert (all its labels) in Alertmanager while the run acts; expire it at the end. */
export const silence: Gate = {
  name: 'silence',
  async check(run, deps) {
    const { record, procedure } = run;
    const silencer = deps.silencer;
    if (silencer !== undefined && record.silence !== undefined && !record.silence.expired) expireAtEnd(run, deps);
    if (run.started || run.paused || !procedure.silence || silencer === undefined) return PASS;
    const until = new Date(Date.now() + procedure.silence.for);
    const matchers = Object.entries(record.alert.labels).map(([name, value]) => ({ name, value, isRegex: false, isEqual: true }));
    try {
      const id = await silencer.createSilence(matchers, until, `remediator: ${procedure.id} run ${record.id} in progress`);
      record.silence = { id, until: until.toISOString() };
      expireAtEnd(run, deps);
    } catch (err) {
      run.log.warn({ err: (err as Error).message }, 'could not silence the alert; going on without');
    }
    return PASS;
  },
};

function expireAtEnd(run: Admission, deps: AdmissionDeps): void {
  run.onFinish(async () => {
    const { record } = run;
    if (!record.silence || record.silence.expired || !isFinal(record.state)) return;
    await deps.silencer!.expireSilence(record.silence.id).then(
      async () => {
        record.silence!.expired = true;
        await deps.store.save(record).catch(() => {});
      },
      (err: Error) => run.log.warn({ err: err.message }, 'could not expire the silence; it ends by itself'),
    );
  });
}

/** Every gate, in order. */
export const GATES: readonly Gate[] = [operatorCancel, resolvedCancel, targetLease, stormBreaker, pause, budget, silence];
