import { describe, expect, it } from 'vitest';
import { actionByKind } from '../../../src/actions/index.js';
import { describeCheck, formatEstimate, renderRunbook, stepNumbers } from '../../../src/rules/docs.js';
import { CheckSpec, RuleFile, type Procedure } from '../../../src/rules/schema.js';

/** The action's own one-liner (actions own their wording), as a table cell. */
const describeAction = (kind: string, spec: unknown) => {
  const action = actionByKind.get(kind)!;
  return action.describe(action.spec.parse(spec)).replace(/\|/g, '\\|');
};

const procedure = (input: unknown): Procedure => ({ ...RuleFile.parse(input), file: 'rules/x.yaml' });

const P1_003 = procedure({
  id: 'P1-003',
  title: 'Dashboard IPC Disconnected',
  description: 'Symptoms: health.dashboard_link == "disconnected"; dashboard UI shows no data.',
  match: ['alertname="DashboardIPCDisconnected"'],
  target: '{{ labels.instance }}',
  vars: { relay_process: 'relay', socket: '/tmp/supervisor.sock' },
  sla: '15m',
  steps: [
    {
      name: 'check-socket',
      action: { exec: { command: ['ls', '-la', '{{ vars.socket }}'] } },
      expect: { status: 'passed' },
      expected: 'Socket file present with correct permissions',
      estimate: '1m',
    },
    {
      name: 'restart-relay',
      action: { signal: { process: '{{ vars.relay_process }}', signal: 'SIGTERM' } },
      expect: {
        promql: 'supervisor_relay_registration_socket_present{instance="{{ labels.instance }}"}',
        op: '==',
        value: 1,
        within: '10s',
      },
      estimate: '3m',
    },
    {
      name: 'restart-supervisor',
      description: 'If still disconnected, restart the supervisor process',
      when: { step: 'restart-relay', status: 'failed' },
      action: { exec: { command: ['systemctl', 'restart', 'supervisor'] } },
      expect: { promql: 'supervisor_child_operation{operation=~"active|paused"}', op: '==', value: 1, within: '30s' },
      estimate: '2m',
    },
    { name: 'settle', when: { step: 'restart-relay', status: 'passed' }, action: { wait: { duration: '5s' } } },
  ],
  escalation: [
    { when: ['failed', 'timeout'], to: ['alertmanager'], attach: ['outputs', 'metrics'], message: 'IPC still disconnected' },
  ],
});

describe('rules/docs', () => {
  it('renders a procedure in the runbook table form', () => {
    expect(renderRunbook([P1_003]).split('\n')).toEqual([
      '## P1-003: Dashboard IPC Disconnected',
      '',
      'Symptoms: health.dashboard_link == "disconnected"; dashboard UI shows no data.',
      '',
      '| Step | Action | Expected Metrics | Estimated Duration |',
      '|---|---|---|---|',
      `| 1 | ${describeAction('exec', { command: ['ls', '-la', '/tmp/supervisor.sock'] })} | Socket file present with correct permissions | 1min |`,
      `| 2 | ${describeAction('signal', { process: 'relay', signal: 'SIGTERM' })} | supervisor_relay_registration_socket_present{instance="<instance>"} == 1 within 10s | 3min |`,
      '| 3 | If still disconnected, restart the supervisor process | supervisor_child_operation{operation=~"active\\|paused"} == 1 within 30s | 2min |',
      `| 4 | If step restart-relay status passed: ${describeAction('wait', { duration: '5s' })} |  |  |`,
      '',
      'Escalation: When failed or timeout, notify alertmanager with outputs, metrics: IPC still disconnected.',
      '',
      'Total estimated duration: 6min (within 15min SLA).',
      '',
    ]);
  });

  it('prefers the runbook text for escalation and the total estimate when given', () => {
    const p = procedure({
      id: 'P1-002',
      title: 'Child Task Crash Loop',
      match: ['alertname=ChildCrashLoop'],
      target: 'x',
      estimate: '8m',
      escalationText: 'If child root cause not identified in 10min,\nfile a bug with the exit reason.',
      steps: [{ name: 'verify', expect: { promql: 'supervisor_child_restart_limit_exhausted == 1', empty: true } }],
    });
    expect(renderRunbook([p]).split('\n').slice(2)).toEqual([
      '| Step | Action | Expected Metrics | Estimated Duration |',
      '|---|---|---|---|',
      '| 1 | Verify | supervisor_child_restart_limit_exhausted == 1 returns no series |  |',
      '',
      'Escalation: If child root cause not identified in 10min, file a bug with the exit reason.',
      '',
      'Total estimated duration: 8min.',
      '',
    ]);
  });

  it('separates procedures and says when nothing is estimated or escalated', () => {
    const a = procedure({
      id: 'a',
      title: 'A',
      match: ['a=b'],
      target: 'x',
      steps: [{ name: 's', action: { wait: { duration: '1s' } } }],
    });
    const text = renderRunbook([a, { ...a, id: 'b', title: 'B' }]);
    expect(text).toContain('Escalation: none configured\n\nTotal estimated duration: not estimated.\n\n## b: B\n');
  });

  it.each`
    spec                                                                | text
    ${{ promql: 'up', op: '>=', value: 1 }}                             | ${'up >= 1'}
    ${{ promql: 'up', empty: true, for: '30s' }}                        | ${'up returns no series for 30s'}
    ${{ promql: 'up', op: '==', value: 1, after: '5s', within: '1m' }}  | ${'up == 1 after 5s within 1min'}
    ${{ step: 'probe', exitCode: [0, 1] }}                              | ${'step probe exit code 0 or 1'}
    ${{ httpStatus: 200, json: { path: 'result', value: 'Accepted' } }} | ${'HTTP 200, result == "Accepted"'}
    ${{ output: 'Completed$' }}                                         | ${'output matches /Completed$/'}
  `('describes $spec as $text', ({ spec, text }: { spec: unknown; text: string }) => {
    expect(describeCheck(CheckSpec.parse(spec))).toBe(text);
  });

  it.each`
    ms           | text
    ${180_000}   | ${'3min'}
    ${30_000}    | ${'30s'}
    ${90_000}    | ${'1min30s'}
    ${7_200_000} | ${'2h'}
    ${3_600_000} | ${'60min'}
    ${500}       | ${'500ms'}
    ${0}         | ${'0s'}
  `('formats $ms ms as $text', ({ ms, text }: { ms: number; text: string }) => {
    expect(formatEstimate(ms)).toBe(text);
  });

  it('numbers the runbook steps as the runbook does; a step the runbook lacks (added) takes the number before it plus a letter', () => {
    expect(stepNumbers([{}, {}, { added: true }, { added: true }, {}, { added: false }])).toEqual([
      '1',
      '2',
      '2a',
      '2b',
      '3',
      '4',
    ]);
  });
});
