/**
 * `remediator runs list|show|tail|cancel|retry`, `pause`, `resume`: each a call to a running instance's API, printed
 * for people (or as JSON with --json). Exit codes: 0 done; 1 the run ended other than succeeded (tail) or the
 * request was refused; 2 usage; the caller maps thrown ApiErrors to 1.
 */
import { isFinal, type RunRecord } from '../engine/record.js';
import { fmt, runTimeline, timelineText, type TimelineEntry } from '../console/timeline.js';
import type { ApiClient } from './api.js';

export interface Output {
  out(line: string): void;
  err(line: string): void;
}

const pad = (s: string, n: number) => (s.length >= n ? `${s.slice(0, n - 1)}… ` : s.padEnd(n + 1));

export interface ListOptions {
  state?: string;
  procedure?: string;
  target?: string;
  since?: string;
  limit?: string;
  json?: boolean;
}

/** `1h`, `30m`, `2d` before now, or an RFC 3339 time, as ms since the epoch. */
export function sinceTime(text: string): number {
  const rel = /^(\d+)(m|h|d)$/.exec(text);
  if (rel) return Date.now() - Number(rel[1]) * { m: 60_000, h: 3_600_000, d: 86_400_000 }[rel[2] as 'm' | 'h' | 'd'];
  const t = Date.parse(text);
  if (!Number.isFinite(t)) throw new Error(`--since: expected 30m, 2h, 1d or an RFC 3339 time, got ${JSON.stringify(text)}`);
  return t;
}

export async function listRuns(api: ApiClient, o: ListOptions, io: Output): Promise<number> {
  const q = new URLSearchParams();
  if (o.state) q.set('state', o.state);
  if (o.procedure) q.set('procedure', o.procedure);
  if (o.target) q.set('target', o.target);
  if (o.since) q.set('since', String(sinceTime(o.since)));
  q.set('limit', o.limit ?? '20');
  const { runs } = await api.get<{ runs: RunRecord[] }>(`/api/remediations?${q.toString()}`);
  if (o.json) {
    io.out(JSON.stringify(runs, null, 2));
    return 0;
  }
  io.out(
    `${pad('ID', 46)}${pad('STATE', 10)}${pad('PROCEDURE', 10)}${pad('TARGET', 24)}${pad('RECEIVED', 20)}DURATION / ESTIMATE`,
  );
  for (const r of runs) {
    const actual = r.sla.actualMs ?? (r.startedAt ? Date.now() - Date.parse(r.startedAt) : undefined);
    io.out(
      `${pad(r.id, 46)}${pad(r.state, 10)}${pad(r.procedure, 10)}${pad(r.target, 24)}${pad(r.trigger.receivedAt.replace('T', ' ').slice(0, 19), 20)}${fmt(actual)}${r.sla.estimateMs !== undefined ? ` / ${fmt(r.sla.estimateMs)}` : ''}`,
    );
  }
  if (runs.length === 0) io.err('no runs match');
  return 0;
}

export async function showRun(api: ApiClient, id: string, json: boolean | undefined, io: Output): Promise<number> {
  const run = await api.get<RunRecord>(`/api/remediations/${encodeURIComponent(id)}`);
  io.out(json ? JSON.stringify(run, null, 2) : timelineText(run).trimEnd());
  return 0;
}

const entryKey = (e: TimelineEntry) => `${e.kind}|${e.step ?? ''}|${e.title}`;

/**
 * Follows one run live (the newest unfinished one without an id, waiting for the next if none), printing each new
 * timeline entry as it appears, to its end. Exit 0 when it ends succeeded, 1 otherwise.
 */
export async function tailRun(
  api: ApiClient,
  id: string | undefined,
  json: boolean | undefined,
  io: Output,
  pollMs = 1000,
): Promise<number> {
  let runId = id;
  if (runId === undefined) {
    const started = Date.now();
    io.err('waiting for a run…');
    for (;;) {
      const { runs } = await api.get<{ runs: RunRecord[] }>('/api/remediations?limit=50');
      const live = runs.find((r) => !isFinal(r.state) || Date.parse(r.trigger.receivedAt) >= started);
      if (live) {
        runId = live.id;
        break;
      }
      await new Promise((r) => setTimeout(r, pollMs));
    }
  }
  const printed = new Set<string>();
  let last: RunRecord | undefined;
  const show = (run: RunRecord) => {
    last = run;
    if (json) {
      io.out(JSON.stringify(run));
      return;
    }
    if (printed.size === 0) io.out(`following run ${run.id}: ${run.procedure} on ${run.target}`);
    for (const e of runTimeline(run)) {
      // A running step's title changes when it ends; print each version of it once.
      const key = entryKey(e);
      if (printed.has(key)) continue;
      printed.add(key);
      io.out(`${e.at}  ${e.title}`);
      for (const d of e.details) if (!d.startsWith('runbook:')) io.out(`    ${d}`);
    }
  };
  await api.events(`/api/remediations/${encodeURIComponent(runId)}/events`, (event, data) => {
    if (event === 'change') show(data as RunRecord);
  });
  if (last === undefined || !isFinal(last.state)) {
    // The stream ended early (a proxy, a restart): read where it stands.
    show(await api.get<RunRecord>(`/api/remediations/${encodeURIComponent(runId)}`));
  }
  return last?.state === 'succeeded' ? 0 : 1;
}

export async function cancel(api: ApiClient, id: string, reason: string | undefined, io: Output): Promise<number> {
  const r = await api.post<{ error?: string; note?: string }>(`/api/remediations/${encodeURIComponent(id)}/cancel`, { reason });
  if (r.status >= 400) {
    io.err(r.body.error ?? `refused (HTTP ${r.status})`);
    return 1;
  }
  io.out(`cancel requested for ${id}: ${r.body.note ?? ''}`.trim());
  return 0;
}

export async function retry(api: ApiClient, id: string, reason: string | undefined, io: Output): Promise<number> {
  const r = await api.post<{ error?: string; runId?: string; created?: boolean }>(
    `/api/remediations/${encodeURIComponent(id)}/retry`,
    { reason },
  );
  if (r.status >= 400) {
    io.err(r.body.error ?? `refused (HTTP ${r.status})`);
    return 1;
  }
  io.out(
    `re-run ${r.body.runId}${r.body.created ? '' : ' (already requested)'} of ${id}; follow it with: remediator runs tail ${r.body.runId}`,
  );
  return 0;
}

export async function acknowledge(api: ApiClient, id: string, reason: string | undefined, io: Output): Promise<number> {
  const r = await api.post<{ error?: string; resolved?: Record<string, string>[] }>(
    `/api/remediations/${encodeURIComponent(id)}/acknowledge`,
    { reason },
  );
  if (r.status >= 400) {
    io.err(r.body.error ?? `refused (HTTP ${r.status})`);
    return 1;
  }
  io.out(`acknowledged: ${r.body.resolved?.length ?? 0} escalation alert(s) of ${id} resolved in Alertmanager`);
  return 0;
}

export async function pause(api: ApiClient, reason: string, io: Output): Promise<number> {
  const r = await api.post<{ paused: boolean; by?: string; reason?: string; at?: string; note?: string }>('/api/pause', {
    reason,
  });
  io.out(r.status === 409 ? `already paused by ${r.body.by} at ${r.body.at}: ${r.body.reason}` : `paused: ${r.body.reason}`);
  return 0;
}

export async function resume(api: ApiClient, reason: string | undefined, io: Output): Promise<number> {
  const r = await api.post<{ resumed: boolean }>('/api/resume', { ...(reason ? { reason } : {}) });
  io.out(r.body.resumed ? 'resumed: automation runs again' : 'was not paused');
  return 0;
}
