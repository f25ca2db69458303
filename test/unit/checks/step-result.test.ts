import { describe, expect, it } from 'vitest';
import { stepResult, type StepResultInput } from '../../../src/checks/step-result.js';
import type { CheckContext, StepState } from '../../../src/checks/types.js';
import { silentLogger } from '../../../src/log.js';
import { describeCheckContract } from './contract.js';
import type { PrometheusClient } from '../../../src/prometheus/client.js';

const noPrometheus: PrometheusClient = {
  query: () => Promise.reject(new Error('a step check must not query Prometheus')),
  ready: () => Promise.resolve(false),
};

function ctx(steps: Record<string, StepState>, currentStep = 'verify'): CheckContext {
  return {
    signal: new AbortController().signal,
    log: silentLogger,
    steps: new Map(Object.entries(steps)),
    currentStep,
    prometheus: noPrometheus,
  };
}

const steps: Record<string, StepState> = {
  'restart-relay': { status: 'failed', result: { status: 'failed', exitCode: 3, output: 'relay: connection refused\nretrying' } },
  'remove-child': {
    status: 'passed',
    result: {
      status: 'succeeded',
      httpStatus: 200,
      body: { result: 'Accepted', children: [{ id: 'a', state: 'running', restarts: 2, ok: true }], none: null },
    },
  },
  verify: { result: { status: 'succeeded', exitCode: 0, output: 'ok' } },
};

/** The spec as a rule file gives it, parsed as the loader does (the output pattern compiled). */
const parse = (spec: StepResultInput) => stepResult.spec.parse(spec);
const check = (spec: StepResultInput, current?: string) => stepResult.evaluate(parse(spec), ctx(steps, current));

describe('checks/step-result', () => {
  it.each`
    spec                                                                              | holds
    ${{ step: 'restart-relay', status: 'failed' }}                                    | ${true}
    ${{ step: 'restart-relay', status: 'passed' }}                                    | ${false}
    ${{ step: 'restart-relay', status: ['passed', 'failed'] }}                        | ${true}
    ${{ step: 'restart-relay', exitCode: 3 }}                                         | ${true}
    ${{ step: 'restart-relay', exitCode: [0, 1] }}                                    | ${false}
    ${{ step: 'restart-relay', output: 'connection refused' }}                        | ${true}
    ${{ step: 'restart-relay', output: '^retrying$' }}                                | ${false}
    ${{ step: 'restart-relay', output: 'refused\\nretry' }}                           | ${true}
    ${{ step: 'restart-relay', status: 'failed', exitCode: 0 }}                       | ${false}
    ${{ step: 'remove-child', httpStatus: 200 }}                                      | ${true}
    ${{ step: 'remove-child', httpStatus: [201, 202] }}                               | ${false}
    ${{ step: 'remove-child', json: { path: 'result', value: 'Accepted' } }}          | ${true}
    ${{ step: 'remove-child', json: { path: 'result', value: 'Rejected' } }}          | ${false}
    ${{ step: 'remove-child', json: { path: 'children.0.state', value: 'running' } }} | ${true}
    ${{ step: 'remove-child', json: { path: 'children.0.restarts', value: 2 } }}      | ${true}
    ${{ step: 'remove-child', json: { path: 'children.0.restarts', value: '2' } }}    | ${false}
    ${{ step: 'remove-child', json: { path: 'children.0.ok', value: true } }}         | ${true}
    ${{ step: 'remove-child', json: { path: 'none', value: null } }}                  | ${true}
    ${{ step: 'remove-child', json: { path: 'missing', value: null } }}               | ${false}
    ${{ step: 'remove-child', json: { path: 'children.1.state', value: 'running' } }} | ${false}
    ${{ step: 'remove-child', exitCode: 0 }}                                          | ${false}
    ${{ exitCode: 0, output: 'ok' }}                                                  | ${true}
  `('$spec holds: $holds', async ({ spec, holds }: { spec: StepResultInput; holds: boolean }) => {
    expect((await check(spec)).holds).toBe(holds);
  });

  it('observes what was seen, one observation per field', async () => {
    const out = await check({ step: 'restart-relay', status: 'failed', exitCode: [0], output: 'refused' });
    expect(out.observed.map((o) => [o.labels, o.value])).toEqual([
      [{ step: 'restart-relay', field: 'status' }, 'failed'],
      [{ step: 'restart-relay', field: 'exitCode' }, 3],
      [{ step: 'restart-relay', field: 'output' }, 'refused'],
    ]);
    expect(out.reason).toBe('step restart-relay: exit code 3, expected one of 0');
  });

  it('JSON observations keep strings and numbers; objects become JSON text', async () => {
    const out = await check({ step: 'remove-child', json: { path: 'children', value: 'x' } });
    expect(out.observed[0]!.value).toBe('[{"id":"a","state":"running","restarts":2,"ok":true}]');
    expect(out.reason).toContain('JSON children is [{');
  });

  it('without step: reads the current step; its status is not decided yet', async () => {
    const out = await check({ status: 'passed' });
    expect(out).toMatchObject({ holds: false, reason: 'step verify: status (not decided yet), expected passed' });
    expect(out.observed[0]!.value).toBeNull();
  });

  it('a step that has not run does not hold', async () => {
    await expect(check({ step: 'later', status: 'passed' })).resolves.toEqual({
      holds: false,
      observed: [],
      reason: 'step later has not run',
    });
  });

  it('a step without an action result: exitCode, output, httpStatus do not hold', async () => {
    const c = ctx({ wait: { status: 'passed' } });
    await expect(stepResult.evaluate(parse({ step: 'wait', exitCode: 0 }), c)).resolves.toMatchObject({
      holds: false,
      reason: 'step wait: exit code (none), expected 0',
    });
    await expect(stepResult.evaluate(parse({ step: 'wait', output: '.*' }), c)).resolves.toMatchObject({
      holds: false,
      reason: 'step wait: no output, expected /.*/',
    });
    await expect(stepResult.evaluate(parse({ step: 'wait', httpStatus: 200 }), c)).resolves.toMatchObject({ holds: false });
  });

  it('an invalid regular expression is refused at load, saying why (it never reaches a run)', () => {
    const parsed = stepResult.spec.safeParse({ step: 'restart-relay', output: '(' });
    expect(parsed.success).toBe(false);
    expect(parsed.error?.issues[0]).toMatchObject({ path: ['output'] });
    expect(parsed.error?.issues[0]?.message).toContain('not a valid regular expression');
  });

  it('describe() and render()', () => {
    expect(stepResult.describe(parse({ step: 'restart-relay', status: 'failed', exitCode: [0, 1] }))).toBe(
      'step restart-relay: status failed, exitCode one of 0, 1',
    );
    expect(stepResult.describe(parse({ output: 'ok' }))).toBe('step (this step): output =~ /ok/');
    const spec = parse({ step: 'a', output: '{{ labels.x }}' });
    expect(stepResult.render(spec, () => 'rendered')).toBe(spec);
  });
});

describeCheckContract(stepResult, {
  valid: { step: 'probe', exitCode: [0, 1], output: 'ready$' },
});

describe('checks/step-result: json selectors over an earlier ipc action body', () => {
  const state = {
    ok: true,
    result: {
      type: 'state',
      state: {
        child_runtime_records: [
          { child_id: 'a', operation: 'quarantined', status: 'cancelling', liveness: { heartbeat_stale: true } },
          { child_id: 'b', operation: 'active', status: 'running', liveness: { heartbeat_stale: false } },
        ],
      },
    },
  };
  const withState = { 'ask-state': { status: 'passed' as const, result: { status: 'succeeded' as const, body: state } } };
  const run = (spec: StepResultInput) => stepResult.evaluate(parse(spec), ctx(withState));
  const RECORDS = 'result.state.child_runtime_records';

  it.each`
    json                                                                                                                              | holds
    ${{ path: RECORDS, where: { child_id: 'a' }, field: 'operation', value: 'quarantined' }}                                          | ${true}
    ${{ path: RECORDS, where: { 'liveness.heartbeat_stale': true }, count: 1 }}                                                       | ${true}
    ${{ path: RECORDS, where: { child_id: 'c' }, none: true }}                                                                        | ${true}
    ${[{ path: 'ok', value: true }, { path: RECORDS, where: { operation: 'active' }, field: 'status', value: ['running', 'ready'] }]} | ${true}
    ${{ path: RECORDS, where: { child_id: 'b' }, field: 'operation', value: 'quarantined' }}                                          | ${false}
  `('$json holds: $holds', async ({ json, holds }) => {
    const outcome = await run({ step: 'ask-state', json: json as StepResultInput['json'] });
    expect(outcome.holds, outcome.reason).toBe(holds);
  });

  it('templates where values only', () => {
    const spec = parse({ step: 'ask-state', json: { path: RECORDS, where: { child_id: '{{ labels.child }}' }, none: true } });
    const rendered = stepResult.render(spec, (t) => t.replace('{{ labels.child }}', 'a'));
    expect(rendered.json).toEqual({ path: RECORDS, where: { child_id: 'a' }, none: true });
  });
});
