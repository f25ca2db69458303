import type { Logger } from 'pino';
import type { StepState } from '../checks/types.js';
import type { Metrics } from '../metrics.js';
import type { PrometheusClient } from '../prometheus/client.js';
import { verifies, type EscalationWhen, type Procedure } from '../rules/schema.js';
import { envRedactor } from '../redact.js';
import { createRender, type TemplateScope } from '../template.js';
import { MEASURED_STATES, type RunRecord, type RunState, type StepRecord } from './record.js';
import { escalationsFor } from './escalate.js';
import { runStep, type StepSettings } from './step.js';

/** The P1 SLA when a procedure names none. */
export const DEFAULT_SLA_MS = 15 * 60_000;

export interface EngineDeps {
  prometheus: PrometheusClient;
  /** Persists the record (the checkpoint); throws when another worker owns the run now. */
  save(record: RunRecord): Promise<void>;
  /** Sends the procedure's escalations for this outcome and returns what was sent. */
  escalate(record: RunRecord, procedure: Procedure, when: EscalationWhen): Promise<void>;
  /** Reads whether the alert has resolved meanwhile (cancellation at step boundaries). */
  resolvedAt(runId: string): Promise<string | undefined>;
  /** Reads whether an operator asked to cancel the run (checked at step boundaries: the current step finishes). */
  cancelRequested?(runId: string): Promise<RunRecord['cancelRequested']>;
  metrics: Metrics;
  log: Logger;
  settings: StepSettings;
  env?: Readonly<Record<string, string | undefined>>;
  /** Throws when this worker may no longer act for the run (its target lease was lost); asked before every action. */
  mayAct?(): void;
}

export function templateScope(
  procedure: Procedure,
  record: RunRecord,
  env: Readonly<Record<string, string | undefined>>,
): TemplateScope {
  return { labels: record.alert.labels, annotations: record.alert.annotations, vars: procedure.vars, env };
}

function newStepRecord(procedure: Procedure, index: number): StepRecord {
  const step = procedure.steps[index]!;
  return {
    name: step.name,
    ...(step.description !== undefined ? { description: step.description } : {}),
    status: 'unknown',
    observed: [],
    attempts: 0,
    ...(step.estimate !== undefined ? { estimate: step.estimate } : {}),
  };
}

export function procedureEstimate(procedure: Procedure): number | undefined {
  if (procedure.estimate !== undefined) return procedure.estimate;
  const parts = procedure.steps.map((s) => s.estimate).filter((e): e is number => e !== undefined);
  return parts.length > 0 ? parts.reduce((a, b) => a + b, 0) : undefined;
}

/**
 * Runs a procedure from its checkpoint to an outcome: steps in order, `when` conditions, onFailure,
 * escalation. Every step boundary is saved, so a worker that dies leaves a record another can resume.
 */
export async function runProcedure(
  procedure: Procedure,
  record: RunRecord,
  deps: EngineDeps,
  signal: AbortSignal,
): Promise<RunRecord> {
  // Logged reasons and errors can quote an action's output: `{{ env.X }}` values are redacted there too (redact.ts).
  const redact = envRedactor(procedure, deps.env ?? process.env);
  const scrub = (value: unknown) => redact(value);
  const log = deps.log.child(
    { runId: record.id, procedure: procedure.id },
    { serializers: { reason: scrub, err: scrub, checkpoint: scrub } },
  );
  const scope = templateScope(procedure, record, deps.env ?? process.env);
  const render = createRender(scope);
  const states = new Map<string, StepState>();
  for (const s of record.steps) states.set(s.name, { status: s.status, ...(s.result ? { result: s.result } : {}) });

  const resumeAt = record.checkpoint?.index ?? record.steps.length;
  const resumedAfterAction = record.checkpoint !== undefined && record.checkpoint.phase !== 'when';
  // The command the dead worker's attempt started, if any: fenced before this worker acts again (step.ts).
  const previousRunning = record.checkpoint?.running;
  if (record.checkpoint !== undefined) {
    record.takeovers += 1;
    log.warn({ step: procedure.steps[resumeAt]?.name, phase: record.checkpoint.phase }, 'resuming a run another worker left');
  }
  record.state = 'running';
  record.startedAt ??= new Date().toISOString();
  // The procedure's deadline counts from the run's first start, across takeovers.
  const deadline = procedure.timeout !== undefined ? Date.parse(record.startedAt) + procedure.timeout : undefined;
  const timeout = deadline !== undefined ? AbortSignal.timeout(Math.max(0, deadline - Date.now())) : undefined;
  const runSignal = timeout ? AbortSignal.any([signal, timeout]) : signal;
  const estimate = procedureEstimate(procedure);
  record.sla = { ...(estimate !== undefined ? { estimateMs: estimate } : {}), slaMs: procedure.sla ?? DEFAULT_SLA_MS };
  // A save may wait for the next one when nothing outside this process happens in between (no query, no action, no
  // escalation): a crash there leaves the same record to resume from, and the run makes one Redis write less.
  let deferred = false;
  const save = async () => {
    deferred = false;
    await deps.save(record);
  };
  const first = procedure.steps[resumeAt];
  // A fresh run whose first step acts at once: its 'action' checkpoint (saved before the action) records 'running' too.
  const actsAtOnce =
    record.checkpoint === undefined &&
    first?.when === undefined &&
    first?.action !== undefined &&
    record.resolvedAt === undefined &&
    timeout === undefined;
  if (actsAtOnce) deferred = true;
  else await save();

  let stop: { state: RunState; when?: EscalationWhen; reason: string } | undefined;
  // The step index before which the run learned that the alert resolved: what was verified before it counts.
  let resolvedBefore = record.resolvedAt !== undefined ? resumeAt : undefined;
  for (let i = resumeAt; i < procedure.steps.length && stop === undefined; i++) {
    const step = procedure.steps[i]!;
    const stepLog = log.child({ step: step.name });
    const stepRecord = record.steps[i] ?? newStepRecord(procedure, i);
    record.steps[i] = stepRecord;
    const resumed = i === resumeAt && resumedAfterAction;
    if (timeout?.aborted) {
      stop = {
        state: 'failed',
        when: 'timeout',
        reason: `procedure timeout of ${procedure.timeout! / 1000}s reached before step ${step.name}`,
      };
      break;
    }
    if (record.resolvedAt !== undefined && step.action !== undefined) {
      // The alert resolved: no further action; steps that only verify still run.
      Object.assign(stepRecord, {
        status: 'skipped',
        reason: `alert resolved at ${record.resolvedAt}: no further action`,
        endedAt: new Date().toISOString(),
      });
      deps.metrics.steps.inc({ procedure: procedure.id, step: step.name, status: 'skipped' });
      await save();
      continue;
    }
    const outcome = await runStep(
      {
        run: { id: record.id, procedure: procedure.id },
        step,
        render,
        scope,
        states,
        prometheus: deps.prometheus,
        settings: deps.settings,
        signal: runSignal,
        log: stepLog,
        resumedAfterAction: resumed,
        ...(resumed && previousRunning !== undefined ? { previous: previousRunning } : {}),
        track: async (running) => {
          if (record.checkpoint === undefined) return;
          record.checkpoint.running = running;
          await save();
        },
        ...(deps.mayAct ? { mayAct: () => deps.mayAct!() } : {}),
        checkpoint: async (phase, attempt) => {
          record.checkpoint = { index: i, phase, attempt, at: new Date().toISOString() };
          await save();
        },
      },
      stepRecord,
    ).catch((err: unknown) => {
      // Only the procedure's own deadline is handled here; a worker shutdown propagates (the run resumes elsewhere).
      if (!timeout?.aborted || signal.aborted) throw err;
      stepRecord.status = 'failed';
      stepRecord.reason = `aborted: procedure timeout of ${procedure.timeout! / 1000}s reached`;
      stepRecord.endedAt = new Date().toISOString();
      return stepRecord;
    });
    record.steps[i] = outcome;
    if (timeout?.aborted && !signal.aborted)
      stop = { state: 'failed', when: 'timeout', reason: outcome.reason ?? 'procedure timeout' };
    delete record.checkpoint;
    deps.metrics.steps.inc({ procedure: procedure.id, step: step.name, status: outcome.status });
    if (outcome.durationMs !== undefined)
      deps.metrics.stepDuration.observe({ procedure: procedure.id, step: step.name }, outcome.durationMs / 1000);
    if (outcome.overEstimate) deps.metrics.stepOverEstimate.inc({ procedure: procedure.id, step: step.name });
    if (outcome.expect && verifies(step)) {
      const result = outcome.expect.holds ? 'holds' : outcome.expect.unknown ? 'unknown' : 'not_holds';
      deps.metrics.verifications.inc({ procedure: procedure.id, result });
    }
    stepLog.info({ status: outcome.status, reason: outcome.reason, durationMs: outcome.durationMs }, 'step finished');
    // After the last step the outcome's save follows (preceded by this one only if an escalation goes out first).
    if (i + 1 < procedure.steps.length) await save();
    else deferred = true;

    if (stop === undefined && (outcome.status === 'failed' || outcome.status === 'unknown')) {
      const when: EscalationWhen = outcome.status === 'unknown' ? 'unknown' : 'failed';
      const reason = `step ${step.name} ${outcome.status}: ${outcome.reason ?? ''}`.trim();
      if (step.onFailure === 'abort') stop = { state: 'failed', reason };
      else if (step.onFailure !== 'continue') stop = { state: 'failed', when, reason };
    }
    if (stop === undefined && record.resolvedAt === undefined && i + 1 < procedure.steps.length) {
      const resolvedAt = await deps.resolvedAt(record.id);
      if (resolvedAt !== undefined) {
        record.resolvedAt = resolvedAt;
        resolvedBefore = i + 1;
      }
    }
    if (stop === undefined && i + 1 < procedure.steps.length && deps.cancelRequested) {
      const cancel = await deps.cancelRequested(record.id);
      if (cancel !== undefined) {
        record.cancelRequested = cancel;
        stop = { state: 'cancelled', reason: cancelReason(cancel, `after step ${step.name}`) };
      }
    }
  }

  if (stop === undefined) {
    const executed = record.steps.filter((s) => s.status !== 'skipped');
    const last = executed.at(-1);
    if (deps.settings.dryRun) record.planOnly = deps.settings.planReason !== undefined ? 'paused' : 'dry-run';
    if (deps.settings.dryRun && deps.settings.planReason !== undefined)
      stop = { state: 'skipped', when: 'paused', reason: deps.settings.planReason };
    else if (deps.settings.dryRun) stop = { state: 'skipped', reason: 'dry run: the plan is recorded, nothing was executed' };
    else if (last === undefined) stop = { state: 'skipped', reason: 'no step applied (every condition was false)' };
    else if (last.status === 'passed' && resolvedBefore !== undefined && !verifiedBefore(procedure, record, resolvedBefore))
      // Whatever ran, the alert went away before anything confirmed a fix: the run cannot claim it.
      stop = {
        state: 'resolved',
        reason: `alert resolved at ${record.resolvedAt} before anything was verified${
          record.steps.slice(resumeAt, resolvedBefore).some((s) => s.result !== undefined) ? ' (actions had run)' : ''
        }; not counted as a success`,
      };
    else if (last.status === 'passed' && verifies(procedure.steps[record.steps.indexOf(last)]!))
      stop = { state: 'succeeded', reason: `verified by step ${last.name}${last.reason ? `: ${last.reason}` : ''}` };
    else if (last.status === 'passed') {
      const step = procedure.steps[record.steps.indexOf(last)]!;
      stop = {
        state: 'failed',
        when: 'unknown',
        reason: `nothing verified: the last step that ran, ${last.name}, ${
          step.expect === undefined ? 'has no expectation' : 'only diagnoses (verifies: false)'
        }`,
      };
    } else
      stop = {
        state: 'failed',
        when: last.status === 'unknown' ? 'unknown' : 'failed',
        reason: `last step ${last.name} ${last.status}: ${last.reason ?? ''}`.trim(),
      };
  }

  const escalateFor: EscalationWhen | undefined = stop.when ?? (stop.state === 'succeeded' ? 'succeeded' : undefined);
  // `paused` always goes to the escalator: it owns the one notice about the pause, whatever the procedure lists.
  const escalates = escalateFor !== undefined && (escalateFor === 'paused' || escalationsFor(procedure, escalateFor).length > 0);
  // The last step's record is saved before anything leaves this process (its state still 'running').
  if (deferred && escalates) await save();
  record.state = stop.state;
  record.reason = stop.reason;
  record.endedAt = new Date().toISOString();
  finishSla(record);
  // Escalate before saving the outcome, so readers never see `failed` turn into `escalated` a moment later.
  if (escalateFor !== undefined && escalates) {
    await deps.escalate(record, procedure, escalateFor);
    const acted = escalateFor !== 'succeeded' && escalateFor !== 'paused';
    if (acted && record.escalations.some((e) => e.status === 'sent')) record.state = 'escalated';
  }
  await save();
  const durationS = (Date.parse(record.endedAt) - Date.parse(record.startedAt)) / 1000;
  deps.metrics.runs.inc({ procedure: procedure.id, outcome: record.state });
  deps.metrics.runDuration.observe({ procedure: procedure.id, outcome: record.state }, durationS);
  if (record.sla.slaMs && MEASURED_STATES.has(record.state))
    deps.metrics.runSlaRatio.observe({ procedure: procedure.id }, (durationS * 1000) / record.sla.slaMs);
  log.info({ state: record.state, reason: record.reason, durationS }, 'run finished');
  return record;
}

/** "cancelled by alice at 2026-…Z after step restart-relay: wrong target". */
export function cancelReason(cancel: NonNullable<RunRecord['cancelRequested']>, where: string): string {
  return `cancelled by ${cancel.by} at ${cancel.at} ${where}${cancel.reason ? `: ${cancel.reason}` : ''}`;
}

/** Whether a step that verifies passed before step index `before` (when the run learned the alert resolved). */
function verifiedBefore(procedure: Procedure, record: RunRecord, before: number): boolean {
  return record.steps.slice(0, before).some((s, i) => s.status === 'passed' && verifies(procedure.steps[i]!));
}

function finishSla(record: RunRecord): void {
  const actual = Date.parse(record.endedAt!) - Date.parse(record.startedAt!);
  record.sla.actualMs = actual;
  // Within estimate / SLA is a claim about a remediation: a run that did not act and judge (resolved, skipped,
  // cancelled) makes none.
  if (!MEASURED_STATES.has(record.state)) return;
  if (record.sla.estimateMs !== undefined) record.sla.withinEstimate = actual <= record.sla.estimateMs;
  if (record.sla.slaMs !== undefined) record.sla.withinSla = actual <= record.sla.slaMs;
}
