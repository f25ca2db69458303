import { z } from 'zod';

/** The comparison of a promql expectation. Prometheus values are floats; `+Inf`, `-Inf`, `NaN` spelled as Prometheus does. */
export const Op = z.enum(['==', '!=', '>', '>=', '<', '<=']);
export type Op = z.infer<typeof Op>;
export const PromValue = z.union([z.number(), z.enum(['+Inf', '-Inf', 'NaN'])]);
export type PromValue = z.infer<typeof PromValue>;

/**
 * `promql` with `op`/`value`: every returned series must compare true, and "no data" never holds.
 * `empty: true`: holds only when the query returns no series.
 */
export const PromqlSpec = z
  .strictObject({
    promql: z.string().min(1),
    op: Op.optional(),
    value: PromValue.optional(),
    empty: z.boolean().optional(),
  })
  .superRefine((s, ctx) => {
    if (s.empty === true && (s.op !== undefined || s.value !== undefined)) {
      ctx.addIssue({ code: 'custom', message: 'empty: true cannot be combined with op/value', path: ['empty'] });
    }
    if (s.empty !== true && (s.op === undefined) !== (s.value === undefined)) {
      ctx.addIssue({ code: 'custom', message: 'op and value go together', path: [s.op === undefined ? 'op' : 'value'] });
    }
  });
export type PromqlSpec = z.infer<typeof PromqlSpec>;

const OneOrMany = <T extends z.ZodTypeAny>(t: T) => z.union([t, z.array(t).min(1)]);

/**
 * A check against an earlier step's action result (or this step's own, without `step`).
 * Every field given must hold.
 */
export const StepResultSpec = z.strictObject({
  step: z.string().min(1).optional(),
  /** The step's outcome so far: passed | failed | skipped | unknown. */
  status: OneOrMany(z.enum(['passed', 'failed', 'skipped', 'unknown'])).optional(),
  exitCode: OneOrMany(z.number().int()).optional(),
  /** A regular expression (JavaScript syntax) that must match somewhere in the output. */
  output: z.string().optional(),
  httpStatus: OneOrMany(z.number().int().min(100).max(599)).optional(),
  /** A dotted path into the JSON body (`result`, `children.0.state`) and the value it must equal. */
  json: z.strictObject({ path: z.string().min(1), value: z.union([z.string(), z.number(), z.boolean(), z.null()]) }).optional(),
});
export type StepResultSpec = z.infer<typeof StepResultSpec>;
