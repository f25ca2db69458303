/**
 * A local recording HTTP server for tests: the thing remediation actions and escalations hit. Records every
 * request (method, path, parsed body, arrival and end time), tracks how many requests are in flight per key
 * (by default the first path segment after `/act/`, i.e. the target), and can hold a response for a while.
 *
 *   const sink = await startSink({ delayMs: (hit, nth) => (hit.path.endsWith('/step2') && nth === 0 ? 20_000 : 0) });
 *   … rule: action: { http: { url: "<sink.url>/act/{{ labels.instance }}/step1" } }
 *   sink.hitsTo('/act/t1/step1').length; sink.maxInFlight('t1');
 *   await sink.close();
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface SinkHit {
  method: string;
  path: string;
  /** Parsed JSON body, or the raw text when it is not JSON (undefined when empty). */
  body: unknown;
  /** The in-flight key (see SinkOptions.keyOf). */
  key: string;
  /** ms since epoch: request fully received, and response finished (or the client went away). */
  at: number;
  endedAt?: number;
  /** True when the client closed the connection before the response was sent. */
  aborted?: boolean;
}

export interface SinkOptions {
  /** How long to hold the response; `nth` counts earlier hits with the same method and path (0-based). */
  delayMs?: (hit: SinkHit, nth: number) => number;
  /** Hold the response until this settles (then `delayMs` applies): a test releases it when it has seen what it needs. */
  hold?: (hit: SinkHit, nth: number) => Promise<unknown> | undefined;
  /** Response status (default 200). */
  status?: (hit: SinkHit, nth: number) => number;
  /** The in-flight key of a request; default: the segment after `/act/` or else the whole path. */
  keyOf?: (path: string) => string;
}

export interface Sink {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  readonly hits: SinkHit[];
  /** Hits whose path starts with `prefix` (all when omitted), optionally of one method. */
  hitsTo(prefix?: string, method?: string): SinkHit[];
  /** Requests being held right now for `key` (all keys when omitted). */
  inFlight(key?: string): number;
  /** The most requests ever held at once for `key` (or across all keys when omitted). */
  maxInFlight(key?: string): number;
  /** Resolves with the first hit matching `match` (already recorded ones count); rejects after timeoutMs. */
  waitForHit(match: (h: SinkHit) => boolean, timeoutMs?: number): Promise<SinkHit>;
  close(): Promise<void>;
}

const defaultKey = (path: string): string => /^\/act\/([^/?]+)/.exec(path)?.[1] ?? path;

export async function startSink(opts: SinkOptions = {}): Promise<Sink> {
  const keyOf = opts.keyOf ?? defaultKey;
  const hits: SinkHit[] = [];
  const current = new Map<string, number>();
  const max = new Map<string, number>();
  let currentAll = 0;
  let maxAll = 0;
  const waiters: { match: (h: SinkHit) => boolean; resolve: (h: SinkHit) => void }[] = [];
  const timers = new Set<NodeJS.Timeout>();

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      let body: unknown = raw === '' ? undefined : raw;
      try {
        if (raw !== '') body = JSON.parse(raw);
      } catch {
        /* not JSON: keep the text */
      }
      const path = req.url ?? '/';
      const method = req.method ?? 'GET';
      const hit: SinkHit = { method, path, body, key: keyOf(path), at: Date.now() };
      const nth = hits.filter((h) => h.method === method && h.path === path).length;
      hits.push(hit);
      for (const w of waiters.filter((w) => w.match(hit))) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(hit);
      }
      const n = (current.get(hit.key) ?? 0) + 1;
      current.set(hit.key, n);
      max.set(hit.key, Math.max(max.get(hit.key) ?? 0, n));
      currentAll += 1;
      maxAll = Math.max(maxAll, currentAll);
      let done = false;
      const finish = (aborted: boolean) => {
        if (done) return;
        done = true;
        hit.endedAt = Date.now();
        if (aborted) hit.aborted = true;
        current.set(hit.key, (current.get(hit.key) ?? 1) - 1);
        currentAll -= 1;
      };
      res.on('close', () => finish(!res.writableFinished));
      const status = opts.status?.(hit, nth) ?? 200;
      const send = () => {
        if (res.destroyed) return finish(true);
        res
          .writeHead(status, { 'content-type': 'application/json' })
          .end(JSON.stringify({ ok: status < 400, path }), () => finish(false));
      };
      const delay = opts.delayMs?.(hit, nth) ?? 0;
      const later = () => {
        if (delay <= 0) return send();
        const t = setTimeout(() => {
          timers.delete(t);
          send();
        }, delay);
        timers.add(t);
      };
      const held = opts.hold?.(hit, nth);
      if (held === undefined) return later();
      void held.then(later, later);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    hits,
    hitsTo: (prefix = '', method) =>
      hits.filter((h) => h.path.startsWith(prefix) && (method === undefined || h.method === method)),
    inFlight: (key) => (key === undefined ? currentAll : (current.get(key) ?? 0)),
    maxInFlight: (key) => (key === undefined ? maxAll : (max.get(key) ?? 0)),
    waitForHit(match, timeoutMs = 15_000) {
      const seen = hits.find(match);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const w = { match, resolve: (h: SinkHit) => (clearTimeout(t), resolve(h)) };
        const t = setTimeout(() => {
          waiters.splice(waiters.indexOf(w), 1);
          reject(
            new Error(
              `sink: no matching request within ${timeoutMs} ms (saw ${hits.map((h) => `${h.method} ${h.path}`).join(', ') || 'none'})`,
            ),
          );
        }, timeoutMs);
        waiters.push(w);
      });
    },
    close() {
      for (const t of timers) clearTimeout(t);
      timers.clear();
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
