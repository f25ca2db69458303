import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { afterEach, describe, expect, it } from 'vitest';
import { loadExporterConfig } from '../../src/config.js';
import { startExporter } from '../../src/exporter/exporter.js';
import { runIpcCommand } from '../../src/ipc-command.js';
import { silentLogger } from '../../src/log.js';
import { parseWireJson } from '../../src/supervisor/json.js';
import { goldenAnswer, startFakeSupervisor, type FakeSupervisor } from '../helpers/golden-supervisor.js';

let supervisor: FakeSupervisor | undefined;
afterEach(async () => {
  await supervisor?.close();
  supervisor = undefined;
});

async function run(argv: string[], env: Record<string, string> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const code = await runIpcCommand(argv, {
    env,
    stdout: (l) => out.push(l),
    stderr: (l) => err.push(l),
    readStdin: () => 'id: x\n',
  });
  return { code, out, err };
}

describe('remediator ipc', () => {
  it('prints the whole answer line and exits 0 for an ok query', async () => {
    supervisor = await startFakeSupervisor({ hello: goldenAnswer('hello'), state: goldenAnswer('state-healthy') });
    const r = await run(['state'], { SUPERVISOR_IPC_PATH: supervisor.path });
    expect(r.code).toBe(0);
    expect(r.out).toHaveLength(1);
    expect(r.out[0]).toContain('"generated_at_unix_nanos":1747650000000000000');
    expect((parseWireJson(r.out[0]!) as { result: { type: string } }).result.type).toBe('state');
  });

  it('a command takes the target id from hello, fills every field, and exits 0 only when accepted', async () => {
    supervisor = await startFakeSupervisor({
      hello: goldenAnswer('hello'),
      'command.quarantine_child': goldenAnswer('quarantine-child'),
    });
    const r = await run(['quarantine_child', '--path', supervisor.path, '--child', 'payment_loop', '--reason', 'by hand']);
    expect(r.code).toBe(0);
    const sent = supervisor.requests().find((q) => q.method === 'command.quarantine_child')!;
    expect(sent.params).toMatchObject({
      command: 'quarantine_child',
      target_id: 'payments-worker-a',
      target: { child_path: '/payment_loop' },
      reason: 'remediator: by hand',
      requested_by: 'remediator',
      confirmed: false,
    });
  });

  it('exit 1 for an answer that is not ok or not accepted; remove needs --confirmed (refused before sending)', async () => {
    supervisor = await startFakeSupervisor({ hello: goldenAnswer('hello'), 'command.restart_child': goldenAnswer('errors', 8) });
    expect((await run(['command.restart_child', '--path', supervisor.path, '--child', 'c'])).code).toBe(1);
    const refused = await run(['remove_child', '--path', supervisor.path, '--child', 'c']);
    expect(refused.code).toBe(64);
    expect(refused.err.join('\n')).toMatch(/confirmed/);
    expect(supervisor.requests().some((q) => q.method === 'command.remove_child')).toBe(false);
  });

  it('exit 2 with {"error":{"timedOut":true}} when state does not answer in time (the starvation signal)', async () => {
    supervisor = await startFakeSupervisor({ hello: goldenAnswer('hello'), state: 'hang' });
    const r = await run(['state', '--path', supervisor.path, '--timeout', '200ms']);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.out[0]!)).toMatchObject({ error: { timedOut: true, retryable: true } });
  });

  it('exit 3 when nothing answers; 64 for usage errors', async () => {
    const gone = join(tmpdir(), `remediator-none-${process.pid}.sock`);
    const r = await run(['hello', '--path', gone]);
    expect(r.code).toBe(3);
    expect(JSON.parse(r.out[0]!)).toMatchObject({ error: { timedOut: false, retryable: true } });
    expect((await run(['hello'])).code).toBe(64); // no path
    expect((await run([])).code).toBe(64);
    expect((await run(['state', '--bogus'])).code).toBe(64);
    expect((await run(['quarantine_child', '--path', gone, '--target-id', 't', '--child', '../x'])).code).toBe(64);
    expect((await run(['--help'])).out[0]).toMatch(/Usage: remediator ipc/);
  });

  it('add_child reads its manifest from a file or stdin', async () => {
    supervisor = await startFakeSupervisor({ hello: goldenAnswer('hello'), 'command.add_child': goldenAnswer('add-child') });
    const r = await run(['add_child', '--path', supervisor.path, '--confirmed', '--manifest', '-']);
    expect(r.code).toBe(0);
    expect(supervisor.requests().find((q) => q.method === 'command.add_child')?.params.target).toEqual({
      child_manifest: 'id: x\n',
      child_path: null,
    });
  });
});

describe('remediator ipc snapshot', () => {
  it("prints the exporter's last hello and last good state; exit 3 when no exporter answers", async () => {
    supervisor = await startFakeSupervisor({ hello: goldenAnswer('hello'), state: goldenAnswer('state-healthy') });
    const exporter = await startExporter(
      loadExporterConfig({ SUPERVISOR_IPC_PATH: supervisor.path, EXPORTER_HOST: '127.0.0.1', EXPORTER_PORT: '0' }),
      silentLogger,
    );
    try {
      await fetch(`http://127.0.0.1:${exporter.port}/metrics`);
      const r = await run(['snapshot'], { EXPORTER_PORT: String(exporter.port) });
      expect(r.code).toBe(0);
      const body = parseWireJson(r.out[0]!) as { target_id: string; last_good_state: { answer: { ok: boolean } } };
      expect(body).toMatchObject({ target_id: 'payments-worker-a', last_good_state: { answer: { ok: true } } });
    } finally {
      await exporter.stop();
    }
    const gone = await run(['snapshot', '--exporter', `http://127.0.0.1:${exporter.port}`]);
    expect(gone.code).toBe(3);
    expect(JSON.parse(gone.out[0]!)).toMatchObject({ error: { retryable: true } });
  });
});
