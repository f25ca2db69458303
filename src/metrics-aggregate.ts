import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue } from 'prom-client';

/** One process's metrics, as `registry.getMetricsAsJSON()` gives them (what crosses the IPC channel). */
export type ProcessMetrics = MetricObjectWithValues<MetricValue<string>>[];

/**
 * How a metric combines across the processes of one `serve` (its worker and its receivers), when it is not summed.
 * Counters and histograms sum (each process counts its own events), and so do resource gauges (memory, handles,
 * open fds: the serve's total). What describes the serve as a whole is not summed: it would double with each process.
 * `first` is the process answering the scrape, which sets the scrape-time gauges just before.
 */
export const NOT_SUMMED: Readonly<Record<string, 'first' | 'min' | 'max'>> = {
  remediator_build_info: 'first',
  // Every process reads the same rule files on each reload: a refusal in any of them is a refusal.
  remediator_config_last_reload_successful: 'min',
  remediator_config_last_reload_success_timestamp_seconds: 'min',
  // A reload reaches every process: one attempt, counted once.
  remediator_config_reloads_total: 'max',
  remediator_step_estimate_seconds: 'first',
  // Read from Redis at scrape time by the answering process.
  remediator_queue_jobs: 'first',
  remediator_intake_backlog: 'first',
  remediator_automation_paused: 'first',
  // prom-client's cluster default omits the start time; the serve started when its first process did.
  process_start_time_seconds: 'min',
  process_max_fds: 'first',
  nodejs_version_info: 'first',
};

/**
 * The exposition text of several processes' metrics as one: the answering process's own first. Keeps every metric
 * name and meaning of a single process (a one-process serve scrapes the same names and values).
 */
export async function aggregateMetrics(processes: ProcessMetrics[]): Promise<{ text: string; contentType: string }> {
  const named = processes.map((metrics) =>
    metrics.map((m) => {
      const aggregator = NOT_SUMMED[m.name];
      return aggregator === undefined ? m : { ...m, aggregator };
    }),
  );
  const registry = AggregatorRegistry.aggregate(named);
  return { text: await registry.metrics(), contentType: registry.contentType };
}
