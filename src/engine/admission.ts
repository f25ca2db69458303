/**
 * Run admission: before a run acts it passes gates, each a small unit with one reason, composed once in a
 * fixed order, the way Alertmanager's notify pipeline composes its stages (dedup, retry, set-notifies):
 *
 *   operator-cancel → resolved-cancel → target lease → storm breaker → pause → budget → silence → runProcedure
 *
 * A gate lets the run through (possibly changing how it runs: the pause gate makes it record its plan only),
 * finishes it (cancelled, skipped for budget), or defers it (its target is busy). Gates that take something
 * (the target lease, a silence) hand it back through `onFinish`. The queue (queue/worker.ts) only maps BullMQ
 * to `admitAndRun`; the stores are ports here, implemented on Redis in queue/.
 */
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { Metrics } from '../metrics.js';
import type { Procedure } from '../rules/schema.js';
import type { Escalator, Notifier } from './escalate.js';
import { isFinal, newRunRecord, type NewRun, type RunRecord, type RunState } from './record.js';
import { runProcedure, type EngineDeps } from './run.js';

/** Run records: read, saved with fencing (save throws when a newer worker owns the run). */
export interface RunStore {
  get(id: string): Promise<RunRecord | undefined>;
  save(record: RunRecord): Promise<void>;
  resolvedAt(id: string): Promise<string | undefined>;
  /** An operator's request to cancel the run, if any (kept beside the record, like resolvedAt). */
  cancelRequest(id: string): Promise<RunRecord['cancelRequested']>;
}

/** The per-target lease, owned by a run: one remediation per target at a time. */
export interface TargetLeases {
  readonly leaseTtlMs: number;
  /** Undefined when this run holds (or renewed) the target now; otherwise the run that holds it. */
  acquire(target: string, runId: string): Promise<string | undefined>;
  release(target: string, runId: string): Promise<void>;
}

/** Per procedure and target: how many runs may act in a window. */
export interface Budgets {
  takeBudget(procedure: string, target: string, runId: string, runs: number, perMs: number): Promise<boolean>;
  /** True for the first exhausted run of a window: it escalates, later ones only record. */
  claimBudgetNotice(procedure: string, target: string, windowMs: number): Promise<boolean>;
  budgetHistory(procedure: string, target: string): Promise<string[]>;
}

/** The kill switch and the storm breaker's memory. */
export interface Automation {
  state(): Promise<{ paused: boolean; reason?: string }>;
  pause(reason: string, by: string): Promise<boolean>;
  claimPauseNotice(): Promise<boolean>;
  noteTarget(target: string, windowMs: number): Promise<number>;
}

/**
 * Optional: the lease gate's round trip carrying what the storm-breaker and pause gates ask right after it, so a
 * run's entry costs one round trip instead of three. In this order: the target's lease taken or renewed (as
 * TargetLeases.acquire); then, only when it was and `storm` is given (a run not started before), the target noted for
 * the storm breaker (as Automation.noteTarget) and the pause state read (as Automation.state). Nothing after the lease
 * when another run holds it.
 */
export interface RunEntry {
  enter(target: string, runId: string, storm: { windowMs: number } | undefined): Promise<Entered>;
}

/** What RunEntry.enter learned: the lease's other holder, or the storm breaker's count and the pause state (when asked). */
export interface Entered {
  holder?: string;
  firing?: number;
  pause?: { paused: boolean; reason?: string };
}

/** Alertmanager silences (rule `silence`). */
export interface Silencer {
  createSilence(
    matchers: { name: string; value: string; isRegex: boolean; isEqual?: boolean }[],
    endsAt: Date,
    comment: string,
  ): Promise<string>;
  expireSilence(id: string): Promise<void>;
}

export interface AdmissionDeps {
  store: RunStore;
  leases: TargetLeases;
  budgets: Budgets;
  automation: Automation;
  /** The lease, storm and pause gates' questions in one round trip (RunEntry); without it each gate asks its own. */
  entry?: RunEntry | undefined;
  storm: { targets: number; windowMs: number };
  /** Absent without ALERTMANAGER_URL: rule `silence` is then not applied. */
  silencer?: Silencer | undefined;
  escalate: Escalator;
  /** Procedure-independent notices (the storm breaker's pause). */
  notify: Notifier;
  metrics: Metrics;
  log: Logger;
  /** The engine's own dependencies (Prometheus, step settings). */
  engine: Omit<EngineDeps, 'save' | 'escalate' | 'resolvedAt' | 'cancelRequested' | 'log' | 'mayAct'>;
  /** How long a deferred run waits before it looks again (default 2 s, jittered up to twice that). */
  targetBusyRetryMs?: number;
  /** How often the lease is renewed while the run holds it (default a third of its TTL, at least 1 s). */
  leaseRenewMs?: number;
  /** A run ended verified healthy (succeeded): earlier escalations of its procedure on its target can be resolved. */
  onVerified?: (record: RunRecord) => Promise<void>;
}

/** One run going through the gates. Gates read it and may change how it runs. */
export interface Admission {
  record: RunRecord;
  readonly procedure: Procedure;
  /** The run acted before (a resume after a crash or a hand-back): the entry gates do not apply again. */
  readonly started: boolean;
  readonly log: Logger;
  /**
   * What the lease gate's entry round trip (RunEntry) learned for the storm-breaker and pause gates; a gate that
   * changes what it saw (the storm breaker pausing automation) drops that part, so the next gate asks again.
   */
  entered?: Omit<Entered, 'holder'>;
  /** Set by the pause gate: automation is paused (why), so the run records its plan only. */
  paused?: { reason: string };
  /** Aborted when this worker may no longer act for the run (its lease was lost). */
  readonly lost: AbortController;
  /** Undone when the run leaves this worker, whatever the outcome (last registered, first undone). */
  onFinish(undo: () => Promise<void>): void;
}

/** What a gate decides. `finish`: the gate has ended and saved the run in this state. */
export type Verdict = { kind: 'pass' } | { kind: 'finish'; state: RunState } | { kind: 'defer'; delayMs: number };

export interface Gate {
  /** The gate's name in logs and tests: `target-lease`. */
  readonly name: string;
  check(run: Admission, deps: AdmissionDeps): Promise<Verdict>;
}

export const PASS: Verdict = { kind: 'pass' };

/** The worker (host:pid) recorded on the runs it runs. */
export const WORKER_ID = `${hostname()}:${process.pid}`;

export { LeaseLostError } from './errors.js';

export type RunOutcome = { kind: 'done'; state: RunState } | { kind: 'defer'; delayMs: number };

/** A job as the queue delivers it: the run to make or resume, and the delivery's fencing epoch. */
export interface RunRequest {
  run: Omit<NewRun, 'title' | 'dryRun'>;
  /** BullMQ's attemptsStarted: fences this delivery's saves against older ones. */
  epoch: number;
}

/**
 * Takes a run from the queue through the gates to its outcome. Throws what the queue must handle: a
 * StaleEpochError (another worker owns the run), LeaseLostError, or the abort of `signal` (shutdown).
 */
export async function admitAndRun(
  request: RunRequest,
  procedures: ReadonlyMap<string, Procedure>,
  gates: readonly Gate[],
  deps: AdmissionDeps,
  signal: AbortSignal,
): Promise<RunOutcome> {
  const { run } = request;
  const log = deps.log.child({ runId: run.id, procedure: run.procedure });
  const procedure = procedures.get(run.procedure);
  const record =
    (await deps.store.get(run.id)) ??
    newRunRecord({ ...run, title: procedure?.title ?? run.procedure, dryRun: deps.engine.settings.dryRun });
  if (isFinal(record.state)) return { kind: 'done', state: record.state }; // a re-delivery after the outcome was saved
  record.epoch = request.epoch;

  if (procedure === undefined) {
    Object.assign(record, {
      state: 'failed',
      reason: `procedure ${run.procedure} is no longer loaded`,
      endedAt: new Date().toISOString(),
    });
    await deps.store.save(record);
    return { kind: 'done', state: record.state };
  }

  const undo: (() => Promise<void>)[] = [];
  const admission: Admission = {
    record,
    procedure,
    started: record.steps.length > 0 || record.checkpoint !== undefined,
    log,
    lost: new AbortController(),
    onFinish: (f) => void undo.push(f),
  };
  try {
    for (const gate of gates) {
      const verdict = await gate.check(admission, deps);
      if (verdict.kind === 'finish') return { kind: 'done', state: verdict.state };
      if (verdict.kind === 'defer') return verdict;
    }
    const paused = admission.paused;
    // Paused: recorded, not dropped; the plan of what would have run, nothing executed.
    const settings = paused
      ? {
          ...deps.engine.settings,
          dryRun: true,
          planReason: `automation paused (${paused.reason}): recorded the plan, executed nothing`,
        }
      : // A run taken by a DRY_RUN receiver records its plan whichever worker runs it (the safe side of a mixed rollout).
        record.dryRun
        ? { ...deps.engine.settings, dryRun: true }
        : deps.engine.settings;
    const finished = await runProcedure(
      procedure,
      record,
      {
        ...deps.engine,
        settings,
        save: (r) => deps.store.save(r),
        escalate: paused ? pauseEscalator(paused.reason, deps) : deps.escalate,
        resolvedAt: (id) => deps.store.resolvedAt(id),
        cancelRequested: (id) => deps.store.cancelRequest(id),
        mayAct: () => {
          if (admission.lost.signal.aborted) throw admission.lost.signal.reason;
        },
        log: deps.log,
      },
      signal,
    );
    if (finished.state === 'succeeded' && deps.onVerified)
      await deps
        .onVerified(finished)
        .catch((err: Error) =>
          log.warn({ err: err.message }, 'could not resolve open escalations; they stay open until the next healthy run'),
        );
    return { kind: 'done', state: finished.state };
  } finally {
    for (const f of undo.reverse())
      await f().catch((err: Error) => log.warn({ err: err.message }, 'could not undo an admission'));
  }
}

/** A paused run's escalation: the one notice about the pause (whoever claims it), then the procedure's `paused` entries. */
function pauseEscalator(reason: string, deps: AdmissionDeps): Escalator {
  return async (record, procedure) => {
    if (await deps.automation.claimPauseNotice())
      await deps.notify('paused', `Automatic remediation paused: ${reason}. Resume with POST /api/resume.`, record);
    await deps.escalate(record, procedure, 'paused');
  };
}
