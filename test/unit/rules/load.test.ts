import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { actions } from '../../../src/actions/index.js';
import { targets } from '../../../src/escalation/index.js';
import { formatPath, formatProblem, loadRules, loadRulesOrThrow, parseRuleFile, RuleFileError } from '../../../src/rules/load.js';

const DIR = 'test/fixtures/rules';
const KINDS = actions.map((a) => a.kind).join(', ');
const TARGETS = targets.map((t) => JSON.stringify(t.kind)).join(', ');

/** Every fixture's problems, exactly as `remediator check` prints them. */
const EXPECTED: Record<string, string[]> = {
  'invalid-bad-duration.yaml': [
    '5: budget.per: expected a duration like 10s, 1m30s or 500ms',
    '14: steps[1].expect.within: expected a duration like 10s, 1m30s or 500ms',
  ],
  'invalid-matcher.yaml': [
    `5: match[1]: unterminated quoted string starting at position 11 in matcher 'severity=~"page|critical'`,
    `6: match[2]: expected an operator (=, !=, =~, !~) after label name "instance" at position 9, got '~="a"' in matcher 'instance~="a"'`,
    `7: match[3]: invalid regular expression: missing closing ): \`(unclosed\` in matcher 'job=~"(unclosed"'`,
    '8: match[4]: matchers are not templated: {{ … }} would be compared literally',
  ],
  'invalid-missing-fields.yaml': [
    '1: title: required field is missing',
    '1: steps: required field is missing',
    '2: match: expected array, got string "alertname=X"',
    '4: stpes: unknown key "stpes"',
  ],
  'invalid-promql.yaml': [
    '8: steps[0].when.promql: syntax error at char 84: unexpected end of query',
    `12: steps[0].expect.promql: {{ labels.instance }} must be inside a double-quoted string literal ("…"), the only place an alert's value is escaped for`,
  ],
  'invalid-step-reference.yaml': [
    '7: steps[0].when.step: "second" is not an earlier step of this procedure',
    '11: steps[2].name: duplicate step name "second" (also steps[1])',
  ],
  'invalid-template.yaml': [
    '4: target: malformed template: "{{" or "}}" outside a {{ namespace.name }} hole',
    '9: steps[0].action.signal.process: {{ vars.relay }}: no var "relay" is declared under vars',
    '11: steps[1].action.http.url: unknown template namespace "secrets" (use labels, annotations, vars or env)',
  ],
  'invalid-unknown-action.yaml': [`8: steps[0].action.restart: unknown action kind "restart" (one of ${KINDS})`],
  'invalid-yaml-syntax.yaml': ['4: YAML: Flow sequence in block collection must be sufficiently indented and end with a ]'],
};

const temps: string[] = [];
function tempRules(files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'remediator-rules-'));
  temps.push(dir);
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
}
afterAll(() => {
  for (const dir of temps) rmSync(dir, { recursive: true, force: true });
});

const MINIMAL = (id: string, extra = '') => `id: ${id}
title: T
match: [alertname=A]
target: "{{ labels.instance }}"
${extra}
steps:
  - name: look
    expect: { promql: supervisor_ipc_up, op: "==", value: 1 }
`;

describe('rules/load', () => {
  const loaded = loadRules(DIR, {});

  it('reports every problem of every file in one pass', () => {
    const byFile = new Map<string, string[]>();
    for (const p of loaded.problems) {
      const name = p.file.slice(DIR.length + 1);
      byFile.set(name, [...(byFile.get(name) ?? []), formatProblem(p).slice(p.file.length + 1)]);
    }
    expect(Object.fromEntries(byFile)).toEqual(EXPECTED);
  });

  it.each(Object.entries(EXPECTED))('%s: file:line: path: message', (name, lines) => {
    const problems = loaded.problems.filter((p) => p.file === `${DIR}/${name}`);
    expect(problems.map(formatProblem)).toEqual(lines.map((l) => `${DIR}/${name}:${l}`));
  });

  it('loads the valid files, and only them, with their file', () => {
    expect(loaded.procedures.map((p) => [p.id, p.file])).toEqual([
      ['minimal', `${DIR}/valid-minimal.yaml`],
      ['P1-003', `${DIR}/valid-p1-003-dashboard-ipc.yaml`],
    ]);
    const p3 = loaded.procedures[1]!;
    expect(p3.steps[0]!.expect!.timing.withinMs).toBe(10_000);
    expect(p3.steps[1]!.onFailure).toBe('escalate');
    expect(p3.budget).toEqual({ runs: 3, per: 3_600_000 });
  });

  it('does not read subdirectories (rules/prometheus holds Prometheus alerting rules)', () => {
    expect(loaded.problems.some((p) => p.file.includes('/prometheus/') || p.file.includes('/duplicate-id/'))).toBe(false);
  });

  it('reports a duplicate id across files at the second file', () => {
    const { procedures, problems } = loadRules(`${DIR}/duplicate-id`, {});
    expect(procedures.map((p) => p.file)).toEqual([`${DIR}/duplicate-id/a.yaml`]);
    expect(problems.map(formatProblem)).toEqual([
      `${DIR}/duplicate-id/b.yml:1: id: duplicate id "same" (also in ${DIR}/duplicate-id/a.yaml)`,
    ]);
  });

  it.each`
    dir                            | message
    ${`${DIR}/no-rules`}           | ${`${DIR}/no-rules: no rule files (*.yaml, *.yml) in the rules directory`}
    ${`${DIR}/does-not-exist`}     | ${`${DIR}/does-not-exist: cannot read the rules directory: no such directory`}
    ${`${DIR}/valid-minimal.yaml`} | ${`${DIR}/valid-minimal.yaml: cannot read the rules directory: not a directory`}
  `('says so when $dir has no rules', ({ dir, message }: { dir: string; message: string }) => {
    expect(loadRules(dir, {}).problems.map(formatProblem)).toEqual([message]);
  });

  it('says so for an empty directory', () => {
    const dir = tempRules({});
    expect(loadRules(dir, {}).problems.map(formatProblem)).toEqual([
      `${dir}: no rule files (*.yaml, *.yml) in the rules directory`,
    ]);
  });

  it('reads .yaml and .yml, and skips dot files and other extensions', () => {
    const dir = tempRules({
      'a.yaml': MINIMAL('a'),
      'b.yml': MINIMAL('b'),
      '.c.yaml': 'broken: [',
      'd.json': '{',
      'e.yaml.bak': 'x',
    });
    mkdirSync(join(dir, 'prometheus'));
    writeFileSync(join(dir, 'prometheus', 'alerts.yaml'), 'groups: []');
    const { procedures, problems } = loadRules(dir, {});
    expect(problems).toEqual([]);
    expect(procedures.map((p) => p.id)).toEqual(['a', 'b']);
  });

  it('overrides vars from REMEDIATOR_VAR_<NAME> in every procedure that declares them', () => {
    const dir = tempRules({
      'a.yaml': MINIMAL('a', 'vars: { relay_process: relay, port: 9000 }'),
      'b.yaml': MINIMAL('b', 'vars: { relay_process: relay }'),
      'c.yaml': MINIMAL('c'),
    });
    const { procedures, problems } = loadRules(dir, { REMEDIATOR_VAR_RELAY_PROCESS: 'relay-2', REMEDIATOR_VAR_OTHER: 'x' });
    expect(problems).toEqual([]);
    expect(procedures.map((p) => p.vars)).toEqual([{ relay_process: 'relay-2', port: '9000' }, { relay_process: 'relay-2' }, {}]);
  });

  it.each`
    name                     | text                                                                                                                 | lines
    ${'empty'}               | ${''}                                                                                                                | ${['x.yaml:1: empty file: a rule file holds one procedure (id, title, match, target, steps)']}
    ${'not a mapping'}       | ${'- a\n- b\n'}                                                                                                      | ${['x.yaml:1: expected object, got a list']}
    ${'duplicate key'}       | ${'id: a\nid: b\n'}                                                                                                  | ${['x.yaml:2: YAML: Map keys must be unique']}
    ${'two kinds'}           | ${MINIMAL('a').replace('    expect', '    action: { wait: { duration: 1s }, exec: { command: [ls] } }\n    expect')} | ${[`x.yaml:8: steps[0].action: exactly one action kind must be set (one of ${KINDS}), got exec, wait`]}
    ${'bad var value'}       | ${MINIMAL('a', 'vars: { a: [1] }')}                                                                                  | ${['x.yaml:5: vars.a: expected string or number or boolean, got a list']}
    ${'bad escalation'}      | ${MINIMAL('a', 'escalation: [{ when: nope, to: [pager], message: m }]')}                                             | ${['x.yaml:5: escalation[0].when: expected a list or one of "failed", "unknown", "budget-exhausted", "timeout", "paused", "succeeded", got string "nope"', `x.yaml:5: escalation[0].to[0]: expected one of ${TARGETS}, got "pager"`]}
    ${'undeclared var'}      | ${MINIMAL('a').replace('supervisor_ipc_up', `'up{job="{{ vars.job }}"}'`)}                                           | ${['x.yaml:8: steps[0].expect.promql: {{ vars.job }}: no var "job" is declared under vars']}
    ${'template in vars'}    | ${MINIMAL('a', 'vars: { a: "{{ labels.x }}" }')}                                                                     | ${['x.yaml:5: vars.a: vars are not templated: {{ … }} would stay as written']}
    ${'step check'}          | ${MINIMAL('a').replace('{ promql: supervisor_ipc_up, op: "==", value: 1 }', '{ status: passed, exitCode: 0 }')}      | ${[]}
    ${'problems and schema'} | ${MINIMAL('a').replace('alertname=A', 'alertname=~"("').replace('value: 1', 'value: one')}                           | ${['x.yaml:3: match[0]: invalid regular expression: missing closing ): `(` in matcher \'alertname=~"("\'', 'x.yaml:8: steps[0].expect.value: expected number or one of "+Inf", "-Inf", "NaN", got string "one"']}
  `('$name', ({ text, lines }: { text: string; lines: string[] }) => {
    expect(parseRuleFile('x.yaml', text, {}).problems.map(formatProblem)).toEqual(lines);
  });

  // Issue 9: hazards the loader can see are refused, each naming its field.
  const STEP = (step: string, extra = '') => `id: a
title: T
match: [alertname=A]
target: "{{ labels.instance }}"
vars: { base: "http://h:8080", dir: /srv }
${extra}
steps:
  - name: s
${step}
`;
  it.each`
    name                                    | text                                                                                                                                                                        | lines
    ${'a label in the URL host'}            | ${STEP('    action: { http: { url: "http://{{ labels.host }}:8080/restart" } }')}                                                                                           | ${["x.yaml:9: steps[0].action.http.url: {{ labels.host }} is in the URL's authority: an alert value may only fill the path or the query (it would choose where the request goes)"]}
    ${'a label as the whole URL'}           | ${STEP('    action: { http: { url: "{{ labels.url }}" } }')}                                                                                                                | ${["x.yaml:9: steps[0].action.http.url: {{ labels.url }} is in the URL's scheme or host: an alert value may only fill the path or the query (it would choose where the request goes)"]}
    ${'a label in user info'}               | ${STEP('    action: { http: { url: "http://u:{{ labels.p }}@h/x" } }')}                                                                                                     | ${["x.yaml:9: steps[0].action.http.url: {{ labels.p }} is in the URL's authority: an alert value may only fill the path or the query (it would choose where the request goes)"]}
    ${'a label in the fragment'}            | ${STEP('    action: { http: { url: "http://h/x#{{ labels.p }}" } }')}                                                                                                       | ${["x.yaml:9: steps[0].action.http.url: {{ labels.p }} is in the URL's fragment: an alert value may only fill the path or the query (it would choose where the request goes)"]}
    ${'a label right after a var'}          | ${STEP('    action: { http: { url: "{{ vars.base }}{{ labels.p }}" } }')}                                                                                                   | ${["x.yaml:9: steps[0].action.http.url: {{ labels.p }} is in the URL's authority: an alert value may only fill the path or the query (it would choose where the request goes)"]}
    ${'path and query are fine'}            | ${STEP('    action: { http: { url: "{{ vars.base }}/x/{{ labels.p }}?q={{ labels.p }}" } }')}                                                                               | ${[]}
    ${'cwd is never rendered'}              | ${STEP('    action: { exec: { command: [ls], cwd: "/srv/{{ labels.dir }}" } }')}                                                                                            | ${['x.yaml:9: steps[0].action.exec.cwd: templates are not rendered here: {{ … }} would be used as written (take it out, or move it to a field that is rendered)']}
    ${'exec env is rendered'}               | ${STEP('    action: { exec: { command: [ls], env: { T: "{{ env.TOKEN }}" } } }')}                                                                                           | ${[]}
    ${'a step check is never rendered'}     | ${STEP('    expect: { output: "err {{ labels.x }}" }')}                                                                                                                     | ${['x.yaml:9: steps[0].expect.output: templates are not rendered here: {{ … }} would be used as written (take it out, or move it to a field that is rendered)']}
    ${'a title is never rendered'}          | ${STEP('    expect: { promql: up, op: "==", value: 1 }').replace('title: T', 'title: "T {{ labels.x }}"')}                                                                  | ${['x.yaml:2: title: templates are not rendered here: {{ … }} would be used as written (take it out, or move it to a field that is rendered)']}
    ${'escalation labels are not rendered'} | ${STEP('    expect: { promql: up, op: "==", value: 1 }', 'escalation: [{ when: failed, to: [webhook], message: "m {{ labels.x }}", labels: { host: "{{ labels.x }}" } }]')} | ${['x.yaml:6: escalation[0].labels.host: templates are not rendered here: {{ … }} would be used as written (take it out, or move it to a field that is rendered)']}
    ${'label_replace regex argument'}       | ${STEP(`    expect: { promql: 'label_replace(up, "d", "$1", "i", "{{ labels.x }}")', op: "==", value: 1 }`)}                                                                | ${["x.yaml:9: steps[0].expect.promql: {{ labels.x }} is label_replace's regex argument: an alert value there is a pattern the alert chose; match it with a label matcher (=~ quotes it) instead"]}
  `('$name', ({ text, lines }: { text: string; lines: string[] }) => {
    expect(parseRuleFile('x.yaml', text, {}).problems.map(formatProblem)).toEqual(lines);
  });

  it('loadRulesOrThrow throws RuleFileError listing every problem', () => {
    let error: unknown;
    try {
      loadRulesOrThrow(DIR, {});
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(RuleFileError);
    const problems = (error as RuleFileError).problems;
    expect(problems).toEqual(loaded.problems);
    expect((error as RuleFileError).message.split('\n')).toEqual([
      `${problems.length} problems in the rule files:`,
      ...problems.map((p) => `  ${formatProblem(p)}`),
    ]);
  });

  it('loadRulesOrThrow returns the procedures of a clean directory', () => {
    expect(loadRulesOrThrow(tempRules({ 'a.yaml': MINIMAL('a') }), {}).map((p) => p.id)).toEqual(['a']);
  });

  it.each`
    path                                | text
    ${['steps', 1, 'expect', 'within']} | ${'steps[1].expect.within'}
    ${[]}                               | ${''}
    ${['vars', 'a b']}                  | ${'vars["a b"]'}
    ${['$schema']}                      | ${'$schema'}
  `('formatPath($path) is $text', ({ path, text }: { path: PropertyKey[]; text: string }) => {
    expect(formatPath(path)).toBe(text);
  });
});
