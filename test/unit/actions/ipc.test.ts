import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { ipc, IpcSpec } from '../../../src/actions/ipc.js';
import { ActionError, OUTPUT_LIMIT } from '../../../src/actions/types.js';
import { createRender, TemplateError } from '../../../src/template.js';
import { parseWireJson } from '../../../src/supervisor/json.js';
import { goldenAnswer, startFakeSupervisor, type FakeSupervisor } from '../../helpers/golden-supervisor.js';
import { actionContext, describeActionContract } from './contract.js';

let supervisor: FakeSupervisor | undefined;
afterEach(async () => {
  await supervisor?.close();
  supervisor = undefined;
});

const RUN = { id: 'inc-0123abcd', procedure: 'P1-002', step: 'remove-child', attempt: 1 };
const runContext = (signal = new AbortController().signal) => ({ ...actionContext(signal), run: RUN });
const missingSocket = () => join(tmpdir(), `remediator-no-such-${process.pid}.sock`);

/** A hello advertising `seconds` for every command. */
function helloAdvertising(seconds: number): string {
  return goldenAnswer('hello').replaceAll('"timeout_seconds":30', `"timeout_seconds":${seconds}`);
}

describeActionContract(ipc, {
  valid: { path: '/run/rust-supervisor/payments-worker-a.sock', method: 'state', target_id: 'payments-worker-a' },
  slow: async () => {
    supervisor = await startFakeSupervisor({ hello: goldenAnswer('hello'), state: 'hang' });
    return IpcSpec.parse({ path: supervisor.path, method: 'state', timeout: '30s' });
  },
  started: async () => {
    for (let i = 0; supervisor!.lines.length === 0; i++) {
      if (i > 500) throw new Error('no request reached the socket');
      await new Promise((r) => setTimeout(r, 2));
    }
  },
  bigOutput: async () => {
    const big = `{"request_id":"x","ok":true,"result":{"type":"state","pad":"${'x'.repeat(OUTPUT_LIMIT * 2)}"}}`;
    supervisor = await startFakeSupervisor({ state: big });
    return IpcSpec.parse({ path: supervisor.path, method: 'state' });
  },
  // No socket: the hello for the advertised timeout cannot connect. The secret sits in the reason.
  failing: (secret) =>
    IpcSpec.parse({
      path: missingSocket(),
      method: 'command.quarantine_child',
      target_id: 't',
      child: 'c',
      reason: secret,
    }),
});

describe('actions/ipc spec (checked when the rules load)', () => {
  const base = { path: '{{ vars.ipc_path }}', target_id: '{{ vars.target_id }}' };
  it.each([
    [{ ...base, method: 'command.remove_child', child: 'c' }, 'confirmed', /without confirmation/],
    [{ ...base, method: 'command.remove_child', child: 'c', confirmed: false }, 'confirmed', /confirmed: true/],
    [{ ...base, method: 'command.add_child', manifest: 'x' }, 'confirmed', /confirmation/],
    [{ ...base, method: 'command.shutdown_tree' }, 'confirmed', /confirmation/],
    [{ ...base, method: 'command.quarantine_child' }, 'child', /needs child/],
    [{ ...base, method: 'command.add_child', confirmed: true }, 'manifest', /needs manifest/],
    [{ ...base, method: 'command.add_child', confirmed: true, manifest: 'x', child: 'c' }, 'child', /takes no child/],
    [{ ...base, method: 'command.quarantine_child', child: 'c', manifest: 'x' }, 'manifest', /add_child only/],
    [{ path: base.path, method: 'command.quarantine_child', child: 'c' }, 'target_id', /needs target_id/],
    [{ ...base, method: 'state', child: 'c' }, 'child', /for commands/],
    [{ ...base, method: 'hello', confirmed: true }, 'confirmed', /for commands/],
    [{ ...base, path: '/run/{{ labels.instance }}.sock', method: 'state' }, 'path', /vars or env only/],
    [{ ...base, target_id: '{{ labels.target_id }}', method: 'state' }, 'target_id', /vars or env only/],
    [{ ...base, path: '{{ item.path }}', method: 'state' }, 'path', /vars or env only/],
    [{ ...base, method: 'command.restart' }, 'method', /Invalid option/],
    [{ ...base, method: 'state', timeout: 'soon' }, 'timeout', /duration/],
  ])('refuses %j at %s', (spec, path, message) => {
    const parsed = IpcSpec.safeParse(spec);
    expect(parsed.success).toBe(false);
    const issue = parsed.error!.issues.find((i) => i.path[0] === path);
    expect(issue?.message, JSON.stringify(parsed.error!.issues)).toMatch(message);
  });

  it('accepts the shapes the P1 procedures use', () => {
    for (const spec of [
      { ...base, method: 'state' },
      { path: base.path, method: 'hello', timeout: '2s' },
      { ...base, method: 'command.quarantine_child', child: '{{ labels.child_id }}' },
      { ...base, method: 'command.quarantine_child', child: '{{ item.child_id }}', reason: 'starved loop' },
      { ...base, method: 'command.remove_child', child: '{{ labels.child_id }}', confirmed: true },
      { ...base, method: 'command.add_child', confirmed: true, manifest: '{{ vars.child_manifest }}' },
      { ...base, method: 'command.restart_child', child: 'c', confirmed: false },
    ])
      expect(IpcSpec.safeParse(spec).success, JSON.stringify(spec)).toBe(true);
  });

  it('renders the child as one path segment: an alert label cannot widen or move the target', () => {
    const spec = IpcSpec.parse({ ...base, method: 'command.quarantine_child', child: '{{ labels.child_id }}' });
    const scope = (child_id: string) =>
      createRender({ labels: { child_id }, annotations: {}, vars: { ipc_path: '/run/s.sock', target_id: 't' }, env: {} });
    expect(ipc.render(spec, scope('payment_loop'))).toMatchObject({ path: '/run/s.sock', target_id: 't', child: 'payment_loop' });
    for (const bad of ['a/b', '..', '.', '', 'x\u0000y', 'a\\b'])
      expect(() => ipc.render(spec, scope(bad)), JSON.stringify(bad)).toThrow(TemplateError);
  });

  it('describes itself in one line', () => {
    const spec = IpcSpec.parse({ ...base, method: 'command.remove_child', child: 'c', confirmed: true });
    expect(ipc.describe(spec)).toBe('IPC command.remove_child child c (confirmed) on {{ vars.ipc_path }}');
  });
});

describe('actions/ipc run', () => {
  it('sends a command with every required field filled from the run', async () => {
    supervisor = await startFakeSupervisor({
      hello: goldenAnswer('hello'),
      'command.remove_child': goldenAnswer('remove-child'),
    });
    const spec = IpcSpec.parse({
      path: supervisor.path,
      method: 'command.remove_child',
      target_id: 'payments-worker-a',
      child: 'payment_loop',
      confirmed: true,
      reason: 'child crash loop',
    });
    const before = BigInt(Date.now() - 1000) * 1_000_000n; // the client clock is wall-at-load + monotonic: allow drift
    const result = await ipc.run(spec, runContext());
    const sent = supervisor.lines.find((l) => l.includes('command.remove_child'))!;
    const request = parseWireJson(sent) as { method: string; params: Record<string, unknown> };
    expect(request.method).toBe('command.remove_child');
    expect(request.params).toMatchObject({
      command: 'remove_child',
      command_id: 'P1-002-inc-0123abcd-remove-child-payment_loop',
      confirmed: true,
      reason: 'P1-002 step remove-child: child crash loop',
      requested_by: 'remediator',
      target: { child_path: '/payment_loop' },
      target_id: 'payments-worker-a',
    });
    // A bare JSON integer of today's Unix nanoseconds (serde u128 refuses a string).
    expect(sent).toMatch(/"requested_at_unix_nanos":\d{19},/);
    expect(BigInt(request.params.requested_at_unix_nanos as string)).toBeGreaterThanOrEqual(before);

    expect(result.status).toBe('succeeded');
    expect(result.detail).toMatchObject({ method: 'command.remove_child', accepted: true, timedOut: false });
    expect(result.detail?.commandId).toBe('P1-002-inc-0123abcd-remove-child-payment_loop');
    expect(result.output).toBe(
      goldenAnswer('remove-child').replace(
        /^\{"request_id":"[^"]*"/,
        `{"request_id":${JSON.stringify((parseWireJson(sent) as { request_id: string }).request_id)}`,
      ),
    );
    const body = result.body as { ok: boolean; result: { result: { accepted: boolean; completed_at_unix_nanos: string } } };
    expect(body.result.result.accepted).toBe(true);
    expect(body.result.result.completed_at_unix_nanos).toBe('1747650000123456789'); // lossless
  });

  it('a retried attempt gets its own command_id; without a run the action makes one up', async () => {
    supervisor = await startFakeSupervisor({
      hello: goldenAnswer('hello'),
      'command.quarantine_child': goldenAnswer('quarantine-child'),
    });
    const spec = IpcSpec.parse({
      path: supervisor.path,
      method: 'command.quarantine_child',
      target_id: 'payments-worker-a',
      child: 'c',
    });
    await ipc.run(spec, { ...actionContext(), run: { ...RUN, attempt: 2 } });
    await ipc.run(spec, actionContext());
    const ids = supervisor
      .requests()
      .filter((r) => r.method === 'command.quarantine_child')
      .map((r) => r.params.command_id);
    expect(ids[0]).toBe('P1-002-inc-0123abcd-remove-child-c-a2');
    expect(ids[1]).toMatch(/^remediator-[0-9a-f-]{36}-c$/);
    expect(supervisor.requests().find((r) => r.method === 'command.quarantine_child')?.params.confirmed).toBe(false);
  });

  it('accepted: false is a failed result with the command error code; ok: false likewise', async () => {
    supervisor = await startFakeSupervisor({
      hello: goldenAnswer('hello'),
      'command.restart_child': goldenAnswer('errors', 8),
      'command.remove_child': goldenAnswer('dangerous-unconfirmed'),
    });
    const restart = await ipc.run(
      IpcSpec.parse({ path: supervisor.path, method: 'command.restart_child', target_id: 'payments-worker-a', child: 'c' }),
      runContext(),
    );
    expect(restart).toMatchObject({ status: 'failed', detail: { accepted: false, errorCode: 'validation_failed' } });
    const remove = await ipc.run(
      IpcSpec.parse({
        path: supervisor.path,
        method: 'command.remove_child',
        target_id: 'payments-worker-a',
        child: 'c',
        confirmed: true,
      }),
      runContext(),
    );
    expect(remove).toMatchObject({ status: 'failed', detail: { accepted: false, errorCode: 'validation_failed' } });
    expect((remove.body as { ok: boolean }).ok).toBe(false);
  });

  it('a query that gets no answer in time is a failed RESULT with detail.timedOut, not an exception', async () => {
    supervisor = await startFakeSupervisor({ hello: goldenAnswer('hello'), state: 'hang' });
    const result = await ipc.run(IpcSpec.parse({ path: supervisor.path, method: 'state', timeout: '200ms' }), runContext());
    expect(result).toMatchObject({ status: 'failed', detail: { method: 'state', timedOut: true } });
    expect(result.output).toMatch(/no answer to state within 200ms/);
    const hello = await ipc.run(IpcSpec.parse({ path: supervisor.path, method: 'hello' }), runContext());
    expect(hello).toMatchObject({ status: 'succeeded', detail: { timedOut: false } });
  });

  it("a command's default timeout is the one hello advertises", async () => {
    supervisor = await startFakeSupervisor({ hello: helloAdvertising(1), 'command.quarantine_child': 'hang' });
    const result = await ipc.run(
      IpcSpec.parse({ path: supervisor.path, method: 'command.quarantine_child', target_id: 'payments-worker-a', child: 'c' }),
      runContext(),
    );
    expect(result).toMatchObject({ status: 'failed', detail: { timedOut: true } });
    expect(result.output).toMatch(/within 1s/); // 1 s advertised, not the 30 s default
  });

  it('no socket, or nobody listening: a retryable ActionError (the supervisor may be restarting)', async () => {
    for (const method of ['state', 'command.quarantine_child'] as const) {
      const spec = IpcSpec.parse({
        path: missingSocket(),
        method,
        ...(method === 'state' ? {} : { target_id: 't', child: 'c' }),
      });
      const err = await ipc.run(spec, runContext()).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(ActionError);
      expect(err).toMatchObject({ retryable: true });
      expect((err as Error).message).toMatch(/ENOENT/);
    }
  });

  it('an unreadable answer is a non-retryable ActionError', async () => {
    supervisor = await startFakeSupervisor({ state: '{"request_id":"x","ok":true}' });
    const err = await ipc.run(IpcSpec.parse({ path: supervisor.path, method: 'state' }), runContext()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ActionError);
    expect(err).toMatchObject({ retryable: false });
  });

  it('a child id that is not one path segment is never sent, whatever filled it', async () => {
    supervisor = await startFakeSupervisor({ hello: goldenAnswer('hello') });
    const result = await ipc.run(
      { path: supervisor.path, method: 'command.quarantine_child', target_id: 't', child: 'a/b' },
      runContext(),
    );
    expect(result).toMatchObject({ status: 'failed', detail: { sent: false } });
    expect(supervisor.lines).toEqual([]);
  });
});

describe('actions/ipc in a rule file (what `remediator check` reports)', () => {
  it('a remove_child without confirmed: true, and a socket path from a label, are refused at load with their place', async () => {
    const { parseRuleFile, formatProblem } = await import('../../../src/rules/load.js');
    const text = `id: T
title: t
match: ['alertname="ChildCrashLoop"']
target: "{{ labels.instance }}"
vars: { ipc_path: /run/s.sock, target_id: t }
steps:
  - name: remove
    action: { ipc: { path: "{{ vars.ipc_path }}", method: command.remove_child, target_id: "{{ vars.target_id }}", child: "{{ labels.child_id }}" } }
  - name: state
    action: { ipc: { path: "/run/{{ labels.instance }}.sock", method: state } }
`;
    const { procedure, problems } = parseRuleFile('t.yaml', text, {});
    expect(procedure).toBeUndefined();
    const lines = problems.map(formatProblem);
    expect(lines).toContainEqual(expect.stringMatching(/^t\.yaml:8: steps\[0\]\.action\.ipc\.confirmed: .*confirmed: true/));
    expect(lines).toContainEqual(expect.stringMatching(/^t\.yaml:10: steps\[1\]\.action\.ipc\.path: .*vars or env only/));
    const fixed = text
      .replace('child: "{{ labels.child_id }}" }', 'child: "{{ labels.child_id }}", confirmed: true }')
      .replace('/run/{{ labels.instance }}.sock', '{{ vars.ipc_path }}');
    expect(parseRuleFile('t.yaml', fixed, {}).problems).toEqual([]);
  });
});
