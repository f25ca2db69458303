/**
 * What an operator can do to runs, from the API (`remediator runs …`) and the console alike, without Express:
 * cancel, re-run, read a step's chart data, pause and resume. Each action is recorded with who, when and why.
 */
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { isFinal, newRunRecord, type OperatorAction, type RunRecord } from '../engine/record.js';
import type { RangeQuery, RangeSeries } from '../prometheus/range.js';
import type { AutomationControl, PauseState } from '../queue/control.js';
import type { RunJob } from '../queue/queue.js';
import type { OpenEscalation } from '../queue/open-escalations.js';
import type { RecordStore } from '../queue/records.js';
import type { Procedure } from '../rules/schema.js';
import type { HandlerResponse } from './webhook.js';

export interface OperationsDeps {
  store: Pick<RecordStore, 'get' | 'create' | 'requestCancel' | 'appendAudit' | 'addRerun'>;
  enqueue(job: RunJob): Promise<void>;
  /** Promotes a delayed job (a run waiting for its target) so the worker sees a cancel at once. */
  wake(runId: string): Promise<void>;
  control: Pick<AutomationControl, 'state' | 'pause' | 'resume' | 'audit'>;
  procedures: ReadonlyMap<string, Procedure>;
  queryRange?: RangeQuery;
  /** Open escalation alerts (absent without ALERTMANAGER_URL). */
  escalations?: {
    open(): Promise<OpenEscalation[]>;
    resolve(match: (e: OpenEscalation) => boolean, why: string): Promise<OpenEscalation[]>;
  };
  log: Logger;
}

/** Who did it: a name the operator gave (console login, CLI $USER), cleaned to one short printable line. */
export function operatorName(raw: unknown): string {
  const name =
    typeof raw === 'string'
      ? raw
          .replace(/[^\p{L}\p{N} ._@+-]/gu, '')
          .trim()
          .slice(0, 64)
      : '';
  return name === '' ? 'anonymous' : name;
}

export function reasonText(raw: unknown): string | undefined {
  if (typeof raw !== 'string') return undefined;
  const text = raw
    // eslint-disable-next-line no-control-regex -- control characters are exactly what is replaced
    .replace(/[\u0000-\u001f\u007f]/g, ' ')
    .trim()
    .slice(0, 500);
  return text === '' ? undefined : text;
}

const now = () => new Date().toISOString();

export async function cancelRun(deps: OperationsDeps, id: string, by: string, reason?: string): Promise<HandlerResponse> {
  const run = await deps.store.get(id);
  if (run === undefined) return { status: 404, body: { error: `no run ${id}` } };
  if (isFinal(run.state)) return { status: 409, body: { error: `run ${id} has ended (${run.state}); nothing to cancel` } };
  const request = { by, at: now(), ...(reason ? { reason } : {}) };
  const outcome = await deps.store.requestCancel(id, request);
  if (outcome === 'already')
    return { status: 202, body: { runId: id, note: 'a cancel was requested already', cancelRequested: run.cancelRequested } };
  await deps.store.appendAudit(id, { action: 'cancel', ...request });
  // A run waiting (delayed) for its target is woken so it ends now, not at its next look.
  await deps.wake(id).catch(() => {});
  deps.log.warn({ runId: id, by, reason }, 'cancel requested by an operator');
  const when = run.state === 'queued' ? 'before it starts' : 'after its current step';
  return { status: 202, body: { runId: id, cancelRequested: request, note: `the run ends ${when}` } };
}

/** The id of re-run number n of a run: stable, so a double click creates one re-run, not two. */
export function rerunId(id: string, n: number): string {
  return `rerun-${createHash('sha256').update(`${id}|${n}`).digest('hex').slice(0, 40)}`;
}

/**
 * Re-runs an incident: a new run of the same procedure for the same alert, linked to the old one. It goes through
 * the queue like any run, so the target's lease and the procedure's budget apply (past the budget it escalates).
 */
export async function retryRun(deps: OperationsDeps, id: string, by: string, reason?: string): Promise<HandlerResponse> {
  const run = await deps.store.get(id);
  if (run === undefined) return { status: 404, body: { error: `no run ${id}` } };
  if (!isFinal(run.state))
    return { status: 409, body: { error: `run ${id} is still ${run.state}; cancel it or wait for its end` } };
  const procedure = deps.procedures.get(run.procedure);
  if (procedure === undefined) return { status: 409, body: { error: `procedure ${run.procedure} is no longer loaded` } };
  const newId = rerunId(id, (run.reruns?.length ?? 0) + 1);
  const at = now();
  const trigger: RunRecord['trigger'] = { source: 'operator', by, receivedAt: at };
  const record = newRunRecord({
    id: newId,
    procedure: run.procedure,
    title: procedure.title,
    target: run.target,
    alert: run.alert,
    trigger,
    rerunOf: id,
    dryRun: run.dryRun,
  });
  const created = await deps.store.create(record);
  await deps.enqueue({ runId: newId, procedure: run.procedure, target: run.target, alert: run.alert, trigger, rerunOf: id });
  if (created) {
    await deps.store.addRerun(id, newId);
    const entry: OperatorAction = { action: 'retry', by, at, runId: newId, ...(reason ? { reason } : {}) };
    await deps.store.appendAudit(id, entry);
    deps.log.warn({ runId: id, rerun: newId, by, reason }, 're-run requested by an operator');
  }
  return { status: 202, body: { runId: newId, rerunOf: id, created } };
}

/** The escalation alerts a run raised that are still open in Alertmanager. */
export async function openEscalationsOf(deps: OperationsDeps, id: string): Promise<OpenEscalation[]> {
  return deps.escalations ? (await deps.escalations.open()).filter((e) => e.runId === id) : [];
}

/**
 * An operator acknowledges a run's escalation: its RemediationEscalated alert is resolved in Alertmanager now
 * (instead of staying open until a later run verifies the target healthy), and the run records who and why.
 */
export async function acknowledgeRun(deps: OperationsDeps, id: string, by: string, reason?: string): Promise<HandlerResponse> {
  const run = await deps.store.get(id);
  if (run === undefined) return { status: 404, body: { error: `no run ${id}` } };
  if (deps.escalations === undefined)
    return { status: 409, body: { error: 'no ALERTMANAGER_URL: there are no escalation alerts to resolve' } };
  const at = now();
  const closed = await deps.escalations.resolve(
    (e) => e.runId === id,
    `acknowledged by ${by} at ${at}${reason ? `: ${reason}` : ''}`,
  );
  if (closed.length === 0) return { status: 409, body: { error: `run ${id} has no open escalation` } };
  await deps.store.appendAudit(id, { action: 'acknowledge', by, at, ...(reason ? { reason } : {}) });
  deps.log.warn({ runId: id, by, reason, alerts: closed.length }, 'escalation acknowledged by an operator');
  return { status: 200, body: { runId: id, resolved: closed.map((e) => e.alert.labels) } };
}

export async function pauseAutomation(deps: OperationsDeps, by: string, reason: string): Promise<HandlerResponse> {
  const changed = await deps.control.pause(reason, by);
  if (changed) await deps.control.audit({ action: 'pause', by, at: now(), reason });
  deps.log.warn({ reason, by, changed }, 'automation paused by an operator');
  const state: PauseState = await deps.control.state();
  return { status: changed ? 200 : 409, body: { ...state, ...(changed ? {} : { note: 'already paused' }) } };
}

export async function resumeAutomation(deps: OperationsDeps, by: string, reason?: string): Promise<HandlerResponse> {
  const changed = await deps.control.resume();
  if (changed) await deps.control.audit({ action: 'resume', by, at: now(), ...(reason ? { reason } : {}) });
  deps.log.warn({ by, changed }, 'automation resumed by an operator');
  return { status: 200, body: { ...(await deps.control.state()), resumed: changed } };
}

export interface StepSeries {
  runId: string;
  step: string;
  /** The rendered PromQL of the step's expectation, exactly as the run verified it. */
  query: string;
  op?: string;
  value?: number | string;
  start: number;
  end: number;
  stepSeconds: number;
  /** When the step ran: its action, then its verification window. */
  window: { start: number; end: number };
  series: RangeSeries[];
  observed: { labels: Record<string, string>; value: number | string | null; at: number }[];
  error?: string;
}

/** Which PromQL a step's chart shows: its expectation's, else its condition's; never anything from the request. */
export function stepQuery(run: RunRecord, index: number): { query: string; op?: string; value?: number | string } | undefined {
  const step = run.steps[index];
  for (const spec of [
    step?.expect?.spec,
    step?.when && 'spec' in step.when ? (step.when as { spec?: unknown }).spec : undefined,
  ]) {
    const s = spec as { promql?: unknown; op?: unknown; value?: unknown } | undefined;
    if (typeof s?.promql === 'string')
      return {
        query: s.promql,
        ...(typeof s.op === 'string' ? { op: s.op } : {}),
        ...(typeof s.value === 'number' || typeof s.value === 'string' ? { value: s.value } : {}),
      };
  }
  return undefined;
}

/**
 * The series of one step's PromQL expectation around the step (query_range through remediator, so the browser
 * needs neither Prometheus' address nor a way to send its own PromQL: the query comes from the run record only).
 */
export async function stepSeries(deps: OperationsDeps, id: string, index: number): Promise<HandlerResponse> {
  const run = await deps.store.get(id);
  if (run === undefined) return { status: 404, body: { error: `no run ${id}` } };
  const step = run.steps[index];
  const q = step ? stepQuery(run, index) : undefined;
  if (step === undefined || q === undefined)
    return { status: 404, body: { error: `run ${id} has no PromQL expectation at step ${index}` } };
  const stepStart = Date.parse(step.startedAt ?? run.startedAt ?? run.trigger.receivedAt);
  const stepEnd = step.endedAt ? Date.parse(step.endedAt) : Date.now();
  const span = Math.max(stepEnd - stepStart, 10_000);
  const start = stepStart - span;
  const end = Math.min(stepEnd + span, Date.now());
  const stepSeconds = Math.max(1, Math.ceil((end - start) / 1000 / 200));
  const body: StepSeries = {
    runId: id,
    step: step.name,
    ...q,
    start,
    end,
    stepSeconds,
    window: { start: stepStart, end: stepEnd },
    series: [],
    observed: step.observed.map((o) => ({ labels: o.labels, value: o.value, at: Date.parse(o.at) })),
  };
  if (deps.queryRange === undefined) return { status: 200, body: { ...body, error: 'no Prometheus configured' } };
  try {
    body.series = await deps.queryRange(q.query, start, end, stepSeconds);
  } catch (err) {
    body.error = (err as Error).message;
  }
  return { status: 200, body };
}
