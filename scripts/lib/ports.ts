import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

/**
 * Where the kernel picks the local port of an outgoing connection (Linux's ip_local_port_range). A port handed out
 * from that range (as `listen(0)` does) can be taken by any client socket opened before the caller binds it — seen in
 * CI: a Redis Cluster test's connections took a port between freePort and remediator's bind (EADDRINUSE). Ports
 * below it are only ever taken by a listener.
 */
function ephemeralStart(): number {
  try {
    const start = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    return Number.isInteger(start) && start > 11_000 ? start : 32_768;
  } catch {
    return 32_768;
  }
}

const LOW = 10_000;
const HIGH = ephemeralStart() - 1;
/** Handed out by this process: not handed out twice, even once the first taker has closed it. */
const handedOut = new Set<number>();

/** Whether `port` can be listened on at 127.0.0.1 right now (then closed again). */
function canListen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/**
 * A TCP port on 127.0.0.1 that was free a moment ago, chosen at random below the kernel's range for outgoing
 * connections (so no client socket takes it meanwhile) and never twice in one process. Another listener may still
 * take it before the caller binds it; callers that spawn a server must check that *their* process answers.
 */
export async function freePort(): Promise<number> {
  for (let attempt = 0; attempt < 200; attempt++) {
    const port = LOW + Math.floor(Math.random() * (HIGH - LOW + 1));
    if (handedOut.has(port) || !(await canListen(port))) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error(`freePort: no free port found in ${LOW}-${HIGH} on 127.0.0.1 after 200 tries`);
}

/** `n` distinct free ports. */
export async function freePorts(n: number): Promise<number[]> {
  const out = new Set<number>();
  while (out.size < n) out.add(await freePort());
  return [...out];
}
