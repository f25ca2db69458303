import type { RunningProcess } from '../actions/process-guard.js';
import type { ActionResult } from '../actions/types.js';
import type { Observation, StepStatus } from '../checks/types.js';

/**
 * `succeeded` only when a verification passed (engine/run.ts); `resolved`: the alert resolved before anything was
 * verified, so the run cannot say it fixed anything (not a success in metrics or SLA figures).
 */
export const RUN_STATES = ['queued', 'running', 'succeeded', 'failed', 'escalated', 'cancelled', 'skipped', 'resolved'] as const;
export type RunState = (typeof RUN_STATES)[number];
export const FINAL_STATES: ReadonlySet<RunState> = new Set([
  'succeeded',
  'failed',
  'escalated',
  'cancelled',
  'skipped',
  'resolved',
]);
/** Outcomes of runs that acted and judged the target: the ones SLA figures count. */
export const MEASURED_STATES: ReadonlySet<RunState> = new Set(['succeeded', 'failed', 'escalated']);

export interface CheckRecord {
  /** What was checked, in words ("supervisor_ipc_up{…} == 1 within 30s"). */
  description: string;
  holds: boolean;
  unknown: boolean;
  reason?: string;
  observed: Observation[];
  attempts: number;
  elapsedMs: number;
}

export interface StepRecord {
  name: string;
  /** After a takeover: what was done about the previous attempt's command before acting again. */
  fenced?: string;
  description?: string;
  status: StepStatus;
  reason?: string;
  when?: CheckRecord;
  action?: { kind: string; spec: unknown; description: string };
  result?: ActionResult;
  /** The expectation as written (rendered), and what was seen. */
  expect?: CheckRecord & { spec: unknown };
  observed: Observation[];
  attempts: number;
  startedAt?: string;
  endedAt?: string;
  durationMs?: number;
  /** The runbook's estimate in ms, beside the actual duration. */
  estimate?: number;
  overEstimate?: boolean;
}

export interface EscalationRecord {
  when: string;
  to: string;
  status: 'sent' | 'failed';
  error?: string;
  at: string;
  message: string;
}

/** Something an operator did to a run (console or CLI): who, when, why. `by` is self-declared; the token is shared. */
export interface OperatorAction {
  /** acknowledge: an operator resolved the run's escalation; escalation-resolved: a later run verified the target. */
  action: 'cancel' | 'retry' | 'acknowledge' | 'escalation-resolved';
  by: string;
  at: string;
  reason?: string;
  /** For retry: the new run's id. */
  runId?: string;
}

export interface RunRecord {
  id: string;
  procedure: string;
  title: string;
  target: string;
  state: RunState;
  /** Why it ended this way, in words. */
  reason?: string;
  alert: {
    labels: Record<string, string>;
    annotations: Record<string, string>;
    fingerprint: string;
    startsAt: string;
    status: 'firing' | 'resolved';
    generatorURL?: string;
  };
  /** Who or what triggered it: the webhook receiver (with the Alertmanager group key), or an operator's re-run. */
  trigger: { source: 'alertmanager' | 'operator'; receiver?: string; groupKey?: string; receivedAt: string; by?: string };
  /** A re-run: the run of the same incident it repeats. */
  rerunOf?: string;
  /** Re-runs of this one, oldest first (kept beside the record, like resolvedAt). */
  reruns?: string[];
  /** An operator asked to cancel: a queued run ends at once, a running one after its current step. */
  cancelRequested?: { by: string; at: string; reason?: string };
  /** What operators did to this run. */
  audit?: OperatorAction[];
  dryRun: boolean;
  startedAt?: string;
  endedAt?: string;
  steps: StepRecord[];
  escalations: EscalationRecord[];
  /** Checkpoint: the step being executed and in which phase, so a takeover resumes there. */
  checkpoint?: {
    index: number;
    phase: 'when' | 'action' | 'verify';
    attempt: number;
    at: string;
    /** The command the action started, while it runs: a takeover fences it before acting again. */
    running?: RunningProcess;
  };
  /** Fencing epoch: BullMQ's attemptsStarted of the worker that last wrote this record. */
  epoch: number;
  /** The worker (host:pid) that last ran it. */
  worker?: string;
  /** Alertmanager silence held while the run acts (rule `silence`). */
  silence?: { id: string; until: string; expired?: boolean };
  /** Takeovers after a worker died mid-run. */
  takeovers: number;
  /** Set when the alert resolved: a run not yet started is cancelled; a running one finishes its step. */
  resolvedAt?: string;
  sla: { estimateMs?: number; slaMs?: number; actualMs?: number; withinEstimate?: boolean; withinSla?: boolean };
  /**
   * The run only recorded its plan: in dry-run, or while automation was paused. Such an outcome does not use up the
   * incident: a later delivery, when automation acts, reopens it (queue/records.ts reopen).
   */
  planOnly?: 'dry-run' | 'paused';
  /** What was cut to keep the stored record within its size (engine/record-cap.ts), one note per field. */
  truncated?: string[];
}

export function isFinal(state: RunState): boolean {
  return FINAL_STATES.has(state);
}

/** What a new run is made of: the incident, what triggered it, and whether it only records its plan. */
export interface NewRun {
  id: string;
  procedure: string;
  title: string;
  target: string;
  alert: Omit<RunRecord['alert'], 'annotations'> & { annotations?: Record<string, string> | undefined };
  trigger: RunRecord['trigger'];
  dryRun: boolean;
  /** A re-run: the run of the same incident it repeats. */
  rerunOf?: string | undefined;
}

/**
 * The one way to make a run record (the webhook on arrival, the worker when the record went missing, tests):
 * queued, no step yet, epoch 0.
 */
export function newRunRecord(run: NewRun): RunRecord {
  return {
    id: run.id,
    procedure: run.procedure,
    title: run.title,
    target: run.target,
    state: 'queued',
    alert: { ...run.alert, annotations: run.alert.annotations ?? {} },
    trigger: run.trigger,
    ...(run.rerunOf !== undefined ? { rerunOf: run.rerunOf } : {}),
    dryRun: run.dryRun,
    steps: [],
    escalations: [],
    epoch: 0,
    takeovers: 0,
    sla: {},
  };
}
