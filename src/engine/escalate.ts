/**
 * The escalation policy around the targets (escalation/): which entries of a procedure apply, the notice
 * they send, retries with backoff, the webhook fallback, run records and metrics, once for every target, as
 * Alertmanager's RetryStage wraps any Notifier. A target only makes one attempt.
 */
import type { Logger } from 'pino';
import { stepResult, type StepResultSpec } from '../checks/step-result.js';
import type { StepState } from '../checks/types.js';
import { targetByKind, type ConfiguredTarget } from '../escalation/index.js';
import { EscalationError, type EscalationNotice, type Notice } from '../escalation/types.js';
import { withRetries } from '../http/retry.js';
import type { Metrics } from '../metrics.js';
import type { Escalation, EscalationWhen, Procedure } from '../rules/schema.js';
import { envRedactor } from '../redact.js';
import { createRender } from '../template.js';
import type { EscalationRecord, RunRecord } from './record.js';

/** Delivery attempts per target and notice. */
const ATTEMPTS = 3;
/** The target the run's escalation falls back to when none it lists could be reached. */
const FALLBACK = 'webhook';

export interface EscalatorDeps {
  /** The targets configured at start (escalation/index.ts configureTargets). */
  targets: ReadonlyMap<string, ConfiguredTarget>;
  timeoutMs: number;
  metrics: Metrics;
  log: Logger;
  /** Where a human can read the run: the console's run page at REMEDIATOR_EXTERNAL_URL. */
  runUrl?: (runId: string) => string;
  /** Where the procedure is described when the alert brings no runbook_url of its own (the console's procedures page). */
  runbookUrl?: (procedure: string) => string;
  /** Backoff base between delivery attempts (default 500 ms, with jitter). */
  retryDelayMs?: number;
  env?: Readonly<Record<string, string | undefined>>;
}

/** Evaluates an escalation's `if`/`unless` against the run's step results (never Prometheus). */
async function conditionHolds(spec: StepResultSpec, record: RunRecord, log: Logger): Promise<boolean> {
  const steps = new Map<string, StepState>(
    record.steps.map((s) => [s.name, { status: s.status, ...(s.result ? { result: s.result } : {}) }]),
  );
  const outcome = await stepResult.evaluate(spec, {
    signal: new AbortController().signal,
    log,
    steps,
    currentStep: record.steps.at(-1)?.name ?? '',
    prometheus: { query: () => Promise.reject(new Error('not used')), ready: async () => false },
  });
  return outcome.holds;
}

/** `failed` also covers `unknown` unless the procedure has an entry for `unknown` of its own. */
export function escalationsFor(procedure: Procedure, when: EscalationWhen): Escalation[] {
  const listed = (e: Escalation) => (Array.isArray(e.when) ? e.when : [e.when]);
  const direct = procedure.escalation.filter((e) => listed(e).includes(when));
  if (direct.length > 0 || when !== 'unknown') return direct;
  return procedure.escalation.filter((e) => listed(e).includes('failed'));
}

/** The attachments an escalation names, from the run record. */
export function attachments(record: RunRecord, attach: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const item of attach) {
    if (item === 'outputs')
      out.outputs = Object.fromEntries(
        record.steps.filter((s) => s.result).map((s) => [s.name, s.result?.output ?? s.result?.body ?? null]),
      );
    else if (item === 'metrics')
      out.metrics = Object.fromEntries(record.steps.filter((s) => s.observed.length > 0).map((s) => [s.name, s.observed]));
    else if (item === 'steps') out.steps = record.steps.map((s) => ({ name: s.name, status: s.status, reason: s.reason }));
    else if (item.startsWith('step:')) {
      const step = record.steps.find((s) => s.name === item.slice(5));
      out[item] = step ? { status: step.status, reason: step.reason, result: step.result, observed: step.observed } : null;
    }
  }
  return out;
}

/** One target, one notice: the target's attempts with backoff; throws the last error. */
function deliverer(deps: EscalatorDeps) {
  const delay = deps.retryDelayMs ?? 500;
  const signal = new AbortController().signal;
  return async (to: string, notice: Notice, log: Logger): Promise<void> => {
    const configured = deps.targets.get(to);
    if (configured === undefined) {
      throw new EscalationError(`${neededFor(to)} is not set`, false);
    }
    const { target, settings } = configured;
    const ctx = { signal, log, timeoutMs: deps.timeoutMs };
    await withRetries(() => target.send(notice, settings, ctx), {
      attempts: ATTEMPTS,
      baseDelayMs: delay,
      onRetry: (err, attempt, delayMs) =>
        log.warn({ to, attempt, delayMs, err: (err as Error).message }, 'escalation attempt failed; retrying'),
    });
  };
}

/**
 * Sends a run's escalations to the targets each entry lists. When none of them can be reached, the webhook is
 * the fallback even if the entry did not list it: a human must hear about it somehow.
 */
export function createEscalator(deps: EscalatorDeps) {
  const deliver = deliverer(deps);
  return async function escalate(record: RunRecord, procedure: Procedure, when: EscalationWhen): Promise<void> {
    const log = deps.log.child({ runId: record.id, procedure: procedure.id });
    const render = createRender({
      labels: record.alert.labels,
      annotations: record.alert.annotations,
      vars: procedure.vars,
      env: deps.env ?? process.env,
    });
    for (const escalation of escalationsFor(procedure, when)) {
      if (escalation.if !== undefined && !(await conditionHolds(escalation.if, record, log))) continue;
      if (escalation.unless !== undefined && (await conditionHolds(escalation.unless, record, log))) continue;
      let message: string;
      try {
        message = render(escalation.message, 'text');
      } catch {
        message = escalation.message;
      }
      const notice: EscalationNotice = {
        kind: 'remediation-escalated',
        runId: record.id,
        procedure: procedure.id,
        title: procedure.title,
        target: record.target,
        outcome: when,
        state: record.state,
        reason: record.reason,
        message,
        alert: record.alert,
        steps: record.steps.map((s) => ({ name: s.name, status: s.status, reason: s.reason })),
        attachments: attachments(record, escalation.attach),
        ...(deps.runUrl ? { runUrl: deps.runUrl(record.id) } : {}),
        ...(record.alert.annotations.runbook_url || deps.runbookUrl
          ? { runbookUrl: record.alert.annotations.runbook_url || deps.runbookUrl!(procedure.id) }
          : {}),
        labels: escalation.labels ?? {},
      };
      // What leaves remediator carries no `{{ env.X }}` value (redact.ts), however it got into the run.
      const safeNotice = envRedactor(procedure, deps.env ?? process.env)(notice);
      const send = async (to: string, entryMessage: string): Promise<boolean> => {
        const entry: EscalationRecord = { when, to, status: 'sent', at: new Date().toISOString(), message: entryMessage };
        try {
          await deliver(to, safeNotice, log);
        } catch (err) {
          entry.status = 'failed';
          entry.error = (err as Error).message;
          log.error({ to, err: (err as Error).message }, 'escalation failed');
        }
        record.escalations.push(entry);
        deps.metrics.escalations.inc({ procedure: procedure.id, to, result: entry.status });
        return entry.status === 'sent';
      };
      const listed = [...new Set(escalation.to)];
      let delivered = 0;
      for (const to of listed) if (await send(to, message)) delivered++;
      if (delivered === 0 && !listed.includes(FALLBACK) && deps.targets.has(FALLBACK)) {
        await send(FALLBACK, `${message} (fallback: ${listed.map(titleOf).join(' and ')} unreachable)`);
      }
    }
  };
}
export type Escalator = ReturnType<typeof createEscalator>;

/**
 * Notices that belong to no procedure (the storm breaker pausing automation): sent to every configured target,
 * each with retries; failures are logged.
 */
export function createNotifier(deps: EscalatorDeps) {
  const deliver = deliverer(deps);
  return async function notify(kind: 'paused', message: string, record: RunRecord): Promise<void> {
    const log = deps.log.child({ notice: kind });
    const notice: Notice = {
      kind: `remediation-${kind}`,
      message,
      example: { runId: record.id, procedure: record.procedure, target: record.target },
      at: new Date().toISOString(),
    };
    const results = await Promise.allSettled([...deps.targets.keys()].map((to) => deliver(to, notice, log)));
    for (const r of results) if (r.status === 'rejected') log.error({ err: (r.reason as Error).message }, 'pause notice failed');
    if (results.length === 0) log.error('automation paused, but no escalation target is configured: nobody is told');
  };
}
export type Notifier = ReturnType<typeof createNotifier>;

function neededFor(kind: string): string {
  return targetByKind.get(kind)?.needs ?? `escalation target ${kind}`;
}

function titleOf(kind: string): string {
  return targetByKind.get(kind)?.title ?? kind;
}
