/**
 * The registration heartbeat (rust-supervisor dashboard/registration.rs:100-197): every
 * `registration_heartbeat_interval_seconds`, connect to the relay's registration socket, write one
 * `TargetProcessRegistration` line, read one ack line. Every failure is ignored silently (`Ok(_) | Err(_) => {}`,
 * nothing logged); only an ack `{"ok":false,…,"retryable":false}` ends the heartbeat. There is no timeout on the
 * read, as in the real code.
 */
import { createConnection } from 'node:net';
import type { IpcSettings } from './config.js';
import { registrationPayload } from './ipc-server.js';

interface Ack {
  ok?: unknown;
  retryable?: unknown;
}

function sendOnce(path: string, line: string): Promise<Ack | undefined> {
  return new Promise((resolve) => {
    const socket = createConnection({ path });
    let buf = '';
    const done = (ack: Ack | undefined) => {
      socket.destroy();
      resolve(ack);
    };
    socket.once('connect', () => socket.write(line));
    socket.on('data', (chunk) => {
      buf += chunk.toString('utf8');
      const nl = buf.indexOf('\n');
      if (nl === -1) return;
      try {
        done(JSON.parse(buf.slice(0, nl)) as Ack);
      } catch {
        done(undefined);
      }
    });
    socket.once('error', () => done(undefined));
    socket.once('close', () => done(undefined));
  });
}

export function startRegistrationHeartbeat(ipc: IpcSettings): { stop(): void } {
  const reg = ipc.registration;
  if (reg === undefined) return { stop: () => undefined };
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const line = `${JSON.stringify(registrationPayload(ipc))}\n`;
  const beat = async () => {
    const ack = await sendOnce(reg.relayRegistrationPath, line);
    if (stopped) return;
    if (ack !== undefined && ack.ok !== true && ack.retryable === false) return; // registration_failed: the task ends
    timer = setTimeout(() => void beat(), reg.heartbeatSeconds * 1000);
  };
  void beat();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
