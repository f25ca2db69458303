/**
 * The compiled rule model's building blocks: an action or a check as a step uses it, with its kind resolved
 * through the registry and its spec parsed, once, at load. Immutable; the engine, `plan` and `docs` ask these
 * instead of looking kinds up again.
 */
import type { Action, AnyAction } from '../actions/types.js';
import type { CheckTiming } from '../checks/poll.js';
import type { AnyCheck, Check } from '../checks/types.js';
import { formatDuration } from '../duration.js';
import type { Render } from '../template.js';

/**
 * Freezes plain data (objects and arrays) all the way down; leaves anything else (a plugin, a compiled pattern,
 * a zod schema) as it is: those keep their own invariants, and some cache lazily.
 */
export function freezeData<T>(value: T): T {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return value;
  const proto = Object.getPrototypeOf(value) as unknown;
  if (!Array.isArray(value) && proto !== Object.prototype && proto !== null) return value;
  Object.freeze(value);
  for (const v of Object.values(value)) freezeData(v);
  return value;
}

/** A step's `action: { <kind>: spec }`, resolved. */
export class ActionUse<S = unknown> {
  constructor(
    readonly action: Action<S>,
    /** The spec as parsed, templates not yet filled. */
    readonly spec: S,
  ) {
    freezeData(spec);
    Object.freeze(this);
  }

  get kind(): string {
    return this.action.kind;
  }

  /** Fills the spec's templates (the action names each field's sink); throws TemplateError. */
  render(render: Render): S {
    return this.action.render(this.spec, render);
  }

  describe(spec: S = this.spec): string {
    return this.action.describe(spec);
  }

  /** The rule-file form, for JSON: `{ exec: { … } }`. */
  toJSON(): Record<string, unknown> {
    return { [this.kind]: this.spec };
  }
}

/** A step's `expect` or `when`: the check's kind resolved, its spec parsed, its timing in milliseconds. */
export class CheckUse<S = unknown> {
  constructor(
    readonly check: Check<S>,
    readonly spec: S,
    readonly timing: CheckTiming,
  ) {
    freezeData(spec);
    freezeData(timing);
    Object.freeze(this);
  }

  get kind(): string {
    return this.check.kind;
  }

  /** The same check with its templates filled (e.g. the PromQL query); throws TemplateError. */
  render(render: Render): CheckUse<S> {
    return new CheckUse(this.check, this.check.render(this.spec, render), this.timing);
  }

  /** The same check evaluated once, now: no `within`, `after` or `for`. */
  once(): CheckUse<S> {
    return new CheckUse(this.check, this.spec, {});
  }

  /** One line for run records and `plan`: the kind's own words, then the timing ("… within 20s"). */
  describe(): string {
    const { afterMs, withinMs, forMs } = this.timing;
    return [
      this.check.describe(this.spec),
      afterMs !== undefined ? `after ${formatDuration(afterMs)}` : '',
      withinMs !== undefined ? `within ${formatDuration(withinMs)}` : '',
      forMs !== undefined ? `for ${formatDuration(forMs)}` : '',
    ]
      .filter(Boolean)
      .join(' ');
  }

  /** The flat rule-file form, timing in milliseconds: what a run record keeps as the check's spec. */
  toJSON(): Record<string, unknown> {
    const { afterMs, withinMs, forMs } = this.timing;
    return {
      ...(this.spec as Record<string, unknown>),
      ...(withinMs !== undefined ? { within: withinMs } : {}),
      ...(afterMs !== undefined ? { after: afterMs } : {}),
      ...(forMs !== undefined ? { for: forMs } : {}),
    };
  }
}

export type AnyActionUse = ActionUse<Parameters<AnyAction['run']>[0]>;
export type AnyCheckUse = CheckUse<Parameters<AnyCheck['evaluate']>[0]>;
