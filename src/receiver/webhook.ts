import type { Logger } from 'pino';
import { plainLogger } from '../log.js';
import { formatDuration } from '../duration.js';
import { z } from 'zod';
import { WebhookPayload, normaliseTime, obviouslyValidPayload, type Alert } from '../alertmanager/payload.js';
import { newRunRecord, type RunRecord } from '../engine/record.js';
import type { Metrics } from '../metrics.js';
import { incidentJobId } from '../queue/keys.js';
import type { IngestItem, IngestOutcome, RunJob } from '../queue/queue.js';
import { formatPath as formatFieldPath } from '../rules/load.js';
import { matchProcedures } from '../rules/match.js';
import type { Procedure } from '../rules/schema.js';
import { renderTemplate, TemplateError } from '../template.js';

/** `refused`: an incident too old (a replay) or starting in the future: recorded in the answer and the metric, not run. */
export type AlertResult = 'enqueued' | 'duplicate' | 'ignored' | 'resolved' | 'refused';

export interface AlertOutcome {
  fingerprint: string;
  alertname: string;
  status: Alert['status'];
  result: AlertResult;
  procedure?: string;
  runId?: string;
  target?: string;
  reason?: string;
}

export interface WebhookDeps {
  procedures: readonly Procedure[];
  /** Stores the record if new; false when this incident is known already. */
  createRecord(record: RunRecord): Promise<boolean>;
  enqueue(job: RunJob): Promise<void>;
  /**
   * Stores a payload's new runs (records and jobs) together, in one round trip: what createRecord then enqueue do
   * for each, with the same guarantees. Without it, they are called per run.
   */
  ingest?(items: readonly IngestItem[]): Promise<IngestOutcome[]>;
  /** Resolves once replicas hold this webhook's writes (REDIS_WAIT_REPLICAS), throws when they do not: 503. */
  replicated?(): Promise<void>;
  markResolved(runId: string, at: string): Promise<boolean>;
  /** Wakes a delayed run of a resolved alert so it can cancel itself now. */
  wake(runId: string): Promise<void>;
  metrics: Metrics;
  log: Logger;
  dryRun: boolean;
  /** WEBHOOK_MAX_ALERTS: more alerts in one payload is a 400 naming `alerts`. */
  maxAlerts?: number;
  /** MAX_INCIDENT_AGE: a firing incident that started longer ago is refused (a replay past what is remembered). */
  maxIncidentAgeMs?: number;
  /**
   * Reopens an incident whose run only recorded its plan (dry-run, paused): the new generation's job id, or undefined
   * when the run acted. Only asked when this delivery would act (not DRY_RUN, automation not paused).
   */
  reopen?(record: RunRecord): Promise<string | undefined>;
  /** Whether automation is paused now (the kill switch). */
  paused?(): Promise<boolean>;
  env?: Readonly<Record<string, string | undefined>>;
}

export const DEFAULT_MAX_ALERTS = 1000;
/** RUN_RETENTION's default (7d) less an hour, as config.ts derives it. */
export const DEFAULT_MAX_INCIDENT_AGE_MS = 7 * 24 * 3_600_000 - 3_600_000;
/** How far in the future an incident's start may be (clocks of Prometheus and remediator differ a little). */
export const MAX_CLOCK_SKEW_MS = 10 * 60_000;

export interface HandlerResponse {
  status: number;
  body: unknown;
}

/** zod issue paths as people write them: `alerts[0].labels.alertname`. */
export function formatPath(path: readonly PropertyKey[]): string {
  return formatFieldPath(path) || '(root)';
}

function validationError(error: z.ZodError): HandlerResponse {
  const issues = error.issues.slice(0, 50).map((i) => ({ path: formatPath(i.path), message: i.message }));
  return { status: 400, body: { error: 'invalid Alertmanager webhook payload', issues } };
}

/**
 * POST /webhook without Express: validate, map each alert to procedures, store and enqueue.
 * 202 only after every job is in Redis; any storage failure is a 503 so Alertmanager retries the whole
 * payload, which is safe because enqueueing is idempotent per incident.
 */
export async function handleWebhook(body: unknown, deps: WebhookDeps): Promise<HandlerResponse> {
  // Counted before anything else is parsed: a payload over WEBHOOK_MAX_ALERTS costs one look, not a validation.
  const alertCount = Array.isArray((body as { alerts?: unknown } | null)?.alerts)
    ? (body as { alerts: unknown[] }).alerts.length
    : 0;
  const maxAlerts = deps.maxAlerts ?? DEFAULT_MAX_ALERTS;
  if (alertCount > maxAlerts)
    return {
      status: 400,
      body: {
        error: 'invalid Alertmanager webhook payload',
        issues: [
          {
            path: 'alerts',
            message: `${alertCount} alerts: at most ${maxAlerts} per payload (WEBHOOK_MAX_ALERTS); split the group in Alertmanager (group_by) or raise the limit`,
          },
        ],
      },
    };
  // What obviously passes skips zod (the same result); anything else, and every error, is zod's.
  const fast = obviouslyValidPayload(body);
  const parsed = fast !== undefined ? undefined : WebhookPayload.safeParse(body);
  if (parsed?.success === false) return validationError(parsed.error);
  const payload = fast ?? parsed!.data;
  const receivedAt = new Date().toISOString();
  const env = deps.env ?? process.env;

  // In alert order: a resolved alert's work, or a firing alert's run (stored together with the others, below).
  type Firing = IngestItem & { ids: Omit<AlertOutcome, 'result'> };
  const work: ((() => Promise<AlertOutcome>) | Firing)[] = [];
  const outcomes: AlertOutcome[] = [];
  // One trigger object for the whole payload: the store splits off and hashes its shared part once.
  const trigger = {
    source: 'alertmanager' as const,
    ...(payload.receiver ? { receiver: payload.receiver } : {}),
    ...(payload.groupKey ? { groupKey: payload.groupKey } : {}),
    receivedAt,
  };
  for (const alert of payload.alerts) {
    const base = { fingerprint: alert.fingerprint, alertname: alert.labels.alertname!, status: alert.status };
    const procedures = matchProcedures(deps.procedures, alert.labels);
    if (procedures.length === 0) {
      outcomes.push({ ...base, result: 'ignored', reason: 'no procedure matched' });
      continue;
    }
    const startsAt = normaliseTime(alert.startsAt);
    // Bounded replay: an incident older than MAX_INCIDENT_AGE (which is below RUN_RETENTION, so any incident taken is
    // still remembered when it comes again) or starting in the future is refused, not run (twice).
    const age = Date.parse(receivedAt) - Date.parse(startsAt);
    const refused =
      alert.status !== 'firing'
        ? undefined
        : age > (deps.maxIncidentAgeMs ?? DEFAULT_MAX_INCIDENT_AGE_MS)
          ? `incident started ${startsAt}, more than MAX_INCIDENT_AGE (${formatDuration(deps.maxIncidentAgeMs ?? DEFAULT_MAX_INCIDENT_AGE_MS)}) ago: not run (a replay or a stale alert)`
          : age < -MAX_CLOCK_SKEW_MS
            ? `incident starts ${startsAt}, in the future: not run (clock skew over ${formatDuration(MAX_CLOCK_SKEW_MS)}, or a forged time)`
            : undefined;
    for (const procedure of procedures) {
      const runId = incidentJobId(procedure.id, alert.fingerprint, startsAt);
      let target: string;
      try {
        target = renderTemplate(
          procedure.target,
          { labels: alert.labels, annotations: alert.annotations, vars: procedure.vars, env },
          'target',
        );
      } catch (err) {
        if (!(err instanceof TemplateError)) throw err;
        outcomes.push({ ...base, procedure: procedure.id, result: 'ignored', reason: `target: ${err.message}` });
        continue;
      }
      const ids = { ...base, procedure: procedure.id, runId, target };
      if (refused !== undefined) {
        outcomes.push({ ...ids, result: 'refused', reason: refused });
        continue;
      }
      if (alert.status === 'resolved') {
        work.push(async () => {
          const known = await deps.markResolved(runId, alert.endsAt ?? receivedAt);
          if (known) await deps.wake(runId);
          return {
            ...ids,
            result: 'resolved',
            ...(known ? {} : { reason: 'no run for this incident yet: remembered, its firing notification will not run it' }),
          };
        });
        continue;
      }
      const alertData = {
        labels: alert.labels,
        annotations: alert.annotations,
        fingerprint: alert.fingerprint,
        startsAt,
        status: alert.status,
        ...(alert.generatorURL ? { generatorURL: alert.generatorURL } : {}),
      };
      const record = newRunRecord({
        id: runId,
        procedure: procedure.id,
        title: procedure.title,
        target,
        alert: alertData,
        trigger,
        dryRun: deps.dryRun,
      });
      work.push({ ids, record, job: { runId, procedure: procedure.id, target, alert: alertData, trigger } });
    }
  }

  /** After the record was stored or found: a known run that only recorded its plan is reopened when this delivery acts. */
  const reopenable = async (created: boolean) =>
    !created && deps.reopen !== undefined && !deps.dryRun && !((await deps.paused?.()) ?? false);
  const finish = async ({ ids, record, job }: Firing, created: boolean, enqueue: boolean): Promise<AlertOutcome> => {
    const reopened = (await reopenable(created)) ? await deps.reopen!(record) : undefined;
    if (reopened !== undefined) await deps.enqueue({ ...job, jobId: reopened });
    else if (enqueue) await deps.enqueue(job);
    if (reopened !== undefined)
      return { ...ids, result: 'enqueued', reason: 'first seen while only plans were recorded (dry-run or paused): now run' };
    return { ...ids, result: created ? 'enqueued' : 'duplicate' };
  };
  const storeAll = async (): Promise<AlertOutcome[]> => {
    const firing = work.filter((w): w is Firing => typeof w !== 'function');
    // One round trip for every record and job of the payload; a known run that recorded only its plan costs more.
    const stored = deps.ingest !== undefined && firing.length > 0 ? await deps.ingest(firing) : undefined;
    let f = 0; // the index in `firing` (and `stored`) of the next firing item of `work`
    return Promise.all(
      work.map((w): Promise<AlertOutcome> => {
        if (typeof w === 'function') return w();
        const outcome = stored?.[f++];
        if (outcome === 'created') return Promise.resolve({ ...w.ids, result: 'enqueued' });
        if (outcome === 'duplicate') return Promise.resolve({ ...w.ids, result: 'duplicate' });
        if (outcome === 'provisional') return finish(w, false, false);
        // Record first (NX), then the job: a retry after a failure in between finds the record and adds the job.
        return deps.createRecord(w.record).then((created) => finish(w, created, true));
      }),
    );
  };

  try {
    outcomes.push(...(await storeAll()));
    if (work.length > 0) await deps.replicated?.();
  } catch (err) {
    deps.log.error({ err: (err as Error).message }, 'could not store remediation jobs; answering 503 so Alertmanager retries');
    return { status: 503, body: { error: 'remediation queue unavailable; retry later' } };
  }
  // Counted in one pass, and the metric by result once per payload (the same totals as one inc per alert).
  const counts: Record<AlertResult, number> = { enqueued: 0, duplicate: 0, ignored: 0, resolved: 0, refused: 0 };
  for (const o of outcomes) counts[o.result]++;
  for (const result of RESULTS) if (counts[result] > 0) deps.metrics.alerts.inc({ result }, counts[result]);
  const { enqueued, duplicate, ignored, resolved, refused } = counts;
  plainLogger(deps.log).info({ groupKey: payload.groupKey, enqueued, duplicate, ignored, resolved, refused }, 'webhook handled');
  return { status: 202, body: { enqueued, duplicate, ignored, resolved, refused, alerts: outcomes } };
}

const RESULTS: readonly AlertResult[] = ['enqueued', 'duplicate', 'ignored', 'resolved', 'refused'];
