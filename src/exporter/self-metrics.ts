/**
 * The exporter's own metrics, on a registry of its own that lives as long as the process: scrapes, scrape
 * errors by stage (a scrape error is a metric, as mysqld_exporter's `mysql_exporter_scrape_errors_total`), how
 * long each stage took, build info, and the standard process/Node.js metrics.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { buildInfo } from '../build-info.js';
import { STAGES, type Measurement } from './collect.js';

export interface ExporterMetrics {
  registry: Registry;
  /** Records one finished scrape. */
  observe(m: Measurement): void;
}

/**
 * prom-client's default collectors name three gauges `*_total`, which promtool's lint refuses ("non-counter
 * metrics should not have _total suffix"); the same counts are there without the suffix (`nodejs_active_handles`).
 */
const LINT_FAILING_DEFAULTS = ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total'];

export function createExporterMetrics(): ExporterMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  for (const name of LINT_FAILING_DEFAULTS) registry.removeSingleMetric(name);
  const registers = [registry];
  const info = buildInfo();
  new Gauge({
    name: 'supervisor_exporter_build_info',
    help: 'A metric with a constant 1 labelled by version, revision and Node.js version of remediator exporter.',
    labelNames: ['version', 'revision', 'nodejs_version'],
    registers,
  }).set({ version: info.version, revision: info.revision, nodejs_version: info.nodejs }, 1);
  const scrapes = new Counter({
    name: 'supervisor_exporter_scrapes_total',
    help: 'Scrapes of the supervisor (each asks hello and state once and looks at processes and sockets).',
    registers,
  });
  const errors = new Counter<'stage'>({
    name: 'supervisor_exporter_scrape_errors_total',
    help: 'Scrape stages that could not measure what they are for (no IPC answer, an error answer, /proc or stat unreadable), by stage.',
    labelNames: ['stage'],
    registers,
  });
  const lastError = new Gauge<'stage'>({
    name: 'supervisor_exporter_last_scrape_error',
    help: '1 if the stage failed in the last scrape, else 0.',
    labelNames: ['stage'],
    registers,
  });
  const duration = new Gauge<'stage'>({
    name: 'supervisor_exporter_scrape_stage_duration_seconds',
    help: 'How long each stage of the last scrape took (stages run in parallel).',
    labelNames: ['stage'],
    registers,
  });
  for (const stage of STAGES) {
    errors.inc({ stage }, 0);
    lastError.set({ stage }, 0);
  }
  return {
    registry,
    observe(m) {
      scrapes.inc();
      for (const stage of STAGES) {
        const failed = m.errors[stage] !== undefined;
        if (failed) errors.inc({ stage });
        lastError.set({ stage }, failed ? 1 : 0);
        const seconds = m.stageSeconds[stage];
        if (seconds !== undefined) duration.set({ stage }, seconds);
      }
    },
  };
}
