/**
 * Contract: the simulator against the golden transcripts. Each golden request line is written to the simulator's
 * socket as is; the answer must equal the golden answer after normalisation (timestamps, ipc_path), key order
 * included. State reads it only through the IPC socket; faults are not needed (each golden's scenario is config).
 */
import { mkdtempSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startSupervisor, type SupervisorConfigInput, type SupervisorProcess } from '../../../sim/launch.js';
import { goldenNames, keyOrder, loadGolden, normalise } from '../../helpers/ipc-golden.js';

const base = (
  children: Record<string, unknown>[],
  policy: Record<string, unknown> = {},
  shutdown: Record<string, unknown> = {},
): SupervisorConfigInput => ({
  supervisor: { strategy: 'OneForAll' },
  policy: { child_restart_limit: 10, ...policy },
  shutdown: { graceful_timeout_ms: 5000, ...shutdown },
  children,
});
const registration = (dir: string) => ({
  enabled: true,
  relay_registration_path: `${dir}/no-relay.sock`,
  display_name: 'payments worker a',
  lease_seconds: 30,
  registration_heartbeat_interval_seconds: 15,
});

/** The scenario each golden was written for (see its header). */
const SCENARIOS: Record<string, { config: SupervisorConfigInput; registration?: false }> = {
  'hello-registration-disabled': { config: base([{ name: 'payment_loop' }]), registration: false },
  'state-crash-loop': {
    config: base([{ name: 'payment_loop' }, { name: 'ledger_sync', behavior: 'panic_after', panic_after_ms: 20 }], {
      child_restart_limit: 2,
    }),
  },
  'state-stuck-cancelling': { config: base([{ name: 'stuck', behavior: 'ignore_cancel' }], {}, { graceful_timeout_ms: 1500 }) },
  'state-heartbeat-stale': {
    config: base([{ name: 'beat', behavior: 'panic_after', panic_after_ms: 600, heartbeat_ms: 50 }], { child_restart_limit: 1 }),
  },
};

function exchange(path: string, line: string, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ path });
    let buf = '';
    const t = setTimeout(() => {
      s.destroy();
      reject(new Error(`no answer to ${line.slice(0, 80)}`));
    }, timeoutMs);
    s.once('connect', () => s.write(`${line}\n`));
    s.on('data', (c: Buffer) => {
      buf += c.toString('utf8');
      const nl = buf.indexOf('\n');
      if (nl !== -1) {
        clearTimeout(t);
        s.destroy();
        resolve(buf.slice(0, nl));
      }
    });
    s.once('error', reject);
  });
}

const running: SupervisorProcess[] = [];
afterAll(async () => {
  await Promise.all(running.map((p) => p.stop()));
});

describe('simulator against the golden transcripts', () => {
  it.each(goldenNames())(
    '%s',
    async (name) => {
      const golden = loadGolden(name);
      const scenario = SCENARIOS[name] ?? { config: base([{ name: 'payment_loop' }]) };
      const dir = mkdtempSync(join(tmpdir(), 'supsim-golden-'));
      // Registration points at no relay: heartbeats fail silently and hello still answers with the payload.
      const ipc = scenario.registration === false ? {} : { registration: registration(dir) };
      const sup = await startSupervisor({ dir, config: { ...scenario.config, ipc } });
      running.push(sup);
      for (const [i, ex] of golden.exchanges.entries()) {
        const deadline = Date.now() + (ex.poll ? 15_000 : 0);
        let actual = await exchange(sup.ipcPath, ex.request);
        while (ex.poll && Date.now() < deadline && JSON.stringify(normalise(actual)) !== JSON.stringify(normalise(ex.response))) {
          await new Promise((r) => setTimeout(r, 100));
          actual = await exchange(sup.ipcPath, ex.request);
        }
        expect(normalise(actual), `${name} exchange ${i}`).toEqual(normalise(ex.response));
        expect(keyOrder(actual), `${name} exchange ${i} key order`).toEqual(keyOrder(ex.response));
      }
    },
    60_000,
  );
});
