import type { Logger } from 'pino';
import { ActionError, type ActionResult } from '../actions/types.js';
import { lookup, renderWhere, selectElements } from '../checks/json.js';
import { awaitCheck } from '../checks/poll.js';
import type { CheckContext, StepState } from '../checks/types.js';
import type { PrometheusClient } from '../prometheus/client.js';
import { formatDuration } from '../duration.js';
import type { AnyActionUse, AnyCheckUse } from '../rules/model.js';
import type { Step } from '../rules/schema.js';
import { createRender, TemplateError, type Render, type TemplateScope } from '../template.js';
import type { CheckRecord, StepRecord } from './record.js';

export interface StepSettings {
  dryRun: boolean;
  /** With dryRun: why only the plan is recorded (e.g. automation paused); the run's final reason. */
  planReason?: string;
  pollIntervalMs: number;
  stepTimeoutMs: number;
}

export interface StepContext {
  /** The run this step belongs to (actions name it to their target: ActionContext.run). */
  run: { id: string; procedure: string };
  step: Step;
  render: Render;
  /** The scope behind `render`, to render a `forEach` action once per item. */
  scope: TemplateScope;
  /** States of the steps so far, by name; this step's entry is updated as it goes. */
  states: Map<string, StepState>;
  prometheus: PrometheusClient;
  settings: StepSettings;
  signal: AbortSignal;
  log: Logger;
  /** True when a worker died while this step's action may already have run: verify before acting again. */
  resumedAfterAction: boolean;
  /** Throws when the run may no longer act (its target lease was lost): asked before every action attempt. */
  mayAct?(): void;
  /** Called before each action attempt so the checkpoint names the attempt (crash-safe resume). */
  checkpoint(phase: 'when' | 'action' | 'verify', attempt: number): Promise<void>;
}

/** The check as plain JSON data, for the run record. */
function specRecord(use: AnyCheckUse): unknown {
  return JSON.parse(JSON.stringify(use)) as unknown;
}

/** Renders the check's templates, then evaluates it with its timing. Template errors are a failed check, not a crash. */
export async function evaluateCheck(
  use: AnyCheckUse,
  ctx: StepContext,
  phase: 'when' | 'expect',
): Promise<CheckRecord & { spec: unknown }> {
  let rendered: AnyCheckUse;
  try {
    rendered = use.render(ctx.render);
  } catch (err) {
    if (!(err instanceof TemplateError)) throw err;
    return {
      spec: specRecord(use),
      description: use.describe(),
      holds: false,
      unknown: false,
      reason: err.message,
      observed: [],
      attempts: 0,
      elapsedMs: 0,
    };
  }
  const checkCtx: CheckContext = {
    signal: ctx.signal,
    log: ctx.log,
    steps: ctx.states,
    currentStep: ctx.step.name,
    prometheus: ctx.prometheus,
  };
  const timing = { ...rendered.timing, pollIntervalMs: ctx.settings.pollIntervalMs };
  const outcome = await awaitCheck(rendered.check, rendered.spec, timing, checkCtx);
  ctx.log.debug({ phase, holds: outcome.holds, unknown: outcome.unknown, reason: outcome.reason }, 'check evaluated');
  return {
    spec: specRecord(rendered),
    description: rendered.describe(),
    holds: outcome.holds,
    unknown: outcome.unknown,
    ...(outcome.reason !== undefined ? { reason: outcome.reason } : {}),
    observed: outcome.observed,
    attempts: outcome.attempts,
    elapsedMs: outcome.elapsedMs,
  };
}

async function runAction(ctx: StepContext, use: AnyActionUse, spec: unknown, attempt: number): Promise<ActionResult> {
  const own = use.action.timeoutMs?.(spec);
  const timeoutMs = ctx.step.timeout ?? (own !== undefined ? own + 2000 : ctx.settings.stepTimeoutMs);
  ctx.mayAct?.();
  const signal = AbortSignal.any([ctx.signal, AbortSignal.timeout(timeoutMs)]);
  try {
    return await use.action.run(spec, { signal, log: ctx.log, run: { ...ctx.run, step: ctx.step.name, attempt } });
  } catch (err) {
    if (ctx.signal.aborted) throw err; // worker shutdown or cancellation: not the step's failure
    const message = err instanceof Error ? err.message : String(err);
    const timedOut = signal.aborted;
    return {
      status: 'failed',
      output: timedOut ? `timed out after ${formatDuration(timeoutMs)}` : message,
      detail: {
        error: err instanceof ActionError ? (err.retryable ? 'retryable' : 'permanent') : timedOut ? 'timeout' : 'error',
      },
    };
  }
}

/**
 * Runs ONE step: its `when`, then attempts of action + expect (several only with onFailure: retry).
 * Timeouts, retries, dry-run and takeover verification live here once for every action kind.
 */
export async function runStep(ctx: StepContext, record: StepRecord): Promise<StepRecord> {
  const { step } = ctx;
  const started = Date.now();
  record.startedAt ??= new Date(started).toISOString();
  const state: StepState = {};
  ctx.states.set(step.name, state);
  const finish = (status: StepRecord['status'], reason?: string): StepRecord => {
    state.status = status;
    record.status = status;
    if (reason !== undefined) record.reason = reason;
    record.endedAt = new Date().toISOString();
    record.durationMs = Date.now() - Date.parse(record.startedAt!);
    if (record.estimate !== undefined) record.overEstimate = record.durationMs > record.estimate;
    return record;
  };

  if (step.when && !ctx.resumedAfterAction) {
    await ctx.checkpoint('when', 0);
    const when = await evaluateCheck(step.when, ctx, 'when');
    record.when = when;
    if (!when.holds) {
      return finish('skipped', `condition not met: ${when.description}${when.reason ? ` (${when.reason})` : ''}`);
    }
  }

  const action = step.action;
  // One rendered spec per run of the action: one, or one per forEach item.
  let rendered: unknown[] = [];
  if (action !== undefined) {
    try {
      const renders = step.forEach
        ? forEachItems(step, ctx.states, ctx.render).map((item) => createRender({ ...ctx.scope, item }))
        : [ctx.render];
      rendered = renders.map((r) => action.render(r));
    } catch (err) {
      if (!(err instanceof TemplateError) && !(err instanceof ForEachError)) throw err;
      return finish('failed', `not run: ${(err as Error).message}`);
    }
    const description =
      rendered.length === 1
        ? action.describe(rendered[0])
        : `${rendered.length}× ${rendered.map((r) => action.describe(r)).join('; ') || action.kind}`;
    record.action = { kind: action.kind, spec: rendered.length === 1 && !step.forEach ? rendered[0] : rendered, description };
  }

  if (ctx.settings.dryRun) {
    if (record.action) record.result = { status: 'succeeded', output: `dry run: would run ${record.action.description}` };
    return finish('skipped', 'dry run: nothing executed, nothing verified');
  }

  // A takeover where the action may already have happened: look before acting again.
  if (ctx.resumedAfterAction && step.expect && action !== undefined) {
    const before = await evaluateCheck(step.expect.once(), ctx, 'expect');
    if (before.holds) {
      record.expect = before;
      record.observed = before.observed;
      return finish('passed', 'verified after takeover; the action was not repeated');
    }
  }

  const maxAttempts = step.onFailure === 'retry' ? 1 + step.retries : 1;
  // A takeover repeats the interrupted attempt (its action may or may not have happened; the look above said the
  // fix does not hold), rather than counting it as used.
  const firstAttempt = ctx.resumedAfterAction ? Math.max(1, record.attempts) : record.attempts + 1;
  for (let attempt = firstAttempt; attempt <= maxAttempts; attempt++) {
    record.attempts = attempt;
    if (action !== undefined) {
      ctx.mayAct?.();
      await ctx.checkpoint('action', attempt);
      record.result =
        rendered.length === 1 && !step.forEach
          ? await runAction(ctx, action, rendered[0], attempt)
          : await runEach(ctx, action, rendered, attempt);
      state.result = record.result;
    }
    await ctx.checkpoint('verify', attempt);
    if (step.expect) {
      // An action that failed outright is verified once, now: waiting out `within` for a fix that was not
      // applied only delays the retry or the escalation.
      const actionFailed = record.result?.status === 'failed';
      const expect = await evaluateCheck(actionFailed ? step.expect.once() : step.expect, ctx, 'expect');
      record.expect = expect;
      record.observed = expect.observed;
      if (expect.holds) return finish('passed', expect.reason);
      const why =
        (expect.unknown
          ? `verification unknown: ${expect.reason}`
          : `expected ${expect.description}: ${expect.reason ?? 'does not hold'}`) +
        (actionFailed ? ` (the action failed: ${firstLine(record.result?.output)}; verified once without waiting)` : '');
      if (attempt === maxAttempts)
        return finish(expect.unknown ? 'unknown' : 'failed', attempt > 1 ? `${why} (after ${attempt} attempts)` : why);
      ctx.log.warn({ attempt, reason: why }, 'step attempt failed, retrying');
    } else if (record.result === undefined || record.result.status === 'succeeded') {
      return finish('passed', record.result ? 'action succeeded (no expectation)' : undefined);
    } else if (attempt === maxAttempts) {
      return finish('failed', `action failed: ${record.result.output ?? record.result.status}`);
    }
  }
  return finish('failed', 'no attempts left');
}

export class ForEachError extends Error {
  override readonly name = 'ForEachError';
}

/**
 * The elements a forEach step acts on: an array in an earlier step's JSON body, filtered by `where` (the same
 * selection as JSON expectations, checks/json.ts: dotted fields, values compared as text, templated from the run),
 * each flattened to its top-level scalar fields for `{{ item.<field> }}`.
 */
export function forEachItems(step: Step, states: ReadonlyMap<string, StepState>, render?: Render): Record<string, string>[] {
  const spec = render !== undefined ? renderWhere(step.forEach!, render) : step.forEach!;
  const found = lookup(states.get(spec.step)?.result?.body, spec.path);
  if (!found.ok || !Array.isArray(found.value))
    throw new ForEachError(`forEach: ${spec.step}'s result has no array at "${spec.path}"`);
  return selectElements(found.value, spec.where).map((v) =>
    Object.fromEntries(
      Object.entries(v as Record<string, unknown>)
        .filter(([, x]) => ['string', 'number', 'boolean'].includes(typeof x))
        .map(([k, x]) => [k, String(x)]),
    ),
  );
}

/** A forEach action: one attempt per item, in order; succeeded only when every item's did. */
async function runEach(ctx: StepContext, use: AnyActionUse, specs: unknown[], attempt: number): Promise<ActionResult> {
  if (specs.length === 0) return { status: 'succeeded', output: 'forEach: no matching item; nothing to do', body: [] };
  const results: ActionResult[] = [];
  for (const spec of specs) results.push(await runAction(ctx, use, spec, attempt));
  return {
    status: results.every((r) => r.status === 'succeeded') ? 'succeeded' : 'failed',
    output: results.map((r, i) => `[${i + 1}] ${r.status}: ${r.output ?? ''}`).join('\n'),
    body: results.map((r) => r.body ?? null),
    detail: { items: results.length },
  };
}

function firstLine(text: string | undefined): string {
  const line = (text ?? '').trim().split('\n').at(-1) ?? '';
  return line.length > 200 ? `${line.slice(0, 200)}…` : line || 'no output';
}
