/**
 * `serve` as several processes (SERVE_RECEIVERS, default 1): the serve process runs the worker, and forks receiver
 * processes (node:cluster) that share PORT. The receivers' event loops never wait behind the worker's (its runs,
 * its launcher's pipe, its lease renewals) and the two use both cores. This module is the IPC between them: the
 * parent restarts a crashed receiver with backoff and gives up (the serve exits non-zero) when one cannot be kept up,
 * fans rule reloads out, answers a receiver's /metrics with every other process's metrics, and stops the receivers
 * first on SIGTERM. Run records still name the serve process (it is the worker), as with one process.
 */
import cluster, { type Worker as ClusterWorker } from 'node:cluster';
import type { Logger } from './log.js';
import type { ProcessMetrics } from './metrics-aggregate.js';

/** Parent → receiver. */
type ToReceiver =
  | { remediator: 'reload' }
  | { remediator: 'collect'; id: number }
  | { remediator: 'metrics'; id: number; metrics: ProcessMetrics[] };
/** Receiver → parent. */
type ToParent =
  | { remediator: 'listening' }
  | { remediator: 'reloaded' }
  | { remediator: 'metrics'; id: number }
  | { remediator: 'collected'; id: number; metrics: ProcessMetrics };

const isMessage = (m: unknown): m is { remediator: string } =>
  typeof m === 'object' && m !== null && typeof (m as { remediator?: unknown }).remediator === 'string';

/** A receiver restarted after this long up starts its backoff afresh. */
const STABLE_MS = 60_000;
const FIRST_BACKOFF_MS = 500;
const MAX_BACKOFF_MS = 30_000;
/** Crashes in a row (each before STABLE_MS) after which the serve gives up and exits non-zero. */
export const MAX_RESTARTS = 5;
/** How long the parent waits for another receiver's metrics before answering without them. */
const COLLECT_TIMEOUT_MS = 1000;

export interface ReceiverProcesses {
  /** Re-read the rules in every receiver (the parent's SIGHUP), or every one but `except`. */
  reload(except?: ClusterWorker): void;
  /** Stops every receiver (intake first), SIGKILL for those still there at `deadline`; settles when all are gone. */
  stop(deadline: number): Promise<void>;
  /** Settles with an exit code when a receiver cannot be kept up (the caller stops the worker and exits with it). */
  readonly failed: Promise<number>;
}

export interface ForkOptions {
  count: number;
  log: Logger;
  /** The parent's own metrics, for a receiver's /metrics. */
  ownMetrics(): Promise<ProcessMetrics>;
  /** A receiver reloaded its rules (POST /-/reload): the parent re-reads its own (the others are told here). */
  reloadOwn(): void;
}

/** Forks `count` receiver processes (this process must be the cluster primary) and keeps them up. */
export function forkReceivers(opts: ForkOptions): ReceiverProcesses {
  const { log } = opts;
  // Each receiver accepts on the shared socket itself: the parent's (the worker's) event loop is not on the path of
  // every connection, as it is with round-robin.
  cluster.schedulingPolicy = cluster.SCHED_NONE;
  // The receivers run with the serve's own Node flags (its command line's, and NODE_OPTIONS, which they inherit).
  cluster.setupPrimary({ execArgv: process.execArgv });
  let stopping = false;
  let giveUp!: (code: number) => void;
  const failed = new Promise<number>((resolve) => (giveUp = resolve));
  const pending = new Map<number, { left: number; got: ProcessMetrics[]; done: () => void }>();
  let nextId = 0;
  const live = new Set<ClusterWorker>();
  // A receiver hears messages only once its handlers are set up, after it started: a reload meant for one still
  // starting (forked, restarted) is kept and sent when it says it listens, instead of being lost on its way in.
  const reloadOnListen = new Set<ClusterWorker>();
  const listeningOnes = new Set<ClusterWorker>();

  const send = (w: ClusterWorker, m: ToReceiver) => {
    if (w.isConnected()) w.send(m, undefined, () => {}); // a receiver exiting meanwhile is not an error here
  };

  /** Every other process's metrics for `asker`'s request `answerId`: the parent's and the other receivers'. */
  const collectFor = async (asker: ClusterWorker, answerId: number) => {
    const id = ++nextId;
    // Only those that listen: one still starting would hear nothing and the scrape would wait COLLECT_TIMEOUT_MS.
    const others = [...listeningOnes].filter((w) => w !== asker && w.isConnected());
    const got: ProcessMetrics[] = [];
    await new Promise<void>((resolve) => {
      if (others.length === 0) return resolve();
      const timer = setTimeout(() => {
        pending.delete(id);
        resolve();
      }, COLLECT_TIMEOUT_MS).unref();
      pending.set(id, {
        left: others.length,
        got,
        done: () => {
          clearTimeout(timer);
          pending.delete(id);
          resolve();
        },
      });
      for (const w of others) send(w, { remediator: 'collect', id });
    });
    const own = await opts.ownMetrics();
    send(asker, { remediator: 'metrics', id: answerId, metrics: [own, ...got] });
  };

  const start = (slot: number, attempt: number) => {
    const w = cluster.fork({ REMEDIATOR_RECEIVER_SLOT: String(slot) });
    live.add(w);
    const startedAt = Date.now();
    let listening = false;
    w.on('message', (m: unknown) => {
      if (!isMessage(m)) return;
      const msg = m as ToParent;
      if (msg.remediator === 'listening') {
        listening = true;
        listeningOnes.add(w);
        log.info({ pid: w.process.pid, slot }, 'receiver process listening');
        if (reloadOnListen.delete(w)) send(w, { remediator: 'reload' });
      } else if (msg.remediator === 'reloaded') {
        opts.reloadOwn();
        api.reload(w);
      } else if (msg.remediator === 'metrics') {
        void collectFor(w, msg.id).catch((err: Error) => log.warn({ err: err.message }, 'metrics collection failed'));
      } else if (msg.remediator === 'collected') {
        const p = pending.get(msg.id);
        if (p) {
          p.got.push(msg.metrics);
          if (--p.left === 0) p.done();
        }
      }
    });
    w.on('exit', (code, signal) => {
      live.delete(w);
      listeningOnes.delete(w);
      reloadOnListen.delete(w);
      if (stopping) return;
      const upMs = Date.now() - startedAt;
      if (!listening && attempt === 0) {
        // The first start failed (a port in use, a bad setting): nothing to keep up. Its own log said why.
        log.error({ pid: w.process.pid, code, signal }, 'receiver process failed to start; stopping');
        giveUp(code !== null && code > 0 ? code : 1);
        return;
      }
      const next = upMs >= STABLE_MS ? 1 : attempt + 1;
      if (next > MAX_RESTARTS) {
        log.error({ pid: w.process.pid, code, signal, restarts: attempt }, 'receiver process cannot be kept up; stopping');
        giveUp(1);
        return;
      }
      const delayMs = Math.min(MAX_BACKOFF_MS, FIRST_BACKOFF_MS * 2 ** (next - 1));
      log.warn({ pid: w.process.pid, code, signal, upMs, restart: next, delayMs }, 'receiver process exited; restarting');
      setTimeout(() => {
        if (!stopping) start(slot, next);
      }, delayMs).unref();
    });
  };

  const api: ReceiverProcesses = {
    failed,
    reload(except) {
      for (const w of live) {
        if (w === except) continue;
        if (listeningOnes.has(w)) send(w, { remediator: 'reload' });
        else reloadOnListen.add(w);
      }
    },
    async stop(deadline) {
      stopping = true;
      const all = [...live];
      await Promise.all(
        all.map(
          (w) =>
            new Promise<void>((resolve) => {
              if (w.isDead()) return resolve();
              w.once('exit', () => resolve());
              // A signal, not a message: it is heard even before the receiver's handlers are set up (then it just ends).
              w.process.kill('SIGTERM');
              setTimeout(() => w.process.kill('SIGKILL'), Math.max(0, deadline - Date.now())).unref();
            }),
        ),
      );
    },
  };
  for (let slot = 1; slot <= opts.count; slot++) start(slot, 0);
  return api;
}

export interface ParentChannel {
  /** Tells the parent this receiver listens (a crash after this is restarted, not fatal). */
  listening(): void;
  /** This receiver re-read its rules (POST /-/reload): the parent and the other receivers do too. */
  reloaded(): void;
  /** The parent's and the other receivers' metrics (those that answer within a second). */
  otherMetrics(): Promise<ProcessMetrics[]>;
}

/** The receiver's end, in a process forked by forkReceivers: its handlers for what the parent asks. */
export function parentChannel(handlers: { reload(): void; ownMetrics(): Promise<ProcessMetrics> }): ParentChannel {
  const waiting = new Map<number, (metrics: ProcessMetrics[]) => void>();
  let nextId = 0;
  const send = (m: ToParent) => {
    if (process.connected) process.send?.(m, undefined, {}, () => {});
  };
  process.on('message', (m: unknown) => {
    if (!isMessage(m)) return;
    const msg = m as ToReceiver;
    if (msg.remediator === 'reload') handlers.reload();
    else if (msg.remediator === 'collect')
      void handlers.ownMetrics().then((metrics) => send({ remediator: 'collected', id: msg.id, metrics }));
    else if (msg.remediator === 'metrics') {
      waiting.get(msg.id)?.(msg.metrics);
      waiting.delete(msg.id);
    }
  });
  return {
    listening: () => send({ remediator: 'listening' }),
    reloaded: () => send({ remediator: 'reloaded' }),
    otherMetrics: () =>
      new Promise((resolve) => {
        const id = ++nextId;
        const timer = setTimeout(() => {
          waiting.delete(id);
          resolve([]);
        }, 2 * COLLECT_TIMEOUT_MS).unref();
        waiting.set(id, (metrics) => {
          clearTimeout(timer);
          resolve(metrics);
        });
        send({ remediator: 'metrics', id });
      }),
  };
}
