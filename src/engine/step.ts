import { setTimeout as sleep } from 'node:timers/promises';
import { ExponentialBackoff, type IBackoff } from 'cockatiel';
import type { Logger } from 'pino';
import { fencePrevious, type RunningProcess } from '../actions/process-guard.js';
import { ActionError, type ActionResult } from '../actions/types.js';
import { lookup, renderWhere, selectElements } from '../checks/json.js';
import { awaitCheck } from '../checks/poll.js';
import type { CheckContext, StepState } from '../checks/types.js';
import type { PrometheusClient } from '../prometheus/client.js';
import { formatDuration } from '../duration.js';
import { withRetries } from '../http/retry.js';
import { LeaseLostError } from './errors.js';
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
  /** First delay before retrying a step attempt or an action call that could not be made (default 500 ms; grows, with jitter). */
  retryDelayMs?: number;
}

const DEFAULT_RETRY_DELAY_MS = 500;

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
  /** Records a command the action started in the checkpoint (saved before the engine goes on). */
  track?(process: RunningProcess): Promise<void>;
  /** After a takeover: the command the previous worker's attempt started, if it recorded one. */
  previous?: RunningProcess;
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

/** Attempts of one action call when it could not be made at all and says trying again could help (ActionError). */
const TRANSIENT_ATTEMPTS = 3;

/**
 * ONE action call, with the attempt's timeout. An ActionError that says retrying could help (no connection)
 * is tried again with backoff, up to TRANSIENT_ATTEMPTS: by the Action contract the call was not made at all,
 * so trying again repeats nothing. What is left is a failed result saying whether the failure is permanent.
 */
async function runAction(ctx: StepContext, use: AnyActionUse, spec: unknown, attempt: number): Promise<ActionResult> {
  const own = use.action.timeoutMs?.(spec);
  const timeoutMs = ctx.step.timeout ?? (own !== undefined ? own + 2000 : ctx.settings.stepTimeoutMs);
  let timedOut = false;
  try {
    return await withRetries(
      async () => {
        ctx.mayAct?.();
        const { signal, done } = attemptSignal(ctx.signal, timeoutMs);
        try {
          return await use.action.run(spec, {
            signal,
            log: ctx.log,
            run: { ...ctx.run, step: ctx.step.name, attempt },
            deadline: Date.now() + timeoutMs,
            ...(ctx.track !== undefined ? { track: (p: RunningProcess) => ctx.track!(p) } : {}),
          });
        } catch (err) {
          timedOut = signal.aborted && !ctx.signal.aborted;
          throw err;
        } finally {
          done();
        }
      },
      {
        attempts: TRANSIENT_ATTEMPTS,
        baseDelayMs: ctx.settings.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS,
        signal: ctx.signal,
        retryable: (err) => err instanceof ActionError && err.retryable && !timedOut && !ctx.signal.aborted,
        onRetry: (err, n, delayMs) =>
          ctx.log.warn({ attempt, call: n, delayMs, err: (err as Error).message }, 'action could not be made; trying again'),
      },
    );
  } catch (err) {
    if (ctx.signal.aborted) throw err; // worker shutdown or cancellation: not the step's failure
    if (err instanceof LeaseLostError) throw err; // not the step's failure either: the run stops acting here
    const message = err instanceof Error ? err.message : String(err);
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
 * The signal of one action call: aborted with the run's signal (its reason) or after `timeoutMs` (a TimeoutError, as
 * AbortSignal.timeout's), as AbortSignal.any([run, AbortSignal.timeout(ms)]) would be. One controller and one timer,
 * both let go by `done()` once the call has ended: AbortSignal.timeout's timer stays armed for the whole timeout and
 * AbortSignal.any tracks its sources through weak references, for every action of every run (issue 13).
 */
export function attemptSignal(parent: AbortSignal, timeoutMs: number): { signal: AbortSignal; done: () => void } {
  const controller = new AbortController();
  if (parent.aborted) {
    controller.abort(parent.reason);
    return { signal: controller.signal, done: () => {} };
  }
  const onAbort = () => controller.abort(parent.reason);
  parent.addEventListener('abort', onAbort, { once: true });
  const timer = setTimeout(
    () => controller.abort(new DOMException('The operation was aborted due to timeout', 'TimeoutError')),
    timeoutMs,
  );
  timer.unref();
  return {
    signal: controller.signal,
    done: () => {
      clearTimeout(timer);
      parent.removeEventListener('abort', onAbort);
    },
  };
}

/** How one attempt of action + expect ended, when it did not pass. */
interface AttemptFailure {
  status: 'failed' | 'unknown';
  why: string;
  /** Another attempt cannot turn out differently: the action said so (a 4xx, a program that is not there). */
  permanent: boolean;
}

/**
 * Runs ONE step: its `when`, then attempts of action + expect (several only with onFailure: retry, with backoff
 * between them, and none after a permanent failure). Timeouts, retries, dry-run and takeover verification live
 * here once for every action kind.
 */
export async function runStep(ctx: StepContext, record: StepRecord): Promise<StepRecord> {
  const { step } = ctx;
  record.startedAt ??= new Date().toISOString();
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

  const skip = await checkWhen(ctx, record);
  if (skip !== undefined) return finish('skipped', skip);

  const prepared = prepareAction(ctx, record);
  if ('notRun' in prepared) return finish('failed', prepared.notRun);

  if (ctx.settings.dryRun) {
    if (record.action) record.result = { status: 'succeeded', output: `dry run: would run ${record.action.description}` };
    return finish('skipped', 'dry run: nothing executed, nothing verified');
  }

  // A takeover: the previous attempt's command may still run (its worker died, its guard too): never two at once.
  if (ctx.resumedAfterAction && ctx.previous !== undefined) {
    const fenced = await fencePrevious(ctx.previous, ctx.signal);
    if (fenced !== undefined) {
      record.fenced = fenced;
      ctx.log.warn({ fenced }, 'previous attempt fenced before acting again');
    }
  }

  if (await holdsAfterTakeover(ctx, record)) return finish('passed', 'verified after takeover; the action was not repeated');

  const maxAttempts = step.onFailure === 'retry' ? 1 + step.retries : 1;
  // A takeover repeats the interrupted attempt (its action may or may not have happened; the look above said the
  // fix does not hold), rather than counting it as used.
  const firstAttempt = ctx.resumedAfterAction ? Math.max(1, record.attempts) : record.attempts + 1;
  const backoff = stepBackoff(ctx.settings);
  for (let attempt = firstAttempt; ; attempt++) {
    record.attempts = attempt;
    const failure = await runAttempt(ctx, record, state, prepared, attempt);
    if (failure === undefined) {
      const passed = record.expect?.holds === true;
      return finish('passed', passed ? record.expect!.reason : record.result ? 'action succeeded (no expectation)' : undefined);
    }
    if (attempt >= maxAttempts) {
      return finish(failure.status, attempt > 1 && record.expect ? `${failure.why} (after ${attempt} attempts)` : failure.why);
    }
    if (failure.permanent) {
      return finish(failure.status, `${failure.why} (not retried: the action says another attempt cannot help)`);
    }
    const delayMs = backoff.next();
    ctx.log.warn({ attempt, reason: failure.why, delayMs }, 'step attempt failed, retrying');
    await sleep(delayMs, undefined, { signal: ctx.signal });
  }
}

/** The step's `when`: undefined to go on, or why the step is skipped. */
async function checkWhen(ctx: StepContext, record: StepRecord): Promise<string | undefined> {
  if (!ctx.step.when || ctx.resumedAfterAction) return undefined;
  await ctx.checkpoint('when', 0);
  const when = await evaluateCheck(ctx.step.when, ctx, 'when');
  record.when = when;
  return when.holds ? undefined : `condition not met: ${when.description}${when.reason ? ` (${when.reason})` : ''}`;
}

/** The action rendered once per call (one, or one per forEach item), recorded; or why it cannot run. */
type Prepared = { use?: AnyActionUse; specs: unknown[]; each: boolean } | { notRun: string };

function prepareAction(ctx: StepContext, record: StepRecord): Prepared {
  const { step } = ctx;
  const use = step.action;
  if (use === undefined) return { specs: [], each: false };
  let specs: unknown[];
  try {
    const renders = step.forEach
      ? forEachItems(step, ctx.states, ctx.render).map((item) => createRender({ ...ctx.scope, item }))
      : [ctx.render];
    specs = renders.map((r): unknown => use.render(r));
  } catch (err) {
    if (!(err instanceof TemplateError) && !(err instanceof ForEachError)) throw err;
    return { notRun: `not run: ${(err as Error).message}` };
  }
  const description =
    specs.length === 1 ? use.describe(specs[0]) : `${specs.length}× ${specs.map((r) => use.describe(r)).join('; ') || use.kind}`;
  record.action = { kind: use.kind, spec: specs.length === 1 && !step.forEach ? specs[0] : specs, description };
  return { use, specs, each: step.forEach !== undefined || specs.length !== 1 };
}

/** A takeover where the action may already have happened: look before acting again. */
async function holdsAfterTakeover(ctx: StepContext, record: StepRecord): Promise<boolean> {
  if (!ctx.resumedAfterAction || !ctx.step.expect || ctx.step.action === undefined) return false;
  const before = await evaluateCheck(ctx.step.expect.once(), ctx, 'expect');
  if (!before.holds) return false;
  record.expect = before;
  record.observed = before.observed;
  return true;
}

/** One attempt: the action (if any), then the expectation. Undefined when it passed. */
async function runAttempt(
  ctx: StepContext,
  record: StepRecord,
  state: StepState,
  prepared: { use?: AnyActionUse; specs: unknown[]; each: boolean },
  attempt: number,
): Promise<AttemptFailure | undefined> {
  const { use, specs, each } = prepared;
  if (use !== undefined) {
    ctx.mayAct?.();
    await ctx.checkpoint('action', attempt);
    record.result = each ? await runEach(ctx, use, specs, attempt) : await runAction(ctx, use, specs[0], attempt);
    state.result = record.result;
  }
  // With nothing to verify, the step's end is saved next (or the outcome's): this checkpoint would add nothing.
  if (ctx.step.expect !== undefined) await ctx.checkpoint('verify', attempt);
  const result = record.result;
  const permanent = result?.status === 'failed' && (result.retryable === false || result.detail?.error === 'permanent');
  const expect = ctx.step.expect;
  if (expect === undefined) {
    if (result === undefined || result.status === 'succeeded') return undefined;
    return { status: 'failed', why: `action failed: ${result.output ?? result.status}`, permanent };
  }
  // An action that failed outright is verified once, now: waiting out `within` for a fix that was not
  // applied only delays the retry or the escalation.
  const actionFailed = result?.status === 'failed';
  const verified = await evaluateCheck(actionFailed ? expect.once() : expect, ctx, 'expect');
  record.expect = verified;
  record.observed = verified.observed;
  if (verified.holds) return undefined;
  const why =
    (verified.unknown
      ? `verification unknown: ${verified.reason}`
      : `expected ${verified.description}: ${verified.reason ?? 'does not hold'}`) +
    (actionFailed ? ` (the action failed: ${firstLine(result?.output)}; verified once without waiting)` : '');
  return { status: verified.unknown ? 'unknown' : 'failed', why, permanent };
}

/** Delays between a step's attempts: exponential with jitter (cockatiel's decorrelated jitter), from retryDelayMs. */
function stepBackoff(settings: StepSettings): { next(): number } {
  let backoff: IBackoff<unknown> | undefined;
  const factory = new ExponentialBackoff({ initialDelay: settings.retryDelayMs ?? DEFAULT_RETRY_DELAY_MS, maxDelay: 30_000 });
  return {
    next() {
      backoff = (backoff ?? factory).next(undefined);
      return backoff.duration;
    },
  };
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
