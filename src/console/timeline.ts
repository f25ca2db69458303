/**
 * One run's story in time order, as data: alert fired → webhook → queue and lease wait → each step → escalations
 * and silences → outcome. The console renders it as HTML and `remediator runs show` as text; neither decides
 * anything from it. Pure: types only, no I/O.
 */
import { formatDuration } from '../duration.js';
import type { RunRecord, StepRecord } from '../engine/record.js';

export type TimelineKind =
  'alert' | 'trigger' | 'queue' | 'step' | 'escalation' | 'silence' | 'operator' | 'outcome' | 'resolved';

export interface TimelineEntry {
  at: string;
  kind: TimelineKind;
  title: string;
  /** More lines: the rendered action, its result, the expectation, each observed value with its time. */
  details: string[];
  status?: string;
  /** For steps: the index into run.steps (charts are per step). */
  step?: number;
}

const ms = (a?: string, b?: string) => (a && b ? Date.parse(b) - Date.parse(a) : undefined);
/** Durations for people: 850ms, 3.1s, 42s, 1m30s. */
export function fmt(d: number | undefined): string {
  if (d === undefined || !Number.isFinite(d)) return '–';
  const ms = Math.max(0, d);
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)}s`;
  return formatDuration(Math.round(ms / 1000) * 1000);
}

export function valueText(v: number | string | null): string {
  return v === null ? 'no value' : String(v);
}

function stepDetails(s: StepRecord): string[] {
  const out: string[] = [];
  if (s.description) out.push(`runbook: ${s.description}`);
  if (s.when)
    out.push(
      `when ${s.when.description}: ${s.when.holds ? 'held' : 'did not hold'}${s.when.reason ? ` (${s.when.reason})` : ''}`,
    );
  if (s.action) out.push(`action: ${s.action.description}`);
  if (s.result) {
    const r = s.result;
    const parts = [`result: ${r.status}`];
    if (r.exitCode !== undefined) parts.push(`exit code ${r.exitCode}`);
    if (r.httpStatus !== undefined) parts.push(`HTTP ${r.httpStatus}`);
    out.push(parts.join(', '));
    if (r.output) out.push(`output: ${r.output.length > 2000 ? `${r.output.slice(0, 2000)}…` : r.output}`);
  }
  if (s.expect)
    out.push(
      `expect ${s.expect.description}: ${s.expect.holds ? 'holds' : s.expect.unknown ? 'unknown' : 'does not hold'} after ${s.expect.attempts} look(s) in ${fmt(s.expect.elapsedMs)}`,
    );
  for (const o of s.observed)
    out.push(
      `observed ${valueText(o.value)} at ${o.at}${Object.keys(o.labels).length > 0 ? ` ${JSON.stringify(o.labels)}` : ''}`,
    );
  if (s.reason) out.push(`${s.status === 'skipped' ? 'skipped' : 'reason'}: ${s.reason}`);
  if (s.attempts > 1) out.push(`attempts: ${s.attempts}`);
  return out;
}

export function runTimeline(run: RunRecord): TimelineEntry[] {
  const entries: TimelineEntry[] = [];
  const alertname = run.alert.labels.alertname ?? '(no alertname)';
  entries.push({
    at: run.alert.startsAt,
    kind: 'alert',
    title: `alert ${alertname} fired`,
    details: [JSON.stringify(run.alert.labels)],
  });
  entries.push(
    run.trigger.source === 'operator'
      ? {
          at: run.trigger.receivedAt,
          kind: 'trigger',
          title: `re-run requested by ${run.trigger.by ?? 'an operator'}`,
          details: run.rerunOf ? [`repeats run ${run.rerunOf}`] : [],
        }
      : {
          at: run.trigger.receivedAt,
          kind: 'trigger',
          title: `webhook received from Alertmanager${run.trigger.receiver ? ` (receiver ${run.trigger.receiver})` : ''}`,
          details: [
            `${fmt(ms(run.alert.startsAt, run.trigger.receivedAt))} after the alert started`,
            ...(run.trigger.groupKey ? [`group ${run.trigger.groupKey}`] : []),
          ],
        },
  );
  if (run.startedAt) {
    const waited = ms(run.trigger.receivedAt, run.startedAt);
    entries.push({
      at: run.startedAt,
      kind: 'queue',
      title: `started on ${run.worker ?? 'a worker'}`,
      details: [
        `${fmt(waited)} in the queue and waiting for the target's lease`,
        ...(run.takeovers > 0 ? [`taken over ${run.takeovers}× after a worker died`] : []),
      ],
    });
  } else if (run.state === 'queued' && run.reason) {
    entries.push({ at: run.trigger.receivedAt, kind: 'queue', title: 'queued', details: [run.reason] });
  }
  if (run.silence)
    entries.push({
      at: run.startedAt ?? run.trigger.receivedAt,
      kind: 'silence',
      title: `alert silenced until ${run.silence.until}`,
      details: [`silence ${run.silence.id}${run.silence.expired ? ', expired at the end' : ''}`],
    });
  run.steps.forEach((s, i) => {
    const took = s.durationMs !== undefined ? fmt(s.durationMs) : undefined;
    const est = s.estimate !== undefined ? ` (estimate ${fmt(s.estimate)}${s.overEstimate ? ', over' : ''})` : '';
    entries.push({
      at: s.startedAt ?? s.endedAt ?? run.startedAt ?? run.trigger.receivedAt,
      kind: 'step',
      title: `step ${i + 1} ${s.name}: ${s.startedAt && !s.endedAt ? 'running' : s.status}${took ? ` in ${took}` : ''}${est}`,
      details: stepDetails(s),
      status: s.startedAt && !s.endedAt ? 'running' : s.status,
      step: i,
    });
  });
  for (const e of run.escalations)
    entries.push({
      at: e.at,
      kind: 'escalation',
      title: `escalated (${e.when}) to ${e.to}: ${e.status}`,
      details: [e.message, ...(e.error ? [`error: ${e.error}`] : [])],
      status: e.status,
    });
  for (const a of run.audit ?? [])
    entries.push({
      at: a.at,
      kind: 'operator',
      title: `${a.action} by ${a.by}`,
      details: [...(a.reason ? [`reason: ${a.reason}`] : []), ...(a.runId ? [`new run ${a.runId}`] : [])],
    });
  if (run.resolvedAt) entries.push({ at: run.resolvedAt, kind: 'resolved', title: 'alert resolved', details: [] });
  if (run.endedAt)
    entries.push({
      at: run.endedAt,
      kind: 'outcome',
      title: `${run.state}${run.sla.actualMs !== undefined ? ` after ${fmt(run.sla.actualMs)}` : ''}`,
      details: [...(run.reason ? [run.reason] : []), ...slaLine(run)],
      status: run.state,
    });
  return entries.sort((a, b) => Date.parse(a.at) - Date.parse(b.at));
}

/** Duration against the runbook estimate and the SLA, in words. */
export function slaLine(run: RunRecord): string[] {
  const actual = run.sla.actualMs ?? (run.startedAt && !run.endedAt ? Date.now() - Date.parse(run.startedAt) : undefined);
  if (actual === undefined) return [];
  const parts = [`took ${fmt(actual)}`];
  if (run.sla.estimateMs !== undefined) parts.push(`estimate ${fmt(run.sla.estimateMs)}`);
  if (run.sla.slaMs !== undefined) parts.push(`SLA ${fmt(run.sla.slaMs)} (${actual <= run.sla.slaMs ? 'within' : 'over'})`);
  return [parts.join(', ')];
}

/** The timeline as plain text, one entry a block (for `remediator runs show`). */
export function timelineText(run: RunRecord): string {
  const head = [
    `run ${run.id}`,
    `  ${run.procedure} ${run.title}`,
    `  target ${run.target}, state ${run.state}${run.reason ? `: ${run.reason}` : ''}`,
    ...(run.rerunOf ? [`  re-run of ${run.rerunOf}`] : []),
    ...(run.reruns?.length ? [`  re-runs: ${run.reruns.join(', ')}`] : []),
    ...(run.cancelRequested ? [`  cancel requested by ${run.cancelRequested.by} at ${run.cancelRequested.at}`] : []),
    '',
  ];
  const lines = runTimeline(run).flatMap((e) => [
    `${e.at}  ${e.title}`,
    ...e.details.map((d) => `    ${d.replace(/\n/g, '\n    ')}`),
  ]);
  return [...head, ...lines, ''].join('\n');
}
