/**
 * `remediator exporter`: a Prometheus exporter for one rust-tokio-supervisor, run beside it (a sidecar
 * container or a host service). Wiring only: `./collect.ts` measures, `./series.ts` turns a measurement into
 * series, `./self-metrics.ts` counts scrapes and their errors, `./snapshot.ts` keeps the last good answers.
 *
 * HTTP (EXPORTER_HOST:EXPORTER_PORT):
 * - `GET /metrics`: one scrape, now. Concurrent scrapes share one measurement (the supervisor is asked once).
 *   Prometheus's `X-Prometheus-Scrape-Timeout-Seconds` shortens the per-call IPC timeout when it is shorter
 *   than IPC_TIMEOUT, so the answer always beats the scrape timeout.
 * - `GET /snapshot`: the last hello answer, the last good state answer and the last scrape's summary (JSON).
 * - `GET /healthz`, `/-/healthy`: the exporter itself is up (says nothing about the supervisor).
 * - `GET /`: a landing page with links.
 */
import type { Server } from 'node:http';
import express from 'express';
import { Registry } from 'prom-client';
import type { ExporterConfig } from '../config.js';
import type { Logger } from '../log.js';
import { compactStartupHeap } from '../heap-compaction.js';
import { createIpcClient } from '../supervisor/ipc-client.js';
import { collect, type CollectDeps, type Measurement } from './collect.js';
import { createExporterMetrics, type ExporterMetrics } from './self-metrics.js';
import { seriesRegistry } from './series.js';
import { Snapshot } from './snapshot.js';

/** Kept between the IPC deadline and Prometheus's: time to render and send the answer. */
const SCRAPE_MARGIN_MS = 250;
const MIN_IPC_TIMEOUT_MS = 100;

export interface Scraper {
  /** One scrape: measures (or joins the measurement in flight) and returns the exposition text. */
  scrape(scrapeTimeoutMs?: number): Promise<string>;
  readonly contentType: string;
  readonly snapshot: Snapshot;
  readonly metrics: ExporterMetrics;
}

export type ScraperOptions = Omit<CollectDeps, 'client' | 'learnedTargetId'> & { log: Logger };

export function createScraper(options: ScraperOptions): Scraper {
  const { log, ...deps } = options;
  const client = createIpcClient({ path: deps.ipcPath, timeoutMs: deps.timeoutMs });
  const metrics = createExporterMetrics();
  const snapshot = new Snapshot();
  let inFlight: Promise<Measurement> | undefined;
  const reported = new Map<string, string>(); // stage → last problem logged, so a lasting fault is logged once

  const measure = async (timeoutMs: number): Promise<Measurement> => {
    const m = await collect({ ...deps, client, timeoutMs, learnedTargetId: snapshot.targetId });
    metrics.observe(m);
    snapshot.record(m);
    for (const [stage, problem] of Object.entries(m.errors)) {
      if (reported.get(stage) !== problem) log.warn({ stage, problem }, 'scrape stage failed');
      reported.set(stage, problem);
    }
    for (const stage of [...reported.keys()]) {
      if (!(stage in m.errors)) {
        log.info({ stage }, 'scrape stage measures again');
        reported.delete(stage);
      }
    }
    return m;
  };

  return {
    contentType: metrics.registry.contentType,
    snapshot,
    metrics,
    async scrape(scrapeTimeoutMs) {
      const timeoutMs =
        scrapeTimeoutMs === undefined
          ? deps.timeoutMs
          : Math.max(MIN_IPC_TIMEOUT_MS, Math.min(deps.timeoutMs, scrapeTimeoutMs - SCRAPE_MARGIN_MS));
      inFlight ??= measure(timeoutMs).finally(() => {
        inFlight = undefined;
      });
      const m = await inFlight;
      const series = seriesRegistry(m, { lastGoodStateAt: snapshot.lastGoodStateAt });
      return Registry.merge([series, metrics.registry]).metrics();
    },
  };
}

export function scraperOptions(config: ExporterConfig, log: Logger): ScraperOptions {
  return {
    log,
    ipcPath: config.SUPERVISOR_IPC_PATH,
    timeoutMs: config.IPC_TIMEOUT,
    ...(config.SUPERVISOR_PROCESS !== undefined ? { supervisorProcess: config.SUPERVISOR_PROCESS } : {}),
    ...(config.RELAY_PROCESS_PATTERN !== '' ? { relayPattern: new RegExp(config.RELAY_PROCESS_PATTERN) } : {}),
    ...(config.RELAY_REGISTRATION_PATH !== undefined ? { relayRegistrationPath: config.RELAY_REGISTRATION_PATH } : {}),
    ...(config.SUPERVISOR_TARGET_ID !== undefined ? { targetId: config.SUPERVISOR_TARGET_ID } : {}),
  };
}

export function createExporterApp(scraper: Scraper, log: Logger): express.Express {
  const app = express();
  app.disable('x-powered-by');
  app.get(['/healthz', '/-/healthy'], (_req, res) => {
    res.type('text/plain').send('ok\n');
  });
  app.get('/metrics', async (req, res) => {
    const header = Number(req.get('X-Prometheus-Scrape-Timeout-Seconds'));
    try {
      const text = await scraper.scrape(Number.isFinite(header) && header > 0 ? header * 1000 : undefined);
      res.set('Content-Type', scraper.contentType).send(text);
    } catch (err) {
      // A bug, not a measurement: the scrape fails (Prometheus records up 0) and the log says why.
      log.error({ err }, 'scrape failed');
      res.status(500).type('text/plain').send('scrape failed; see the exporter log\n');
    }
  });
  app.get('/snapshot', (_req, res) => {
    res.type('application/json').send(`${scraper.snapshot.toJson()}\n`);
  });
  app.get('/', (_req, res) => {
    res
      .type('text/html')
      .send(
        '<html><head><title>remediator exporter</title></head><body><h1>remediator exporter</h1>' +
          '<p>Prometheus exporter for one rust-tokio-supervisor (dashboard-ipc.v1).</p>' +
          '<ul><li><a href="metrics">metrics</a></li><li><a href="snapshot">snapshot</a> (last hello, last good state)</li></ul>' +
          '</body></html>\n',
      );
  });
  return app;
}

export interface RunningExporter {
  server: Server;
  port: number;
  scraper: Scraper;
  stop(): Promise<void>;
}

/** Starts the exporter's HTTP server; resolves once it listens. */
export async function startExporter(config: ExporterConfig, log: Logger): Promise<RunningExporter> {
  const scraper = createScraper(scraperOptions(config, log));
  const app = createExporterApp(scraper, log);
  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(config.EXPORTER_PORT, config.EXPORTER_HOST, () => resolve(s));
    s.once('error', reject);
  });
  // Start-up's garbage goes now, before the first scrape is answered (heap-compaction.ts).
  const compactedMs = compactStartupHeap();
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : config.EXPORTER_PORT;
  log.info(
    {
      port,
      host: config.EXPORTER_HOST,
      ipcPath: config.SUPERVISOR_IPC_PATH,
      ipcTimeoutMs: config.IPC_TIMEOUT,
      supervisorProcess: config.SUPERVISOR_PROCESS ?? null,
      relayProcessPattern: config.RELAY_PROCESS_PATTERN || null,
      relayRegistrationPath: config.RELAY_REGISTRATION_PATH ?? null,
      targetId: config.SUPERVISOR_TARGET_ID ?? null,
      ...(compactedMs !== undefined ? { startupHeapCompactedMs: Math.round(compactedMs) } : {}),
    },
    'exporter listening',
  );
  return {
    server,
    port,
    scraper,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
