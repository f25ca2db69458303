import { setTimeout as sleep } from 'node:timers/promises';
import axios from 'axios';
import type { Logger } from 'pino';
import type { AlertmanagerClient, PostableAlert } from '../alertmanager/client.js';
import type { Metrics } from '../metrics.js';
import type { Escalation, EscalationWhen, Procedure } from '../rules/schema.js';
import { createRender } from '../template.js';
import type { EscalationRecord, RunRecord } from './record.js';
import { stepResult, type StepResultSpec } from '../checks/step-result.js';
import type { StepState } from '../checks/types.js';

export const ESCALATION_ALERTNAME = 'RemediationEscalated';
const ANNOTATION_LIMIT = 8 * 1024;
const ATTEMPTS = 3;

export interface EscalatorDeps {
  alertmanager?: AlertmanagerClient;
  webhookUrl?: string;
  timeoutMs: number;
  metrics: Metrics;
  log: Logger;
  /** Where a human can read the run (…/api/remediations/<id>). */
  runUrl?: (runId: string) => string;
  /** Backoff base between delivery attempts. */
  retryDelayMs?: number;
  env?: Readonly<Record<string, string | undefined>>;
}

/** Evaluates an escalation's `if`/`unless` against the run's step results (never Prometheus). */
async function conditionHolds(spec: StepResultSpec, record: RunRecord, log: Logger): Promise<boolean> {
  const steps = new Map<string, StepState>(
    record.steps.map((s) => [s.name, { status: s.status, ...(s.result ? { result: s.result } : {}) }]),
  );
  const outcome = await stepResult.evaluate(spec, {
    signal: new AbortController().signal,
    log,
    steps,
    currentStep: record.steps.at(-1)?.name ?? '',
    prometheus: { query: () => Promise.reject(new Error('not used')), ready: async () => false },
  });
  return outcome.holds;
}

/** `failed` also covers `unknown` unless the procedure has an entry for `unknown` of its own. */
export function escalationsFor(procedure: Procedure, when: EscalationWhen): Escalation[] {
  const listed = (e: Escalation) => (Array.isArray(e.when) ? e.when : [e.when]);
  const direct = procedure.escalation.filter((e) => listed(e).includes(when));
  if (direct.length > 0 || when !== 'unknown') return direct;
  return procedure.escalation.filter((e) => listed(e).includes('failed'));
}

function cap(text: string): string {
  return text.length <= ANNOTATION_LIMIT ? text : `${text.slice(0, ANNOTATION_LIMIT)}…[truncated]`;
}

/** The attachments an escalation names, from the run record. */
export function attachments(record: RunRecord, attach: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const item of attach) {
    if (item === 'outputs')
      out.outputs = Object.fromEntries(
        record.steps.filter((s) => s.result).map((s) => [s.name, s.result?.output ?? s.result?.body ?? null]),
      );
    else if (item === 'metrics')
      out.metrics = Object.fromEntries(record.steps.filter((s) => s.observed.length > 0).map((s) => [s.name, s.observed]));
    else if (item === 'steps') out.steps = record.steps.map((s) => ({ name: s.name, status: s.status, reason: s.reason }));
    else if (item.startsWith('step:')) {
      const step = record.steps.find((s) => s.name === item.slice(5));
      out[item] = step ? { status: step.status, reason: step.reason, result: step.result, observed: step.observed } : null;
    }
  }
  return out;
}

function tried(record: RunRecord): string {
  return record.steps.map((s, i) => `${i + 1}. ${s.name}: ${s.status}${s.reason ? ` (${s.reason})` : ''}`).join('\n');
}

async function withRetries(fn: () => Promise<void>, delayMs: number): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const retryable = (err as { retryable?: boolean }).retryable !== false;
      if (!retryable || attempt >= ATTEMPTS) throw err;
      await sleep(delayMs * 2 ** (attempt - 1));
    }
  }
}

/**
 * Sends a run's escalations: a RemediationEscalated alert to Alertmanager (routed like any other alert)
 * and/or a JSON POST to the escalation webhook. When Alertmanager cannot be reached, the webhook is the
 * fallback even if the rule did not list it: a human must hear about it somehow.
 */
export function createEscalator(deps: EscalatorDeps) {
  const delay = deps.retryDelayMs ?? 500;
  return async function escalate(record: RunRecord, procedure: Procedure, when: EscalationWhen): Promise<void> {
    const log = deps.log.child({ runId: record.id, procedure: procedure.id });
    const render = createRender({
      labels: record.alert.labels,
      annotations: record.alert.annotations,
      vars: procedure.vars,
      env: deps.env ?? process.env,
    });
    for (const escalation of escalationsFor(procedure, when)) {
      if (escalation.if !== undefined && !(await conditionHolds(escalation.if, record, log))) continue;
      if (escalation.unless !== undefined && (await conditionHolds(escalation.unless, record, log))) continue;
      let message: string;
      try {
        message = render(escalation.message, 'text');
      } catch {
        message = escalation.message;
      }
      const attached = attachments(record, escalation.attach);
      const payload = {
        kind: 'remediation-escalated',
        runId: record.id,
        procedure: procedure.id,
        title: procedure.title,
        target: record.target,
        outcome: when,
        state: record.state,
        reason: record.reason,
        message,
        alert: record.alert,
        steps: record.steps.map((s) => ({ name: s.name, status: s.status, reason: s.reason })),
        attachments: attached,
        ...(deps.runUrl ? { runUrl: deps.runUrl(record.id) } : {}),
      };
      const sendWebhook = async () => {
        if (!deps.webhookUrl) throw Object.assign(new Error('ESCALATION_WEBHOOK_URL is not set'), { retryable: false });
        await withRetries(async () => {
          const res = await axios.post(deps.webhookUrl!, payload, {
            timeout: deps.timeoutMs,
            validateStatus: () => true,
            proxy: false,
          });
          if (res.status < 200 || res.status >= 300)
            throw Object.assign(new Error(`escalation webhook answered HTTP ${res.status}`), {
              retryable: res.status >= 500 || res.status === 429,
            });
        }, delay);
      };
      const sendAlert = async () => {
        if (!deps.alertmanager) throw Object.assign(new Error('ALERTMANAGER_URL is not set'), { retryable: false });
        const alert: PostableAlert = {
          labels: {
            alertname: ESCALATION_ALERTNAME,
            severity: 'page',
            procedure: procedure.id,
            target: record.target,
            reason: when,
            ...(escalation.labels ?? {}),
          },
          annotations: {
            summary: cap(message),
            description: cap(record.reason ?? ''),
            run_id: record.id,
            tried: cap(tried(record)),
            ...Object.fromEntries(
              Object.entries(attached).map(([k, v]) => [k.replace(/[^a-zA-Z0-9_]/g, '_'), cap(JSON.stringify(v))]),
            ),
          },
          startsAt: new Date().toISOString(),
          ...(deps.runUrl ? { generatorURL: deps.runUrl(record.id) } : {}),
        };
        await withRetries(() => deps.alertmanager!.postAlerts([alert]), delay);
      };
      const targets = new Set(escalation.to);
      const sentTo = new Set<string>();
      for (const to of targets) {
        const entry: EscalationRecord = { when, to, status: 'sent', at: new Date().toISOString(), message };
        try {
          await (to === 'alertmanager' ? sendAlert() : sendWebhook());
          sentTo.add(to);
        } catch (err) {
          entry.status = 'failed';
          entry.error = (err as Error).message;
          log.error({ to, err: (err as Error).message }, 'escalation failed');
        }
        record.escalations.push(entry);
        deps.metrics.escalations.inc({ procedure: procedure.id, to, result: entry.status });
      }
      if (sentTo.size === 0 && !targets.has('webhook') && deps.webhookUrl) {
        const entry: EscalationRecord = {
          when,
          to: 'webhook',
          status: 'sent',
          at: new Date().toISOString(),
          message: `${message} (fallback: Alertmanager unreachable)`,
        };
        try {
          await sendWebhook();
        } catch (err) {
          entry.status = 'failed';
          entry.error = (err as Error).message;
        }
        record.escalations.push(entry);
        deps.metrics.escalations.inc({ procedure: procedure.id, to: 'webhook', result: entry.status });
      }
    }
  };
}
export type Escalator = ReturnType<typeof createEscalator>;

/**
 * Notices that belong to no procedure (the storm breaker pausing automation): a `RemediationPaused` alert to
 * Alertmanager and a JSON POST to the escalation webhook, each tried with retries; failures are logged.
 */
export function createNotifier(deps: EscalatorDeps) {
  const delay = deps.retryDelayMs ?? 500;
  return async function notify(kind: 'paused', message: string, record: RunRecord): Promise<void> {
    const log = deps.log.child({ notice: kind });
    const payload = {
      kind: `remediation-${kind}`,
      message,
      example: { runId: record.id, procedure: record.procedure, target: record.target },
      at: new Date().toISOString(),
    };
    const sends: Promise<void>[] = [];
    if (deps.alertmanager) {
      const am = deps.alertmanager;
      sends.push(
        withRetries(
          () =>
            am.postAlerts([
              {
                labels: { alertname: 'RemediationPaused', severity: 'page', reason: kind },
                annotations: { summary: message },
                startsAt: new Date().toISOString(),
              },
            ]),
          delay,
        ),
      );
    }
    if (deps.webhookUrl) {
      const url = deps.webhookUrl;
      sends.push(
        withRetries(async () => {
          const res = await axios.post(url, payload, { timeout: deps.timeoutMs, validateStatus: () => true, proxy: false });
          if (res.status < 200 || res.status >= 300)
            throw Object.assign(new Error(`escalation webhook answered HTTP ${res.status}`), { retryable: res.status >= 500 });
        }, delay),
      );
    }
    const results = await Promise.allSettled(sends);
    for (const r of results) if (r.status === 'rejected') log.error({ err: (r.reason as Error).message }, 'pause notice failed');
    if (sends.length === 0)
      log.error('automation paused, but neither ALERTMANAGER_URL nor ESCALATION_WEBHOOK_URL is set: nobody is told');
  };
}
export type Notifier = ReturnType<typeof createNotifier>;
