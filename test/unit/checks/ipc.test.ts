import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { ipc, IpcCheckSpec } from '../../../src/checks/ipc.js';
import { CheckUnavailableError } from '../../../src/checks/types.js';
import { CheckSpec } from '../../../src/rules/schema.js';
import { createRender } from '../../../src/template.js';
import { goldenAnswer, startFakeSupervisor, type FakeSupervisor } from '../../helpers/golden-supervisor.js';
import { checkContext, describeCheckContract } from './contract.js';

let supervisor: FakeSupervisor | undefined;
afterEach(async () => {
  await supervisor?.close();
  supervisor = undefined;
});

const RECORDS = 'result.state.child_runtime_records';
const ctx = () => checkContext(new AbortController().signal);
const evaluate = (spec: Record<string, unknown>) => ipc.evaluate(IpcCheckSpec.parse(spec), ctx());
const gone = () => join(tmpdir(), `remediator-no-such-${process.pid}.sock`);

describeCheckContract(ipc, {
  valid: { ipc: { path: '{{ vars.ipc_path }}', method: 'state', timeout: '2s' }, ok: true },
  slow: async () => {
    supervisor = await startFakeSupervisor({ state: 'hang' });
    return { spec: { ipc: { path: supervisor.path, method: 'state', timeout: '30s' } } };
  },
  started: async () => {
    for (let i = 0; supervisor!.lines.length === 0; i++) {
      if (i > 500) throw new Error('no request reached the socket');
      await new Promise((r) => setTimeout(r, 2));
    }
  },
  // An answer that is not dashboard-ipc.v1 cannot be judged: unknown, and the secret (in the target id) stays out.
  failing: async (secret) => {
    supervisor = await startFakeSupervisor({ state: '{"request_id":"x","ok":true}' });
    return { spec: { ipc: { path: supervisor.path, method: 'state', target_id: secret } } };
  },
});

describe('checks/ipc', () => {
  it('is taken from a rule by its key, with timing, and refuses labels in the socket path', () => {
    const use = CheckSpec.parse({
      ipc: { path: '{{ vars.ipc_path }}', method: 'state' },
      json: { path: RECORDS, where: { child_id: '{{ labels.child_id }}' }, count: 1 },
      within: '30s',
    });
    expect(use.kind).toBe('ipc');
    expect(use.timing).toEqual({ withinMs: 30_000 });
    expect(use.describe()).toBe(`IPC state, answers ok, ${RECORDS}[child_id={{ labels.child_id }}] count == 1 within 30s`);
    expect(CheckSpec.safeParse({ ipc: { path: '/run/{{ labels.instance }}.sock', method: 'state' } }).success).toBe(false);
    expect(CheckSpec.safeParse({ ipc: { path: '/x', method: 'command.quarantine_child' } }).success).toBe(false);
    expect(CheckSpec.safeParse({ ipc: { path: '/x', method: 'state' }, timedOut: true, ok: true }).success).toBe(false);
  });

  it('renders where values from the alert; the path from vars', () => {
    const spec = IpcCheckSpec.parse({
      ipc: { path: '{{ vars.ipc_path }}', method: 'state', target_id: '{{ vars.target_id }}' },
      json: [{ path: RECORDS, where: { child_id: '{{ labels.child_id }}' }, none: true }],
    });
    const r = createRender({
      labels: { child_id: 'c/../x' },
      annotations: {},
      vars: { ipc_path: '/run/s.sock', target_id: 't' },
      env: {},
    });
    expect(ipc.render(spec, r)).toEqual({
      ipc: { path: '/run/s.sock', method: 'state', target_id: 't' },
      json: [{ path: RECORDS, where: { child_id: 'c/../x' }, none: true }], // compared, never used as a path
    });
  });

  it('state answering ok, with a record selected by the alert child, holds; and says what it saw', async () => {
    supervisor = await startFakeSupervisor({ state: goldenAnswer('state-crash-loop') });
    const outcome = await evaluate({
      ipc: { path: supervisor.path, method: 'state', target_id: 'payments-worker-a' },
      json: [
        { path: RECORDS, where: { child_id: 'ledger_sync' }, field: 'restart_limit.exhausted', value: true },
        { path: RECORDS, where: { child_id: 'ledger_sync' }, field: 'status', value: null },
      ],
    });
    expect(outcome.holds, outcome.reason).toBe(true);
    expect(outcome.observed.map((o) => [o.labels.field, o.value])).toEqual([
      ['timedOut', 'false'],
      ['ok', 'true'],
      [`${RECORDS}[child_id=ledger_sync].restart_limit.exhausted == true`, 'true'],
      [`${RECORDS}[child_id=ledger_sync].status == null`, null],
    ]);
    expect(supervisor.requests()[0]?.params).toEqual({ target_id: 'payments-worker-a' });
  });

  it('a child that is not in state: none holds, a field comparison does not', async () => {
    supervisor = await startFakeSupervisor({ state: goldenAnswer('state-healthy') });
    const path = supervisor.path;
    expect(
      (await evaluate({ ipc: { path, method: 'state' }, json: { path: RECORDS, where: { child_id: 'ghost' }, none: true } }))
        .holds,
    ).toBe(true);
    const missing = await evaluate({
      ipc: { path, method: 'state' },
      json: { path: RECORDS, where: { child_id: 'ghost' }, field: 'operation', value: 'quarantined' },
    });
    expect(missing.holds).toBe(false);
    expect(missing.reason).toMatch(/no .*child_id=ghost/);
  });

  it('P1-004: state times out while hello answers: timedOut true holds for state; ok holds for hello', async () => {
    supervisor = await startFakeSupervisor({ hello: goldenAnswer('hello'), state: 'hang' });
    const path = supervisor.path;
    const starved = await evaluate({ ipc: { path, method: 'state', timeout: '200ms' }, timedOut: true });
    expect(starved.holds, starved.reason).toBe(true);
    expect(starved.observed).toEqual([
      expect.objectContaining({ labels: { method: 'state', field: 'timedOut' }, value: 'true' }),
    ]);
    const notOk = await evaluate({ ipc: { path, method: 'state', timeout: '200ms' } });
    expect(notOk).toMatchObject({ holds: false, reason: 'no answer within 200ms' });
    expect((await evaluate({ ipc: { path, method: 'hello', timeout: '200ms' }, ok: true })).holds).toBe(true);
    expect((await evaluate({ ipc: { path, method: 'hello', timeout: '200ms' }, timedOut: false })).holds).toBe(true);
  });

  it('an ok: false answer: ok: false holds, ok (default) does not, with the server error in the reason', async () => {
    supervisor = await startFakeSupervisor({ hello: goldenAnswer('hello-registration-disabled') });
    const path = supervisor.path;
    expect((await evaluate({ ipc: { path, method: 'hello' }, ok: false })).holds).toBe(true);
    const r = await evaluate({ ipc: { path, method: 'hello' } });
    expect(r.holds).toBe(false);
    expect(r.reason).toMatch(/validation_failed at registration: dynamic registration is not enabled/);
  });

  it('no socket is a fact about the supervisor (does not hold), not an unknown', async () => {
    const r = await evaluate({ ipc: { path: gone(), method: 'state' } });
    expect(r.holds).toBe(false);
    expect(r.reason).toMatch(/no answer: .*ENOENT/);
    expect((await evaluate({ ipc: { path: gone(), method: 'state' }, timedOut: true })).holds).toBe(false);
  });

  it('an unreadable answer is unknown (CheckUnavailableError, not retried)', async () => {
    supervisor = await startFakeSupervisor({ state: 'garbage' });
    const err = await evaluate({ ipc: { path: supervisor.path, method: 'state' } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CheckUnavailableError);
    expect(err).toMatchObject({ retryable: false });
  });
});
