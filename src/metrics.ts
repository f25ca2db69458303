import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import { buildInfo } from './build-info.js';

/** Closed label sets, created up front so every series exists at 0 from the first scrape. */
export const WEBHOOK_CODES = ['202', '400', '401', '413', '415', '503'] as const;
export const ALERT_RESULTS = ['enqueued', 'duplicate', 'ignored', 'resolved', 'paused', 'refused'] as const;
export const RUN_OUTCOMES = ['succeeded', 'failed', 'escalated', 'cancelled', 'skipped', 'resolved'] as const;
export const STEP_STATUSES = ['passed', 'failed', 'skipped', 'unknown'] as const;
export const VERIFICATION_RESULTS = ['holds', 'not_holds', 'unknown'] as const;
/** The escalation targets series are created for when the caller names none (serve names the registry's). */
export const ESCALATION_TARGETS = ['alertmanager', 'webhook'] as const;
export const ESCALATION_RESULTS = ['sent', 'failed'] as const;
export const QUEUE_STATES = ['waiting', 'active', 'delayed', 'completed', 'failed'] as const;

export interface Metrics {
  registry: Registry;
  webhookRequests: Counter<'code'>;
  webhookDuration: Histogram<'code'>;
  alerts: Counter<'result'>;
  runs: Counter<'procedure' | 'outcome'>;
  runDuration: Histogram<'procedure' | 'outcome'>;
  runSlaRatio: Histogram<'procedure'>;
  steps: Counter<'procedure' | 'step' | 'status'>;
  stepDuration: Histogram<'procedure' | 'step'>;
  stepOverEstimate: Counter<'procedure' | 'step'>;
  /** The runbook's estimate per step, from the loaded rules (to plot step durations against). */
  stepEstimate: Gauge<'procedure' | 'step'>;
  verifications: Counter<'procedure' | 'result'>;
  escalations: Counter<'procedure' | 'to' | 'result'>;
  /** The `to` values of escalations (the target registry's kinds), created up front per procedure. */
  escalationTargets: readonly string[];
  queueJobs: Gauge<'state'>;
  /** Jobs the receivers stored that no dispatcher has added to the queue yet (read at scrape time). */
  intakeBacklog: Gauge;
  /** Intake entries this process's dispatcher turned into queue jobs. */
  intakeDispatched: Counter;
  /** 1 while automation is paused (kill switch or storm breaker); read at scrape time. */
  automationPaused: Gauge;
  /** As Prometheus' prometheus_config_last_reload_successful: 0 after a refused rule reload. */
  reloadSuccessful: Gauge;
  reloadSuccessTimestamp: Gauge;
  reloads: Counter<'result'>;
}

/**
 * Every remediator_* metric, on a registry of its own (never prom-client's global one, so tests need
 * no clearing). Labels are procedure ids, step names and closed sets: never alert label values.
 */
export function createMetrics(
  procedures: { id: string; steps: { name: string; estimate?: number }[] }[] = [],
  escalationTargets: readonly string[] = ESCALATION_TARGETS,
): Metrics {
  const registry = new Registry();
  // Process and Node.js metrics under their standard names (process_cpu_seconds_total, nodejs_heap_size_used_bytes…),
  // so the usual dashboards and alerts for any Node.js service work on remediator too.
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  const info = buildInfo();
  new Gauge({
    name: 'remediator_build_info',
    help: 'A metric with a constant 1 labelled by version, revision and Node.js version (as prometheus_build_info).',
    labelNames: ['version', 'revision', 'nodejs_version'],
    registers,
  }).set({ version: info.version, revision: info.revision, nodejs_version: info.nodejs }, 1);
  const m: Metrics = {
    registry,
    escalationTargets,
    webhookRequests: new Counter({
      name: 'remediator_webhook_requests_total',
      help: 'Webhook requests by HTTP status code.',
      labelNames: ['code'],
      registers,
    }),
    webhookDuration: new Histogram({
      name: 'remediator_webhook_duration_seconds',
      help: 'Time from webhook request to response, by status code.',
      labelNames: ['code'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
    alerts: new Counter({
      name: 'remediator_alerts_total',
      help: 'Alerts received, by what was done with them.',
      labelNames: ['result'],
      registers,
    }),
    runs: new Counter({
      name: 'remediator_runs_total',
      help: 'Finished remediation runs by procedure and outcome.',
      labelNames: ['procedure', 'outcome'],
      registers,
    }),
    runDuration: new Histogram({
      name: 'remediator_run_duration_seconds',
      help: 'Remediation run duration, from start to outcome.',
      labelNames: ['procedure', 'outcome'],
      buckets: [1, 5, 10, 30, 60, 120, 300, 600, 900, 1800],
      registers,
    }),
    runSlaRatio: new Histogram({
      name: 'remediator_run_sla_ratio',
      help: 'Run duration divided by the procedure SLA (1 = exactly at the SLA), for runs that acted and judged the target (succeeded, failed, escalated).',
      labelNames: ['procedure'],
      buckets: [0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2],
      registers,
    }),
    steps: new Counter({
      name: 'remediator_steps_total',
      help: 'Steps finished, by status.',
      labelNames: ['procedure', 'step', 'status'],
      registers,
    }),
    stepDuration: new Histogram({
      name: 'remediator_step_duration_seconds',
      help: 'Step duration (action plus verification).',
      labelNames: ['procedure', 'step'],
      buckets: [0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
      registers,
    }),
    stepOverEstimate: new Counter({
      name: 'remediator_step_over_estimate_total',
      help: 'Steps that took longer than the runbook estimate.',
      labelNames: ['procedure', 'step'],
      registers,
    }),
    stepEstimate: new Gauge({
      name: 'remediator_step_estimate_seconds',
      help: "The runbook's estimated duration of each step, from the loaded rules.",
      labelNames: ['procedure', 'step'],
      registers,
    }),
    verifications: new Counter({
      name: 'remediator_verifications_total',
      help: 'Verifications (expectations of steps that verify, not of diagnoses) against Prometheus, the supervisor IPC or step results.',
      labelNames: ['procedure', 'result'],
      registers,
    }),
    escalations: new Counter({
      name: 'remediator_escalations_total',
      help: 'Escalations sent, by target and result.',
      labelNames: ['procedure', 'to', 'result'],
      registers,
    }),
    queueJobs: new Gauge({
      name: 'remediator_queue_jobs',
      help: 'Jobs in the remediation queue by state (read at scrape time).',
      labelNames: ['state'],
      registers,
    }),
    intakeBacklog: new Gauge({
      name: 'remediator_intake_backlog',
      help: 'Jobs stored by the receivers and not yet added to the remediation queue by a worker (read at scrape time).',
      registers,
    }),
    intakeDispatched: new Counter({
      name: 'remediator_intake_dispatched_total',
      help: 'Intake entries the worker turned into remediation queue jobs.',
      registers,
    }),
    automationPaused: new Gauge({
      name: 'remediator_automation_paused',
      help: '1 while automatic remediation is paused (by hand or by the storm breaker), else 0.',
      registers,
    }),
    reloadSuccessful: new Gauge({
      name: 'remediator_config_last_reload_successful',
      help: 'Whether the last rule reload attempt was successful (1) or refused, keeping the old rules (0).',
      registers,
    }),
    reloadSuccessTimestamp: new Gauge({
      name: 'remediator_config_last_reload_success_timestamp_seconds',
      help: 'Timestamp of the last successful rule load.',
      registers,
    }),
    reloads: new Counter({
      name: 'remediator_config_reloads_total',
      help: 'Rule reload attempts (/-/reload, SIGHUP) by result.',
      labelNames: ['result'],
      registers,
    }),
  };
  m.reloadSuccessful.set(1);
  m.reloadSuccessTimestamp.set(Date.now() / 1000);
  for (const result of ['success', 'failure']) m.reloads.inc({ result }, 0);
  initProcedureMetrics(m, procedures);
  return m;
}

/** Creates every procedure's series at 0 (at start, and for procedures a reload adds). */
export function initProcedureMetrics(
  m: Metrics,
  procedures: { id: string; steps: { name: string; estimate?: number }[] }[],
): void {
  for (const code of WEBHOOK_CODES) m.webhookRequests.inc({ code }, 0);
  for (const result of ALERT_RESULTS) m.alerts.inc({ result }, 0);
  for (const p of procedures) {
    for (const outcome of RUN_OUTCOMES) m.runs.inc({ procedure: p.id, outcome }, 0);
    for (const result of VERIFICATION_RESULTS) m.verifications.inc({ procedure: p.id, result }, 0);
    for (const to of m.escalationTargets)
      for (const result of ESCALATION_RESULTS) m.escalations.inc({ procedure: p.id, to, result }, 0);
    for (const s of p.steps) {
      for (const status of STEP_STATUSES) m.steps.inc({ procedure: p.id, step: s.name, status }, 0);
      if (s.estimate !== undefined) m.stepEstimate.set({ procedure: p.id, step: s.name }, s.estimate / 1000);
    }
  }
}
