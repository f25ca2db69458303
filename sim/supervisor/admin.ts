/**
 * Fault injection for the simulator: HTTP on its own Unix socket (`sim.admin_socket`, default
 * `<ipc.path>.admin`). NOT part of dashboard-ipc.v1 and not something the real program has: it stands for the
 * world (a bad deploy, a bug, a load spike). It answers only whether the fault was taken; tests and procedures
 * read the supervisor's state through the IPC socket and /proc, never here.
 *
 *   curl --unix-socket /run/…/x.sock.admin -X POST localhost/faults/crash-loop -d '{"child":"ledger_sync"}'
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { Behavior } from './config.js';

export interface FaultTarget {
  /** Panic in main: Rust's message, socket removed by unwinding, exit 101. */
  panic(message: string): void;
  /** From now on (current attempt included) the child behaves as `behavior`. */
  setBehavior(child: string, behavior: Behavior, panicAfterMs?: number): boolean;
  /** From now on (current attempt included) the child holds the runtime `ms` between its awaits (0 = stop). */
  hog(child: string, ms: number): boolean;
  stall(ms: number | undefined): void;
  unstall(): void;
  slow(ms: number): void;
}

const NOTE = 'simulator fault injection; not part of dashboard-ipc.v1';

async function body(req: IncomingMessage): Promise<Record<string, unknown>> {
  let text = '';
  for await (const chunk of req) text += String(chunk);
  if (text.trim() === '') return {};
  const parsed: unknown = JSON.parse(text);
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) throw new Error('body must be a JSON object');
  return parsed as Record<string, unknown>;
}

const optNumber = (v: unknown, name: string): number | undefined => {
  if (v === undefined) return undefined;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw new Error(`${name} must be a non-negative integer`);
  return v;
};

export function createAdminServer(target: FaultTarget): Server {
  return createServer((req, res) => {
    const reply = (status: number, payload: Record<string, unknown>) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(`${JSON.stringify({ ...payload, note: NOTE })}\n`);
    };
    if (req.method === 'GET' && req.url === '/') {
      reply(200, { faults: ['panic', 'crash-loop', 'block', 'hog', 'ignore-cancel', 'heal', 'stall', 'unstall', 'slow'] });
      return;
    }
    const m = /^\/faults\/([a-z-]+)$/.exec(req.url ?? '');
    if (req.method !== 'POST' || m === null) return reply(404, { error: 'POST /faults/<name>' });
    void body(req)
      .then((b) => {
        const name = m[1];
        const child = typeof b.child === 'string' ? b.child : undefined;
        const needChild = (behavior: Behavior, after?: number) => {
          if (child === undefined) throw new Error('child is required');
          if (!target.setBehavior(child, behavior, after)) throw new Error(`no declared child ${child}`);
        };
        switch (name) {
          case 'panic':
            reply(202, { fault: name });
            setTimeout(() => target.panic(typeof b.message === 'string' ? b.message : 'injected panic'), 20);
            return;
          case 'crash-loop':
            needChild('panic_after', optNumber(b.panic_after_ms, 'panic_after_ms'));
            break;
          case 'block':
            needChild('block_forever');
            break;
          case 'hog': {
            if (child === undefined) throw new Error('child is required');
            if (!target.hog(child, optNumber(b.ms, 'ms') ?? 2500)) throw new Error(`no declared child ${child}`);
            break;
          }
          case 'ignore-cancel':
            needChild('ignore_cancel');
            break;
          case 'heal':
            needChild('normal');
            target.hog(child!, 0);
            break;
          case 'stall':
            target.stall(optNumber(b.ms, 'ms'));
            break;
          case 'unstall':
            target.unstall();
            break;
          case 'slow':
            target.slow(optNumber(b.ms, 'ms') ?? 0);
            break;
          default:
            return reply(404, { error: `unknown fault ${name}` });
        }
        reply(202, { fault: name });
      })
      .catch((err: unknown) => reply(400, { error: (err as Error).message }));
  });
}
