import { createServer, connect, type Server, type Socket } from 'node:net';
import { chmodSync, existsSync, unlinkSync } from 'node:fs';

/** The error a supervisor reports when another live supervisor holds its dashboard IPC socket. */
export class SocketContentionError extends Error {
  override name = 'SocketContentionError';
  constructor(readonly path: string) {
    super(`config error: field_path="dashboard.path": IPC socket ${path} is already in use by another supervisor`);
  }
}

/** Is something accepting connections on `path`? */
function probe(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

/**
 * The dashboard IPC server. The link is "connected" while a relay holds a connection that said hello.
 * `drop()` tells the relays to let go (they stay alive, wedged); `drop(true)` also refuses every new
 * connection until this process exits (the "sticky" fault: only a supervisor restart clears it).
 */
export class IpcServer {
  private readonly links = new Set<Socket>();
  private sticky = false;
  /** Connections refused while sticky (each is a relay's reconnect attempt). */
  refused = 0;
  private server: Server | null = null;

  constructor(
    readonly path: string,
    private readonly onEvent: (message: string) => void,
  ) {}

  get connected(): boolean {
    return this.links.size > 0;
  }

  get refusing(): boolean {
    return this.sticky;
  }

  /** Take the socket path: fail on a live owner, replace a stale socket file. */
  async listen(): Promise<void> {
    if (existsSync(this.path)) {
      if (await probe(this.path)) throw new SocketContentionError(this.path);
      unlinkSync(this.path);
    }
    const server = createServer((s) => this.accept(s));
    await new Promise<void>((resolve, reject) => {
      server.once('error', (err: NodeJS.ErrnoException) =>
        reject(err.code === 'EADDRINUSE' ? new SocketContentionError(this.path) : err),
      );
      server.listen(this.path, () => resolve());
    });
    chmodSync(this.path, 0o660);
    this.server = server;
  }

  private accept(s: Socket): void {
    if (this.sticky) {
      this.refused++;
      s.destroy();
      return;
    }
    s.setEncoding('utf8');
    let buf = '';
    s.on('data', (chunk: string) => {
      buf += chunk;
      const nl = buf.indexOf('\n');
      if (nl < 0 || this.links.has(s)) return;
      const hello = /^hello (\d+)$/.exec(buf.slice(0, nl).trim());
      if (hello === null) {
        s.destroy();
        return;
      }
      this.links.add(s);
      this.onEvent(`dashboard IPC link connected (relay pid ${hello[1]})`);
    });
    s.on('error', () => {});
    s.on('close', () => {
      if (this.links.delete(s)) this.onEvent('dashboard IPC link disconnected');
    });
  }

  drop(sticky: boolean): void {
    if (sticky) this.sticky = true;
    for (const s of this.links) {
      s.write('drop\n');
      s.end();
    }
  }

  async close(): Promise<void> {
    for (const s of this.links) s.destroy();
    const server = this.server;
    this.server = null;
    if (server !== null) await new Promise<void>((resolve) => server.close(() => resolve()));
    try {
      unlinkSync(this.path);
    } catch {
      /* already gone */
    }
  }
}
