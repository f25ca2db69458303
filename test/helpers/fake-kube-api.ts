import type { IncomingMessage } from 'node:http';
import { createServer, type Server } from 'node:https';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { WebSocketServer } from 'ws';

/**
 * A fake Kubernetes API server on https://127.0.0.1 (node:https, like Go's httptest.NewTLSServer): it answers only the routes a test
 * registers, records every request as it came (verb, path, query, content type, parsed body, bearer token), and
 * speaks the exec WebSocket upgrade with the v4 channel protocol (1 stdout, 2 stderr, 3 status as V1Status JSON).
 * Anything not registered gets a Kubernetes 404 Status and lands in `unmatched`, so tests can fail on it.
 */

export interface RecordedRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  contentType: string | undefined;
  authorization: string | undefined;
  body: unknown;
}

export interface ExecRecord {
  path: string;
  query: URLSearchParams;
  /** The subprotocols the client offered, and the one chosen. */
  offered: string[];
  protocol: string;
  authorization: string | undefined;
}

export interface JsonReply {
  status: number;
  body: unknown;
}

/** What the fake container does for one exec: frames to send, then the V1Status on channel 3. */
export interface ExecScript {
  stdout?: string;
  stderr?: string;
  /** Omit to close without a status (a broken stream). */
  status?: Record<string, unknown>;
  /** Refuse the upgrade with this HTTP status instead (e.g. 403 when RBAC lacks pods/exec). */
  refuse?: number;
  /** Keep the stream open and send nothing (for abort tests). */
  hang?: boolean;
  /**
   * The container itself: runs the requested argv (the `command` query parameters, as the kubelet gets them) and
   * streams what it printed, then its exit status. Takes precedence over stdout/stderr/status.
   */
  run?: (exec: { namespace: string; pod: string; container: string | null; command: string[] }) => Promise<{
    stdout: string;
    stderr: string;
    exitCode: number;
  }>;
}

type Handler = (req: RecordedRequest) => JsonReply;

export const TOKEN = 'fake-kube-api-token';

/**
 * A self-signed test certificate for 127.0.0.1 (valid 2020 to 2120), made with `openssl ca -selfsign`.
 * The kubeconfig trusts it as the cluster CA, so the client verifies TLS exactly as against a real API server.
 */
const TLS_KEY = `-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgqv+v0PoCqGqYo1Bd
2dAVoQPIGtctIac3s8b1k5wZNAWhRANCAARR0R+vPFIVsROl04kZNYyAkuMReDRp
5vP1edJFiUI0WsjZa1J3rZGZLq80s/Fm3kU707fybipyPmnNKnS+/0Mj
-----END PRIVATE KEY-----
`;
const TLS_CERT = `-----BEGIN CERTIFICATE-----
MIIBkzCCATqgAwIBAgIBATAKBggqhkjOPQQDAjAYMRYwFAYDVQQDDA1mYWtlLWt1
YmUtYXBpMCAXDTIwMDEwMTAwMDAwMFoYDzIxMjAwMTAxMDAwMDAwWjAYMRYwFAYD
VQQDDA1mYWtlLWt1YmUtYXBpMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEUdEf
rzxSFbETpdOJGTWMgJLjEXg0aebz9XnSRYlCNFrI2WtSd62RmS6vNLPxZt5FO9O3
8m4qcj5pzSp0vv9DI6NzMHEwGgYDVR0RBBMwEYcEfwAAAYIJbG9jYWxob3N0MA8G
A1UdEwEB/wQFMAMBAf8wDgYDVR0PAQH/BAQDAgKEMBMGA1UdJQQMMAoGCCsGAQUF
BwMBMB0GA1UdDgQWBBQQLB+GnkyNvpBcN/olkettF6AmMjAKBggqhkjOPQQDAgNH
ADBEAiAdeN75vPFGgOUcyRuBYhoo9mPO5ihHHRjk2L6uVxLXlAIgI7j+WcRebTKP
tiIa9qJUHzM0hW46FwC+yKOmqe8+ylI=
-----END CERTIFICATE-----
`;

export function statusBody(code: number, reason: string, message: string) {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code };
}

/** The V1Status the kubelet sends when the command exits non-zero. */
export function exitStatus(code: number) {
  if (code === 0) return { metadata: {}, status: 'Success' };
  return {
    metadata: {},
    status: 'Failure',
    message: `command terminated with non-zero exit code: error executing command [...], exit code ${code}`,
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: String(code) }] },
  };
}

export class FakeKubeApi {
  readonly requests: RecordedRequest[] = [];
  readonly execs: ExecRecord[] = [];
  readonly unmatched: string[] = [];
  private readonly routes = new Map<string, Handler>();
  private execScript: ExecScript = { status: exitStatus(0) };
  private readonly server: Server;
  private readonly wss = new WebSocketServer({
    noServer: true,
    handleProtocols: (offered) => (offered.has('v4.channel.k8s.io') ? 'v4.channel.k8s.io' : false),
  });
  private dir: string | undefined;
  url = '';

  constructor() {
    this.server = createServer({ key: TLS_KEY, cert: TLS_CERT }, (req, res) => {
      void this.handle(req).then(({ status, body }) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      });
    });
    this.server.on('upgrade', (req, socket, head) => this.upgrade(req, socket as import('node:net').Socket, head));
  }

  async start(): Promise<this> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.url = `https://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    for (const client of this.wss.clients) client.terminate();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    if (this.dir) rmSync(this.dir, { recursive: true, force: true });
  }

  /** Registers `VERB /path` (exact path, no query). */
  on(method: string, path: string, handler: Handler | JsonReply): this {
    this.routes.set(`${method} ${path}`, typeof handler === 'function' ? handler : () => handler);
    return this;
  }

  /** What the next exec does. */
  onExec(script: ExecScript): this {
    this.execScript = script;
    return this;
  }

  reset(): void {
    this.requests.length = 0;
    this.execs.length = 0;
    this.unmatched.length = 0;
    this.routes.clear();
    this.execScript = { status: exitStatus(0) };
  }

  /** A kubeconfig pointing at this server with a bearer token; `contexts` adds more contexts to pick by name. */
  writeKubeconfig(contexts: string[] = []): string {
    this.dir ??= mkdtempSync(join(tmpdir(), 'fake-kube-'));
    const file = join(this.dir, 'kubeconfig');
    const ctx = (name: string) => `- name: ${name}\n  context: { cluster: fake, user: fake, namespace: default }\n`;
    writeFileSync(
      file,
      `apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster: { server: "${this.url}", certificate-authority-data: ${Buffer.from(TLS_CERT).toString('base64')} }\nusers:\n- name: fake\n  user: { token: ${TOKEN} }\ncontexts:\n${['fake', ...contexts].map(ctx).join('')}current-context: fake\n`,
    );
    return file;
  }

  private async handle(req: IncomingMessage): Promise<JsonReply> {
    const url = new URL(req.url ?? '/', 'http://x');
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const text = Buffer.concat(chunks).toString('utf8');
    const recorded: RecordedRequest = {
      method: req.method ?? '',
      path: url.pathname,
      query: url.searchParams,
      contentType: req.headers['content-type'],
      authorization: req.headers.authorization,
      body: text === '' ? undefined : (JSON.parse(text) as unknown),
    };
    this.requests.push(recorded);
    const handler = this.routes.get(`${recorded.method} ${recorded.path}`);
    if (!handler) {
      this.unmatched.push(`${recorded.method} ${recorded.path}`);
      return {
        status: 404,
        body: statusBody(404, 'NotFound', `the fake API server has no route for ${recorded.method} ${recorded.path}`),
      };
    }
    return handler(recorded);
  }

  private upgrade(req: IncomingMessage, socket: import('node:net').Socket, head: Buffer): void {
    const url = new URL(req.url ?? '/', 'http://x');
    const offered = String(req.headers['sec-websocket-protocol'] ?? '')
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean);
    const script = this.execScript;
    if (
      req.method !== 'GET' ||
      !/^\/api\/v1\/namespaces\/[^/]+\/pods\/[^/]+\/exec$/.test(url.pathname) ||
      script.refuse !== undefined
    ) {
      if (!/\/exec$/.test(url.pathname)) this.unmatched.push(`UPGRADE ${url.pathname}`);
      const code = script.refuse ?? 404;
      socket.end(
        `HTTP/1.1 ${code} Refused\r\ncontent-type: application/json\r\nconnection: close\r\n\r\n${JSON.stringify(statusBody(code, 'Forbidden', 'refused'))}`,
      );
      return;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      this.execs.push({
        path: url.pathname,
        query: url.searchParams,
        offered,
        protocol: ws.protocol,
        authorization: req.headers.authorization,
      });
      if (script.hang) return;
      const frame = (channel: number, text: string) =>
        ws.send(Buffer.concat([Buffer.from([channel]), Buffer.from(text, 'utf8')]));
      if (script.run !== undefined) {
        const [, namespace, pod] = /^\/api\/v1\/namespaces\/([^/]+)\/pods\/([^/]+)\/exec$/.exec(url.pathname)!;
        void script
          .run({
            namespace: namespace!,
            pod: pod!,
            container: url.searchParams.get('container'),
            command: url.searchParams.getAll('command'),
          })
          .then((r) => {
            if (r.stdout !== '') frame(1, r.stdout);
            if (r.stderr !== '') frame(2, r.stderr);
            frame(3, JSON.stringify(exitStatus(r.exitCode)));
            ws.close(1000);
          });
        return;
      }
      if (script.stdout !== undefined) frame(1, script.stdout);
      if (script.stderr !== undefined) frame(2, script.stderr);
      if (script.status !== undefined) frame(3, JSON.stringify(script.status));
      ws.close(1000);
    });
  }
}

export async function startFakeKubeApi(): Promise<FakeKubeApi> {
  return new FakeKubeApi().start();
}
