import { describe, expect, it } from 'vitest';
import { renderRunbook } from '../../../src/rules/docs.js';
import { RuleFile, type Procedure } from '../../../src/rules/schema.js';
import { exampleLabels, renderStepTable, renderWhatRuns, stepRuns } from '../../../src/rules/what-runs.js';

const procedure = (input: unknown): Procedure => ({ ...RuleFile.parse(input), file: 'rules/x.yaml' });

const P = procedure({
  id: 'P1-004',
  title: 'Runtime Starvation',
  match: ['alertname="RuntimeStarvation"', 'severity=~"page|critical"'],
  target: '{{ labels.instance }}',
  vars: { ipc_path: '/run/rust-supervisor/a.sock', target_id: 'payments-worker-a', token: 'x' },
  steps: [
    {
      name: 'quarantine',
      description: 'Quarantine offending child: handle.quarantine_child()',
      deviation: 'The command goes through the control loop: it hangs when the loop is starved.',
      action: {
        ipc: {
          path: '{{ vars.ipc_path }}',
          method: 'command.quarantine_child',
          target_id: '{{ vars.target_id }}',
          child: '{{ labels.child_id }}',
        },
      },
      expect: { step: 'quarantine', json: { path: 'result.result.accepted', value: true } },
    },
    {
      name: 'notify',
      added: true,
      action: {
        http: {
          method: 'POST',
          url: 'http://hooks.example/{{ labels.instance }}',
          headers: { authorization: '{{ env.TOKEN }}' },
        },
      },
    },
    {
      name: 'verify',
      description: 'Verify iterations increase after 5s',
      expect: { ipc: { path: '{{ vars.ipc_path }}', method: 'state', timeout: '2s' }, ok: true, after: '5s' },
    },
  ],
});

describe('what runs: each step rendered for an example alert, beside the runbook words and the deviation', () => {
  it('takes the example labels from the matchers and the labels the rule reads', () => {
    expect(exampleLabels(P)).toEqual({
      alertname: 'RuntimeStarvation',
      severity: 'page',
      instance: 'payments-host:9466',
      child_id: 'ledger_sync',
    });
  });

  it('renders the IPC request with the vars and the example child, the check, the deviation; run-time only values as holes', () => {
    const [quarantine, notify, verify] = stepRuns(P);
    expect(quarantine).toEqual({
      number: '1',
      name: 'quarantine',
      runbook: 'Quarantine offending child: handle.quarantine_child()',
      runs: 'ipc: IPC command.quarantine_child child ledger_sync on /run/rust-supervisor/a.sock',
      verifies: expect.stringContaining('result.result.accepted'),
      deviation: 'The command goes through the control loop: it hangs when the loop is starved.',
    });
    expect(notify!.number).toBe('1a');
    expect(notify!.runs).toContain('POST http://hooks.example/payments-host%3A9466');
    expect(verify).toMatchObject({ number: '2', runs: 'no action (verifies only)', verifies: 'IPC state answers ok after 5s' });
  });

  it('`remediator docs` appends the table below the runbook table, never as runbook rows (no bare step numbers)', () => {
    const text = renderRunbook([P], renderWhatRuns);
    const whatRuns = text.slice(text.indexOf('What remediator runs'));
    expect(whatRuns).toContain('| 1 quarantine | ipc: IPC command.quarantine_child child ledger_sync');
    expect(whatRuns.split('\n').filter((l) => /^\| \d+ \|/.test(l))).toEqual([]);
    expect(renderRunbook([P])).not.toContain('What remediator runs');
  });

  it('the markdown table has one row per step, pipes escaped', () => {
    const rows = renderStepTable([P])
      .split('\n')
      .filter((l) => l.startsWith('| P1-004'));
    expect(rows.map((r) => r.split(' | ')[0])).toEqual(['| P1-004 1', '| P1-004 1a', '| P1-004 2']);
  });
});
