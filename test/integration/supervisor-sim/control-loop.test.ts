/**
 * The simulated control loop, seen only through the IPC socket: a stalled loop leaves `hello` answering while
 * `state` and commands hang; a task that never yields starves it for good; a crash loop uses up its windowed
 * restart limit and then simply stops being restarted (no automatic quarantine).
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startSupervisor, type SupervisorProcess } from '../../../sim/launch.js';
import { createIpcClient } from '../../../src/supervisor/ipc-client.js';
import { findChildRecord, readCommandResult, readState } from '../../../src/supervisor/results.js';
import { waitFor } from '../../helpers/wait.js';

const running: SupervisorProcess[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => p.stop(2000)));
});

async function start(children: Record<string, unknown>[], policy: Record<string, unknown> = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'supsim-'));
  const p = await startSupervisor({
    dir,
    config: {
      children,
      policy,
      ipc: {
        registration: {
          enabled: true,
          relay_registration_path: join(dir, 'none.sock'),
          lease_seconds: 30,
          registration_heartbeat_interval_seconds: 15,
        },
      },
    },
  });
  running.push(p);
  return { p, client: createIpcClient({ path: p.ipcPath, timeoutMs: 500 }) };
}

const quarantine = (childId: string) => ({
  commandId: 'test-quarantine',
  targetId: 'payments-worker-a',
  childId,
  reason: 'test',
  requestedBy: 'remediator',
  confirmed: false,
});

describe('sim/supervisor control loop', () => {
  it('a stalled loop: hello answers, state and commands time out; they answer again once it turns', async () => {
    const { p, client } = await start([{ name: 'payment_loop' }]);
    await p.fault('stall');
    expect((await client.call('hello', {})).status).toBe('answered');
    expect((await client.call('state', { target_id: p.targetId })).status).toBe('timed_out');
    const cmd = await client.command('quarantine_child', quarantine('payment_loop')).catch((e: unknown) => e);
    expect(cmd).toMatchObject({ name: 'IpcTimeoutError', timedOut: true });
    // validation happens in the IPC task, before the loop: still answered
    const unconfirmed = await client.command('remove_child', { ...quarantine('payment_loop'), confirmed: false });
    expect(unconfirmed.response.error?.message).toBe('dangerous command requires confirmation');
    await p.fault('unstall');
    const { response } = await client.state(p.targetId, { timeoutMs: 5000 });
    // the quarantine sent during the stall was queued and runs once the loop turns
    expect(findChildRecord(readState(response).state, 'payment_loop')?.operation).toBe('quarantined');
  });

  it('a child that never yields starves the loop for good; quarantining it cannot even be processed', async () => {
    const { p, client } = await start([{ name: 'payment_loop' }, { name: 'hot', behavior: 'normal' }]);
    expect((await client.call('state', {})).status).toBe('answered');
    await p.fault('block', { child: 'hot' });
    expect((await client.call('hello', {})).status).toBe('answered');
    expect((await client.call('state', {})).status).toBe('timed_out');
    const q = await client.call('command.quarantine_child', {
      command: 'quarantine_child',
      command_id: 'q',
      confirmed: false,
      correlation_id: null,
      reason: 'P1-004',
      requested_at_unix_nanos: 1n,
      requested_by: 'remediator',
      target: { child_path: '/hot' },
      target_id: p.targetId,
    });
    expect(q.status).toBe('timed_out');
  });

  it('a crash loop uses up the windowed restart limit, then the child stays down without being quarantined', async () => {
    const { p, client } = await start([{ name: 'ledger_sync' }], { child_restart_limit: 3, child_restart_window_ms: 60_000 });
    await p.fault('crash-loop', { child: 'ledger_sync', panic_after_ms: 30 });
    const record = await waitFor('restarts stop', async () => {
      const r = findChildRecord(readState((await client.state(p.targetId)).response).state, 'ledger_sync');
      return r?.restart_limit.used === 4 ? r : undefined;
    });
    expect(record).toMatchObject({
      status: null,
      attempt: null,
      operation: 'active',
      restart_limit: { limit: 3, used: 4, remaining: 0, exhausted: true },
    });
    await new Promise((r) => setTimeout(r, 300));
    const later = findChildRecord(readState((await client.state(p.targetId)).response).state, 'ledger_sync');
    expect(later).toMatchObject({ status: null, restart_limit: { used: 4 } });
    expect(p.stderr()).toContain(
      "thread 'tokio-runtime-worker' panicked at src/tasks/ledger_sync.rs:31:13:\ninjected panic after 30ms\nnote: run with `RUST_BACKTRACE=1`",
    );
    expect(p.stderr().match(/note: run with/g)).toHaveLength(1);
  });

  it('a child that ignores cancel stays cancelling after quarantine; the stop deadline marks it failed', async () => {
    const { p, client } = await start([{ name: 'stuck', behavior: 'ignore_cancel' }]);
    const q = await client.command('quarantine_child', quarantine('stuck'));
    const outcome = readCommandResult(q.response).result.state_delta;
    expect(outcome).toMatchObject({
      type: 'child_control',
      outcome: { status: 'cancelling', stop_state: 'cancel_delivered', cancel_delivered: true },
    });
    const record = findChildRecord(readState((await client.state(p.targetId)).response).state, 'stuck');
    expect(record).toMatchObject({ status: 'cancelling', operation: 'quarantined', stop_state: 'cancel_delivered' });
  });

  it('a hogging child makes the loop answer late: state misses a short timeout, a quarantine gets through and ends the hog', async () => {
    const { p, client } = await start([{ name: 'payment_loop' }, { name: 'batch', criticality: 'optional' }]);
    await p.fault('hog', { child: 'batch', ms: 1500 });
    expect((await client.call('hello', {})).status).toBe('answered');
    expect((await client.call('state', {}, { timeoutMs: 1000 })).status).toBe('timed_out');
    const q = await client.command('quarantine_child', quarantine('batch'), { timeoutMs: 10_000 });
    expect(readCommandResult(q.response).result.accepted).toBe(true);
    // the cancel reached the task at its next await: it stopped, and the loop turns at speed again
    const record = await waitFor('the hog to stop', async () => {
      const r = await client.call('state', {}, { timeoutMs: 1000 });
      return r.status === 'answered' ? findChildRecord(readState(r.response).state, 'batch') : undefined;
    });
    expect(record).toMatchObject({ operation: 'quarantined', status: null });
  });

  it('a hogging child that ignores cancel keeps the loop late after its quarantine, stuck cancelling', async () => {
    const { p, client } = await start([{ name: 'batch', criticality: 'optional' }]);
    await p.fault('hog', { child: 'batch', ms: 1500 });
    await p.fault('ignore-cancel', { child: 'batch' });
    await client.command('quarantine_child', quarantine('batch'), { timeoutMs: 10_000 });
    expect((await client.call('state', {}, { timeoutMs: 1000 })).status).toBe('timed_out');
    const { response } = await client.state(p.targetId, { timeoutMs: 10_000 });
    expect(findChildRecord(readState(response).state, 'batch')).toMatchObject({ operation: 'quarantined', status: 'cancelling' });
  });
});
