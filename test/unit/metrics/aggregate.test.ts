import { describe, expect, it } from 'vitest';
import { createMetrics } from '../../../src/metrics.js';
import { aggregateMetrics } from '../../../src/metrics-aggregate.js';

const procedures = [{ id: 'P-1', steps: [{ name: 'act', estimate: 2000 }] }];

/** The value of one exposition line, by its exact series name (with labels). */
const value = (text: string, series: string) => {
  const lines = text.split('\n').filter((l) => l.startsWith(`${series} `));
  expect(lines, series).toHaveLength(1);
  return Number(lines[0]!.split(' ').at(-1));
};

describe('metrics of a multi-process serve, joined', () => {
  it('counters and histograms sum; what describes the serve as a whole is not multiplied by its processes', async () => {
    const receiver = createMetrics(procedures);
    const worker = createMetrics(procedures);
    receiver.webhookRequests.inc({ code: '202' }, 3);
    receiver.alerts.inc({ result: 'enqueued' }, 3);
    worker.runs.inc({ procedure: 'P-1', outcome: 'succeeded' }, 2);
    worker.stepDuration.observe({ procedure: 'P-1', step: 'act' }, 0.2);
    receiver.stepDuration.observe({ procedure: 'P-1', step: 'act' }, 0.3); // never, but it would add up
    // One reload reached both processes and failed in one (a file changed between the two reads).
    for (const m of [receiver, worker]) m.reloads.inc({ result: 'failure' });
    receiver.reloadSuccessful.set(0);
    worker.reloadSuccessful.set(1);
    // Set at scrape time by the answering process only.
    receiver.queueJobs.set({ state: 'waiting' }, 7);
    receiver.automationPaused.set(1);

    const { text, contentType } = await aggregateMetrics([
      await receiver.registry.getMetricsAsJSON(),
      await worker.registry.getMetricsAsJSON(),
    ]);
    expect(contentType).toMatch(/^text\/plain/);
    expect(value(text, 'remediator_webhook_requests_total{code="202"}')).toBe(3);
    expect(value(text, 'remediator_runs_total{procedure="P-1",outcome="succeeded"}')).toBe(2);
    expect(value(text, 'remediator_step_duration_seconds_count{procedure="P-1",step="act"}')).toBe(2);
    expect(value(text, 'remediator_step_duration_seconds_bucket{le="0.5",procedure="P-1",step="act"}')).toBe(2);
    expect(value(text, 'remediator_config_reloads_total{result="failure"}')).toBe(1);
    expect(value(text, 'remediator_config_last_reload_successful')).toBe(0);
    expect(value(text, 'remediator_queue_jobs{state="waiting"}')).toBe(7);
    expect(value(text, 'remediator_automation_paused')).toBe(1);
    expect(value(text, 'remediator_step_estimate_seconds{procedure="P-1",step="act"}')).toBe(2);
    expect(text).toMatch(/^remediator_build_info\{version="[^"]+",revision="[^"]+",nodejs_version="v\d+[^"]*"\} 1$/m);
    // The standard process metrics keep their names; the start time is the earliest, not a sum (nor omitted).
    const start = value(text, 'process_start_time_seconds');
    expect(start).toBeGreaterThan(1e9);
    expect(start).toBeLessThan(Date.now() / 1000 + 1);
    expect(value(text, 'process_max_fds')).toBeGreaterThan(0);
    expect(text).toMatch(/^process_resident_memory_bytes \d+/m);
    expect(text).toMatch(/^nodejs_version_info\{/m);
  });

  it('one process: the same names and values as its own registry', async () => {
    const only = createMetrics(procedures);
    only.alerts.inc({ result: 'duplicate' }, 4);
    const { text } = await aggregateMetrics([await only.registry.getMetricsAsJSON()]);
    expect(value(text, 'remediator_alerts_total{result="duplicate"}')).toBe(4);
    const names = (t: string) => [...t.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]).sort();
    expect(names(text)).toEqual(names(await only.registry.metrics()));
  });
});
