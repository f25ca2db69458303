import { describe, expect, it } from 'vitest';
import { promqlSyntaxErrors } from '../../../src/checks/promql-syntax.js';

describe('checks/promql-syntax', () => {
  it.each([
    'supervisor_ipc_up',
    'supervisor_ipc_up{instance="{{ labels.instance }}"} == 1',
    'sum by (child_id) (delta(supervisor_child_restart_limit_used{instance="{{ labels.instance }}"}[5m])) > 0',
    'supervisor_child_operation{operation="active", instance=~"{{ labels.instance }}|{{ vars.fallback }}"}',
    "supervisor_ipc_up{job='supervisor'}",
    'min_over_time(supervisor_ipc_state_ok[{{ vars.window }}])',
    'count(supervisor_child_attempt_active == 1) == supervisor_children_declared',
    'up{instance="a\\"b\\\\c\\n"}',
    'absent(supervisor_ipc_up) # a comment with {{ labels.instance }} in it',
  ])('accepts %s', (query) => {
    expect(promqlSyntaxErrors(query)).toEqual([]);
  });

  it.each`
    query                                      | errors
    ${''}                                      | ${['empty query']}
    ${'up{'}                                   | ${['syntax error at char 4: unexpected end of query']}
    ${'sum(rate(x[5m])'}                       | ${['syntax error at char 16: unexpected end of query']}
    ${'foo bar'}                               | ${["syntax error at char 5: unexpected 'bar' after 'foo '"]}
    ${'up == == 1'}                            | ${["syntax error at char 7: unexpected '=' after 'up == '"]}
    ${'up{a="{{ labels.instance }}"} == == 1'} | ${["syntax error at char 34: unexpected '=' after '…ls.instance }}\"} == '"]}
    ${'up\n  and\n  ))'}                       | ${["syntax error at line 3, char 3: unexpected '))' after 'up and '"]}
    ${'"abc'}                                  | ${['unterminated string literal at char 1']}
    ${'up{a="x\\qy"}'}                         | ${['unknown escape sequence \\q in a string literal at char 6']}
  `('reports $query', ({ query, errors }: { query: string; errors: string[] }) => {
    expect(promqlSyntaxErrors(query)).toEqual(errors);
  });

  it.each([
    ["up{instance='{{ labels.instance }}'}", 'labels.instance'],
    ['up{instance=`{{ labels.instance }}`}', 'labels.instance'],
    ['rate(x[{{ annotations.window }}])', 'annotations.window'],
  ])('refuses an alert value outside a double-quoted string: %s', (query, ref) => {
    expect(promqlSyntaxErrors(query)).toContain(
      `{{ ${ref} }} must be inside a double-quoted string literal ("…"), the only place an alert's value is escaped for`,
    );
  });
});
