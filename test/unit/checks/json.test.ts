import { describe, expect, it } from 'vitest';
import { describeJson, judgeJson, JsonExpectation, renderWhere, selectElements } from '../../../src/checks/json.js';
import { parseWireJson } from '../../../src/supervisor/json.js';
import { goldenAnswer } from '../../helpers/golden-supervisor.js';

/** state-crash-loop: ledger_sync exhausted (used 3 of 2, no attempt), payment_loop active and running. */
const state = parseWireJson(goldenAnswer('state-crash-loop'));
const RECORDS = 'result.state.child_runtime_records';
const judge = (j: Record<string, unknown>) => judgeJson(state, JsonExpectation.parse(j));

describe('checks/json', () => {
  it.each`
    expectation                                                                                                                  | holds
    ${{ path: 'ok', value: true }}                                                                                               | ${true}
    ${{ path: 'result.type', value: ['state', 'hello'] }}                                                                        | ${true}
    ${{ path: 'result.state.state_generation', op: '>=', value: 1 }}                                                             | ${true}
    ${{ path: 'result.state.generated_at_unix_nanos', value: 1747650000000000000 }}                                              | ${true}
    ${{ path: 'result.nope', exists: false }}                                                                                    | ${true}
    ${{ path: 'result.nope', value: 1 }}                                                                                         | ${false}
    ${{ path: RECORDS, where: { child_id: 'ledger_sync' }, field: 'restart_limit.exhausted', value: true }}                      | ${true}
    ${{ path: RECORDS, where: { child_id: 'ledger_sync' }, field: 'restart_limit.used', op: '>', value: 2 }}                     | ${true}
    ${{ path: RECORDS, where: { child_id: 'payment_loop' }, field: 'restart_limit.exhausted', value: true }}                     | ${false}
    ${{ path: RECORDS, where: { child_id: 'ledger_sync' }, field: 'status', value: null }}                                       | ${true}
    ${{ path: RECORDS, where: { child_id: 'ledger_sync' }, count: 1 }}                                                           | ${true}
    ${{ path: RECORDS, where: { child_id: 'gone' }, none: true }}                                                                | ${true}
    ${{ path: RECORDS, where: { child_id: 'gone' }, field: 'status', value: 'running' }}                                         | ${false}
    ${{ path: RECORDS, where: { operation: 'active' }, count: 2, op: '>=' }}                                                     | ${true}
    ${{ path: RECORDS, where: { 'restart_limit.exhausted': true }, count: 1 }}                                                   | ${true}
    ${{ path: RECORDS, where: { status: null }, field: 'child_id', value: 'ledger_sync' }}                                       | ${true}
    ${{ path: RECORDS, where: { operation: 'active', status: ['running', 'ready'] }, field: 'child_id', value: 'payment_loop' }} | ${true}
    ${{ path: RECORDS, field: 'operation', value: 'active' }}                                                                    | ${true}
    ${{ path: RECORDS, count: 2 }}                                                                                               | ${true}
    ${{ path: RECORDS, where: { child_id: 'ledger_sync' }, field: 'failure', exists: true }}                                     | ${true}
    ${{ path: 'result.type', where: { a: 'b' }, none: true }}                                                                    | ${false}
  `('$expectation holds: $holds', ({ expectation, holds }) => {
    const judged = judge(expectation as Record<string, unknown>);
    expect(judged.holds, judged.reason).toBe(holds);
    expect(judged.reason).not.toBe('');
  });

  it('says what it saw and why, naming the element', () => {
    const judged = judge({ path: RECORDS, where: { child_id: 'payment_loop' }, field: 'restart_limit.exhausted', value: true });
    expect(judged.seen).toBe('false');
    expect(judged.reason).toMatch(/restart_limit\.exhausted of .*child_id=payment_loop is false, expected/);
    expect(judge({ path: RECORDS, where: { child_id: 'gone' }, field: 'status', value: 'running' }).reason).toMatch(/^no /);
  });

  it.each([
    [{ path: 'a' }, /exactly one of/],
    [{ path: 'a', value: 1, none: true }, /exactly one of/],
    [{ path: 'a', op: '>', value: 'x' }, /number value/],
    [{ path: 'a', count: 1, value: 2 }, /cannot be combined/],
    [{ path: 'a..b', value: 1 }, /dotted path/],
    [{ path: 'a', value: 1, extra: 1 }, /Unrecognized key/],
  ])('refuses %j', (spec, message) => {
    const parsed = JsonExpectation.safeParse(spec);
    expect(parsed.success).toBe(false);
    expect(parsed.error!.issues.map((i) => i.message).join('; ')).toMatch(message);
  });

  it('renders only where values; describes in one line', () => {
    const j = JsonExpectation.parse({ path: RECORDS, where: { child_id: '{{ labels.child_id }}', attempt: 1 }, none: true });
    const rendered = renderWhere(j, (t) => t.replace('{{ labels.child_id }}', 'x'));
    expect(rendered.where).toEqual({ child_id: 'x', attempt: 1 });
    expect(describeJson(rendered)).toBe(`${RECORDS}[child_id=x,attempt=1] none`);
    expect(
      describeJson(
        JsonExpectation.parse({ path: RECORDS, where: { child_id: 'x' }, field: 'restart_limit.used', op: '>', value: 3 }),
      ),
    ).toBe(`${RECORDS}[child_id=x].restart_limit.used > 3`);
  });

  it('selectElements compares as text and skips what is not an object', () => {
    expect(selectElements([{ a: 1 }, { a: '1' }, { a: true }, 5, null, { b: 1 }], { a: 1 })).toEqual([{ a: 1 }, { a: '1' }]);
    expect(selectElements([{ a: { b: false } }, { a: { b: true } }], { 'a.b': 'false' })).toEqual([{ a: { b: false } }]);
    expect(selectElements([{ a: null }, {}, { a: 0 }], { a: null })).toEqual([{ a: null }, {}]);
  });
});
