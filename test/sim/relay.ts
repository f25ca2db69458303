/**
 * The relay: a separate process (process.title "relay") that holds the supervisor's dashboard IPC socket.
 * The link is "connected" while it holds the connection.
 *
 * Protocol (newline-delimited): relay → supervisor `hello <pid>`; supervisor → relay `drop` (fault P1-003:
 * the relay lets go of the link and stays wedged, alive but disconnected, until it is restarted).
 * Any other loss of the connection makes it reconnect every 250 ms. It exits when its parent goes away
 * (the IPC channel to the parent closes) and on SIGTERM/SIGINT.
 */
import { connect, type Socket } from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { socket: { type: 'string' }, name: { type: 'string', default: 'relay' } },
  strict: true,
});
if (values.socket === undefined) {
  console.error('relay: --socket is required');
  process.exit(2);
}
const socketPath = values.socket;
process.title = values.name;

let wedged = false;
let current: Socket | null = null;
let retry: NodeJS.Timeout | null = null;

function log(msg: string): void {
  console.error(`relay[${process.pid}]: ${msg}`);
}

function dial(): void {
  retry = null;
  const s = connect(socketPath);
  current = s;
  let buf = '';
  s.setEncoding('utf8');
  s.on('connect', () => {
    s.write(`hello ${process.pid}\n`);
    log(`connected to ${socketPath}`);
  });
  s.on('data', (chunk: string) => {
    buf += chunk;
    let nl;
    while ((nl = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, nl).trim();
      buf = buf.slice(nl + 1);
      if (line === 'drop') {
        wedged = true;
        log('link dropped by supervisor (fault); staying alive, not reconnecting until restarted');
        s.destroy();
      }
    }
  });
  s.on('error', () => {
    /* close follows */
  });
  s.on('close', () => {
    if (current === s) current = null;
    if (!wedged && retry === null) retry = setTimeout(dial, 250);
  });
}

function shutdown(sig: string): void {
  log(`${sig}: exiting`);
  current?.destroy();
  process.exit(0);
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
// The parent's IPC channel: when the supervisor dies, the relay goes with it.
process.on('disconnect', () => shutdown('parent gone'));
// Stay alive even when wedged and disconnected.
setInterval(() => {}, 60_000);
dial();
