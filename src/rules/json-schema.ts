/**
 * The rule file's JSON Schema (`remediator schema` → rules/rule.schema.json), for editors. Generated from the
 * same zod schema the loader uses, as input (what a person writes: durations are strings, defaults optional).
 * Refinements cannot be expressed and are left to `remediator check`; anything unrepresentable becomes "any".
 */
import { z } from 'zod';
import { ActionSpec, Duration, RuleFile } from './schema.js';

export const RULE_FILE_SCHEMA_ID = 'urn:remediator:rule-file';

/** Kept in step with src/duration.ts. */
const DURATION_PATTERN = '^(?:\\d+(?:ms|s|m|h|d))+$';

export function ruleFileJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(RuleFile, {
    io: 'input',
    unrepresentable: 'any',
    override(ctx) {
      const json = ctx.jsonSchema as Record<string, unknown>;
      if (ctx.zodSchema === Duration || ctx.zodSchema === Duration.in) {
        json.pattern = DURATION_PATTERN;
        json.description ??= 'a duration like 10s, 1m30s or 500ms';
      }
      if (ctx.zodSchema === ActionSpec) {
        // "exactly one action kind" is a refinement; the one-property rule says the same to an editor.
        json.minProperties = 1;
        json.maxProperties = 1;
      }
    },
  }) as Record<string, unknown>;
  const { $schema, ...rest } = schema;
  return {
    $schema,
    $id: RULE_FILE_SCHEMA_ID,
    title: 'remediator rule file',
    description: 'One runbook procedure: which alerts select it (match), its steps (action, expect), budget and escalation.',
    ...rest,
  };
}
