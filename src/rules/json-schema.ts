/**
 * The rule file's JSON Schema (`remediator schema` → rules/rule.schema.json), for editors. Generated from the
 * same zod schema the loader uses, as input (what a person writes: durations are strings, defaults optional).
 * Refinements cannot be expressed and are left to `remediator check`; anything unrepresentable becomes "any".
 */
import { z } from 'zod';
import { ActionKinds, CheckForms, CheckSpec, RuleFile } from './schema.js';

export const RULE_FILE_SCHEMA_ID = 'urn:remediator:rule-file';

type Json = Record<string, unknown>;

function toJson(schema: z.ZodType): Json {
  return z.toJSONSchema(schema, {
    io: 'input',
    unrepresentable: 'any',
    override(ctx) {
      const json = ctx.jsonSchema as Json;
      if (ctx.zodSchema === ActionKinds) {
        // "exactly one action kind" is a refinement; the one-property rule says the same to an editor.
        json.minProperties = 1;
        json.maxProperties = 1;
      }
      if (ctx.zodSchema === CheckSpec || ctx.zodSchema === CheckSpec.in) {
        // A check's kind follows from the key it names, which zod cannot say: tell an editor each kind's shape.
        const { $schema: _, ...forms } = toJson(CheckForms);
        for (const key of Object.keys(json)) delete json[key];
        Object.assign(json, forms);
      }
    },
  });
}

export function ruleFileJsonSchema(): Json {
  const { $schema, ...rest } = toJson(RuleFile);
  return {
    $schema,
    $id: RULE_FILE_SCHEMA_ID,
    title: 'remediator rule file',
    description: 'One runbook procedure: which alerts select it (match), its steps (action, expect), budget and escalation.',
    ...rest,
  };
}
