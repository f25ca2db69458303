/**
 * A Unix-socket server for client tests: calls `answer(line)` for every request line and writes what it
 * returns (a string is sent as is, so a test can send a line without its newline, an oversized one, or none).
 * Returning `undefined` sends nothing (a hung server); returning `'close'` closes the connection.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface LineServer {
  path: string;
  lines: string[];
  close(): Promise<void>;
}

export async function startLineServer(answer: (line: string) => string | 'close' | undefined): Promise<LineServer> {
  const dir = mkdtempSync(join(tmpdir(), 'ipc-line-'));
  const path = join(dir, 'ipc.sock');
  const lines: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    let buf = '';
    socket.on('data', (chunk) => {
      buf += chunk.toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) !== -1) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        lines.push(line);
        const out = answer(line);
        if (out === 'close') socket.destroy();
        else if (out !== undefined) socket.write(out);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return {
    path,
    lines,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => {
          rmSync(dir, { recursive: true, force: true });
          resolve();
        });
      }),
  };
}
