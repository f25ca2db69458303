import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SupervisorOptions } from './args.js';
import { Children, type CommandResult } from './children.js';
import { IpcServer } from './ipc.js';
import { Journal } from './journal.js';
import { SupervisorMetrics, type HealthStatus } from './metrics.js';
import { scriptArgs } from './node.js';

/** Exit codes of the simulated supervisor. */
export const EXIT = { clean: 0, usage: 64, startFailed: 3, socketContention: 2, listenFailed: 4, panic: 101 } as const;

/** The marker that makes the next start(s) fail (fault "restart fails"): holds how many starts to fail. */
export function failStartMarker(dumpDir: string): string {
  return join(dumpDir, 'supervisor.fail-next-start');
}

export function coreFile(dumpDir: string, pid: number): string {
  return join(dumpDir, `core.supervisor.${pid}`);
}

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

type Json = Record<string, unknown>;

export class Supervisor {
  private readonly journal: Journal;
  private readonly startedAt = Date.now();
  private readonly children: Children;
  private readonly metrics: SupervisorMetrics;
  private readonly ipc: IpcServer;
  private metricsServer: Server | null = null;
  private adminServer: Server | null = null;
  private relay: ChildProcess | null = null;
  private relayTimer: NodeJS.Timeout | null = null;
  private relayStarts = 0;
  private stopping = false;
  private everConnected = false;
  private iterations = 0;
  private loopBlocked = false;
  private lastIterationAt = Date.now();

  constructor(private readonly o: SupervisorOptions) {
    this.journal = new Journal(o.journal, o.processName);
    this.children = new Children(
      o.children,
      {
        restartBudget: o.restartBudget,
        budgetRefillSecs: o.budgetRefillSecs,
        crashIntervalMs: o.crashIntervalMs,
        restartBackoffMs: o.restartBackoffMs,
      },
      Date.now(),
    );
    this.ipc = new IpcServer(o.socket, (m) => {
      if (this.ipc.connected) this.everConnected = true;
      this.journal.write(m);
    });
    this.metrics = new SupervisorMetrics({
      up: () => !this.stopping,
      status: () => this.status(),
      linkConnected: () => this.ipc.connected,
      uptimeSeconds: () => (Date.now() - this.startedAt) / 1000,
      relayUp: () => this.relayAlive(),
      children: this.children,
    });
  }

  /** Start everything; resolves once listening. Throws on a start failure (caller exits non-zero). */
  async start(): Promise<void> {
    mkdirSync(this.o.dumpDir, { recursive: true });
    this.journal.write(`starting (pid ${process.pid}, socket ${this.o.socket}, children ${this.o.children})`);
    this.consumeFailStartMarker();
    await this.ipc.listen();
    this.metricsServer = await this.listen(this.o.metricsPort, (req, res) => this.serveMetrics(req, res));
    this.adminServer = await this.listen(this.o.adminPort, (req, res) => this.serveAdmin(req, res));
    writeFileSync(this.o.pidFile, `${process.pid}\n`);
    this.spawnRelay();
    void this.controlLoop();
    this.journal.write(
      `ShutdownPhase::Running: listening metrics=${this.o.host}:${this.o.metricsPort} admin=${this.o.host}:${this.o.adminPort}`,
    );
  }

  private consumeFailStartMarker(): void {
    const marker = failStartMarker(this.o.dumpDir);
    let raw: string;
    try {
      raw = readFileSync(marker, 'utf8').trim();
    } catch {
      return;
    }
    const left = raw === '' ? 1 : Number(raw);
    if (!Number.isFinite(left) || left <= 1) rmSync(marker, { force: true });
    else writeFileSync(marker, `${left - 1}\n`);
    throw new StartFailure(
      `startup failed: injected fault (restart-fails marker ${marker}, ${Math.max(0, left - 1)} more failing start(s)) StartupFailed`,
    );
  }

  private listen(port: number, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<Server> {
    const server = createServer(handler);
    return new Promise((resolve, reject) => {
      server.once('error', (err) => reject(new StartFailure(`cannot listen on ${this.o.host}:${port}: ${err.message}`)));
      server.listen(port, this.o.host, () => resolve(server));
    });
  }

  // ---- relay -------------------------------------------------------------------------------------

  private relayAlive(): boolean {
    return this.relay !== null && this.relay.exitCode === null && this.relay.signalCode === null;
  }

  private spawnRelay(): void {
    this.relayTimer = null;
    if (this.stopping) return;
    const child = spawn(process.execPath, [...scriptArgs('relay'), '--socket', this.o.socket, '--name', this.o.relayName], {
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.relay = child;
    this.relayStarts++;
    this.journal.write(`relay started (pid ${child.pid})`);
    child.on('exit', (code, signal) => {
      if (this.stopping) return;
      this.journal.write(
        `relay (pid ${child.pid}) exited (${signal ?? `code ${code}`}); restarting it in ${this.o.relayRestartMs} ms`,
      );
      if (this.relay === child) this.relayTimer = setTimeout(() => this.spawnRelay(), this.o.relayRestartMs);
    });
  }

  // ---- control loop --------------------------------------------------------------------------------

  private async controlLoop(): Promise<void> {
    while (!this.stopping) {
      for (const e of this.children.tick(Date.now())) this.journal.write(e.message);
      const blockers = this.children.blockers();
      if (blockers.length > 0) {
        this.journal.write(`control loop waiting on ${blockers.length} blocking child task(s)`);
        this.loopBlocked = true;
        await Promise.all(blockers);
        this.loopBlocked = false;
        if (this.stopping) return;
        this.journal.write('control loop resumed');
      }
      this.iterations++;
      this.lastIterationAt = Date.now();
      this.metrics.iterations.inc();
      await new Promise((r) => setTimeout(r, this.o.tickMs));
    }
  }

  private stalled(): boolean {
    return this.loopBlocked || Date.now() - this.lastIterationAt > Math.max(2000, 10 * this.o.tickMs);
  }

  status(): HealthStatus {
    if (this.stopping) return 'shutting_down';
    if (!this.everConnected && Date.now() - this.startedAt < 10_000) return 'starting';
    const c = this.children.counts();
    return this.ipc.connected && c.failed === 0 && c.quarantined === 0 && !this.stalled() ? 'ready' : 'degraded';
  }

  health(): Json {
    return {
      status: this.status(),
      dashboard_link: this.ipc.connected ? 'connected' : 'disconnected',
      uptime_secs: Math.floor((Date.now() - this.startedAt) / 1000),
      control_loop_iterations: this.iterations,
      pid: process.pid,
    };
  }

  state(): Json {
    return {
      pid: process.pid,
      target_count: this.children.target,
      counts: this.children.counts(),
      children: this.children.records(),
      dashboard: {
        path: this.o.socket,
        link: this.ipc.connected ? 'connected' : 'disconnected',
        refusing_connections: this.ipc.refusing,
        refused_connections: this.ipc.refused,
      },
      relay: { pid: this.relayAlive() ? (this.relay?.pid ?? null) : null, up: this.relayAlive(), starts: this.relayStarts },
    };
  }

  // ---- HTTP ----------------------------------------------------------------------------------------

  private serveMetrics(req: IncomingMessage, res: ServerResponse): void {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404).end('not found\n');
      return;
    }
    this.metrics.registry.metrics().then(
      (body) => res.writeHead(200, { 'content-type': this.metrics.registry.contentType }).end(body),
      (err: Error) => res.writeHead(500).end(err.message),
    );
  }

  private serveAdmin(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const send = (status: number, body: unknown) =>
      res.writeHead(status, { 'content-type': 'application/json' }).end(`${JSON.stringify(body)}\n`);
    try {
      const out = this.route(req.method ?? 'GET', url);
      if (out.after !== undefined) res.once('finish', out.after);
      send(out.status, out.body);
    } catch (err) {
      send(err instanceof HttpError ? err.status : 500, { error: (err as Error).message });
    }
  }

  private route(method: string, url: URL): { status: number; body: unknown; after?: () => void } {
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const parts = path.split('/').slice(1).map(decodeURIComponent);
    const need = (m: string) => {
      if (method !== m) throw new HttpError(405, `${method} ${path}: use ${m}`);
    };
    const logged = (what: string, r: CommandResult) => {
      this.journal.write(`${what} → ${r.result}${r.result === 'Rejected' ? `: ${r.reason}` : ''}`);
      return { status: 200, body: r };
    };

    // Control API (the runbook's handle.*)
    if (path === '/health') {
      need('GET');
      return { status: 200, body: this.health() };
    }
    if (path === '/state') {
      need('GET');
      return { status: 200, body: this.state() };
    }
    if (parts[0] === 'children' && parts.length === 3) {
      need('POST');
      const id = parts[1] ?? '';
      if (parts[2] === 'remove')
        return logged(`remove_child(${id})`, this.children.remove(id, url.searchParams.get('replace') === 'true'));
      if (parts[2] === 'quarantine') return logged(`quarantine_child(${id})`, this.children.quarantine(id));
    }

    // Fault injection
    if (path === '/faults') {
      need('GET');
      return { status: 200, body: this.faults() };
    }
    if (path === '/faults/panic') {
      need('POST');
      const message = url.searchParams.get('message') ?? 'injected fault P1-001';
      return { status: 202, body: { result: 'Accepted' }, after: () => this.panic(message) };
    }
    if (path === '/faults/shutdown') {
      need('POST');
      return { status: 202, body: { result: 'Accepted' }, after: () => void this.shutdown('requested via /faults/shutdown') };
    }
    if (path === '/faults/restart-fails') {
      const marker = failStartMarker(this.o.dumpDir);
      if (method === 'DELETE') {
        rmSync(marker, { force: true });
        return { status: 200, body: { result: 'Accepted', marker, count: 0 } };
      }
      need('POST');
      const count = Number(url.searchParams.get('count') ?? '1');
      if (!Number.isInteger(count) || count < 1) throw new HttpError(400, 'count: expected an integer >= 1');
      writeFileSync(marker, `${count}\n`);
      this.journal.write(`fault: the next ${count} start(s) will fail (marker ${marker})`);
      return { status: 200, body: { result: 'Accepted', marker, count } };
    }
    if (path === '/faults/ipc/drop') {
      need('POST');
      const sticky = url.searchParams.get('sticky') === 'true';
      this.journal.write(`fault: dropping the dashboard IPC link${sticky ? ' (sticky until the supervisor restarts)' : ''}`);
      this.ipc.drop(sticky);
      return { status: 200, body: { result: 'Accepted', sticky } };
    }
    if (parts[0] === 'faults' && parts[1] === 'children' && parts.length === 4) {
      need('POST');
      const id = parts[2] ?? '';
      const kind = parts[3] ?? '';
      const faults: Record<string, () => CommandResult> = {
        'crash-loop': () => this.children.crashLoop(id, Date.now(), url.searchParams.get('reason') ?? undefined),
        'block-forever': () => this.children.block(id, 'BlockForever'),
        'ignore-cancel': () => this.children.block(id, 'IgnoreCancel'),
        heal: () => this.children.heal(id),
      };
      const f = faults[kind];
      if (f === undefined) throw new HttpError(404, `no child fault "${kind}" (${Object.keys(faults).join(', ')})`);
      return logged(`fault: ${kind} ${id}`, f());
    }
    throw new HttpError(404, `no route ${method} ${path}`);
  }

  private faults(): Json {
    let failStarts = 0;
    try {
      const raw = readFileSync(failStartMarker(this.o.dumpDir), 'utf8').trim();
      failStarts = raw === '' ? 1 : Number(raw);
    } catch {
      /* no marker */
    }
    return {
      ipc_refusing_connections: this.ipc.refusing,
      fail_next_starts: failStarts,
      children: this.children
        .records()
        .filter((c) => c.behavior !== 'Normal')
        .map((c) => ({ id: c.id, behavior: c.behavior })),
    };
  }

  // ---- the two ways out ----------------------------------------------------------------------------

  /** P1-001: crash. Core file in the dump dir, journal ends with `Panic`, exit 101. */
  panic(message: string): never {
    const core = coreFile(this.o.dumpDir, process.pid);
    writeFileSync(
      core,
      [
        `simulated core dump of supervisor pid ${process.pid}`,
        `signal: SIGABRT; reason: ${message}`,
        `uptime_secs: ${Math.floor((Date.now() - this.startedAt) / 1000)}; control_loop_iterations: ${this.iterations}`,
        'backtrace:',
        '   0: supervisor::runtime::control_loop::tick',
        '   1: supervisor::runtime::Supervisor::run',
        '   2: tokio::runtime::task::harness::poll',
        '',
      ].join('\n'),
    );
    this.journal.write(`thread 'supervisor-main' panicked: ${message}; core dumped to ${core}`);
    this.journal.write('supervisor terminated: Panic');
    process.exit(EXIT.panic);
  }

  /** Clean shutdown (SIGTERM, SIGINT, /faults/shutdown): journal ends with `ShutdownPhase::Completed`, exit 0. */
  async shutdown(reason: string): Promise<never> {
    if (this.stopping) return new Promise<never>(() => {});
    this.stopping = true;
    this.journal.write(`ShutdownPhase::Draining (${reason})`);
    if (this.relayTimer !== null) clearTimeout(this.relayTimer);
    const relay = this.relay;
    if (relay !== null && relay.exitCode === null && relay.signalCode === null) {
      this.journal.write('ShutdownPhase::StoppingRelay');
      const gone = new Promise<void>((r) => relay.once('exit', () => r()));
      relay.kill('SIGTERM');
      const t = setTimeout(() => relay.kill('SIGKILL'), 3000);
      await gone;
      clearTimeout(t);
    }
    this.journal.write('ShutdownPhase::StoppingChildren');
    for (const id of this.children.ids()) this.children.quarantine(id);
    await this.ipc.close();
    for (const s of [this.metricsServer, this.adminServer]) {
      if (s === null) continue;
      s.closeAllConnections();
      await new Promise<void>((r) => s.close(() => r()));
    }
    try {
      if (readFileSync(this.o.pidFile, 'utf8').trim() === String(process.pid)) rmSync(this.o.pidFile, { force: true });
    } catch {
      /* no pid file */
    }
    this.journal.write('ShutdownPhase::Completed');
    process.exit(EXIT.clean);
  }
}

/** A start that must fail (exit non-zero) with this message. */
export class StartFailure extends Error {
  override name = 'StartFailure';
}
