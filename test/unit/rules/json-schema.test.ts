import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { actions } from '../../../src/actions/index.js';
import { checks } from '../../../src/checks/index.js';
import { RULE_FILE_SCHEMA_ID, ruleFileJsonSchema } from '../../../src/rules/json-schema.js';

type Json = Record<string, unknown>;
const at = (schema: Json, ...keys: string[]): Json => keys.reduce<Json>((s, k) => s[k] as Json, schema);

describe('rules/json-schema', () => {
  const schema = ruleFileJsonSchema();
  const properties = at(schema, 'properties');
  const step = at(properties, 'steps', 'items');

  it('names itself and the draft it follows', () => {
    expect(schema).toMatchObject({
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      $id: RULE_FILE_SCHEMA_ID,
      title: 'remediator rule file',
      type: 'object',
    });
    expect(Object.keys(schema).slice(0, 3)).toEqual(['$schema', '$id', 'title']);
  });

  it('describes the input a person writes: defaults optional, durations strings with a pattern', () => {
    expect(schema.required).toEqual(['id', 'title', 'match', 'target', 'steps']);
    expect(schema.additionalProperties).toBe(false);
    expect(at(properties, 'budget', 'properties', 'per')).toMatchObject({ type: 'string', pattern: '^(?:\\d+(?:ms|s|m|h|d))+$' });
    expect(at(step, 'properties', 'estimate')).toMatchObject({ type: 'string', pattern: '^(?:\\d+(?:ms|s|m|h|d))+$' });
    expect(step.required).toEqual(['name']);
  });

  it('lists every action kind from the registry, exactly one a step', () => {
    const action = at(step, 'properties', 'action');
    expect(Object.keys(at(action, 'properties'))).toEqual(actions.map((a) => a.kind));
    expect(action).toMatchObject({ additionalProperties: false, minProperties: 1, maxProperties: 1 });
  });

  it('describes expect and when as one form per check kind of the registry, each with the timing keys', () => {
    for (const field of ['expect', 'when']) {
      const forms = at(step, 'properties', field).anyOf as Json[];
      expect(forms).toHaveLength(checks.length);
      checks.forEach((check, i) => {
        const keys = Object.keys(at(forms[i]!, 'properties'));
        expect(keys).toEqual([...Object.keys(check.spec.shape), 'within', 'after', 'for']);
        expect(forms[i]).toMatchObject({ type: 'object', additionalProperties: false });
      });
    }
  });

  it('is what rules/rule.schema.json holds: the committed file is `remediator schema` (regenerate: npm run build && npm run schema)', () => {
    const committed = readFileSync(new URL('../../../rules/rule.schema.json', import.meta.url), 'utf8');
    expect(committed).toBe(`${JSON.stringify(schema, null, 2)}\n`);
  });

  it('is plain JSON', () => {
    expect(JSON.parse(JSON.stringify(schema))).toEqual(schema);
  });
});
