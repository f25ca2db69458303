import type { Logger } from 'pino';
import type { GettableAlert } from '../alertmanager/alerts.js';
import type { AlertmanagerClient, PostableAlert } from '../alertmanager/client.js';
import type { OperatorAction, RunRecord } from '../engine/record.js';
import { escalationKey, type OpenEscalation, type OpenEscalations } from './open-escalations.js';

export const ESCALATED_ALERTNAME = 'RemediationEscalated';

export interface EscalationLifecycleDeps {
  store: OpenEscalations;
  alertmanager: AlertmanagerClient;
  /** Alertmanager's active alerts matching the filters (GET /api/v2/alerts). */
  activeAlerts(filters: string[]): Promise<GettableAlert[]>;
  /** Links for an escalation of this run: its console page, and the runbook (the alert's runbook_url, else the procedure page). */
  links(runId: string, procedure: string): Promise<{ runUrl: string; runbookUrl: string }>;
  /** How often open escalations are re-sent (ESCALATION_RESEND_INTERVAL); each lives 4 intervals, as Prometheus does. */
  resendIntervalMs: number;
  log: Logger;
}

/**
 * Keeps `RemediationEscalated` alerts firing in Alertmanager for as long as the problem persists, and resolves them
 * when it is over: like Prometheus with its alerts, each open one is re-sent every interval with endsAt 4 intervals
 * ahead (so a remediator that dies lets them end by themselves), and sent with endsAt = now when a later run of
 * the same procedure verifies the target healthy or an operator acknowledges it.
 */
export function createEscalationLifecycle(deps: EscalationLifecycleDeps) {
  const lifetime = () => new Date(Date.now() + 4 * deps.resendIntervalMs).toISOString();
  const post = (alert: PostableAlert) => deps.alertmanager.postAlerts([alert]);
  let timer: NodeJS.Timeout | undefined;

  /**
   * Takes in the escalation alerts the escalator has sent that Alertmanager holds now (the escalator knows nothing
   * of this lifecycle), adding the links people need: run_url and runbook_url.
   */
  async function adoptFromAlertmanager(): Promise<void> {
    for (const a of await deps.activeAlerts([`alertname="${ESCALATED_ALERTNAME}"`])) {
      const runId = a.annotations.run_id;
      const procedure = a.labels.procedure;
      const target = a.labels.target;
      if (!runId || !procedure || target === undefined) continue;
      const key = escalationKey(a.labels);
      const closed = await deps.store.closedAt(key);
      if (closed !== undefined && closed >= Date.parse(a.startsAt)) continue; // resolved since it was listed
      const { runUrl, runbookUrl } = await deps.links(runId, procedure);
      await deps.store.open(procedure, target, runId, {
        labels: a.labels,
        annotations: { ...a.annotations, run_url: runUrl, runbook_url: a.annotations.runbook_url ?? runbookUrl },
        startsAt: a.startsAt,
        generatorURL: a.generatorURL || runUrl,
      });
    }
  }

  async function resendDue(): Promise<number> {
    if (!(await deps.store.claimResend(deps.resendIntervalMs))) return 0;
    await adoptFromAlertmanager().catch((err: Error) =>
      deps.log.warn({ err: err.message }, 'could not list escalation alerts in Alertmanager; re-sending the known ones'),
    );
    const open = await deps.store.list();
    for (const e of open) {
      try {
        await post({ ...e.alert, endsAt: lifetime() });
        await deps.store.touch(e);
      } catch (err) {
        deps.log.warn(
          { runId: e.runId, err: (err as Error).message },
          'could not re-send an open escalation; trying again next interval',
        );
      }
    }
    return open.length;
  }

  const lifecycle = {
    /** Resolves the open escalations `match` selects, saying why in an annotation; returns them. */
    async resolve(match: (e: OpenEscalation) => boolean, why: string): Promise<OpenEscalation[]> {
      // One sent since the last interval is in Alertmanager but not known here yet: take it in first.
      await adoptFromAlertmanager().catch(() => {});
      const closed = await deps.store.close(match);
      for (const e of closed) {
        const now = new Date().toISOString();
        await post({ ...e.alert, annotations: { ...e.alert.annotations, resolution: why }, endsAt: now }).catch((err: Error) =>
          deps.log.warn({ runId: e.runId, err: err.message }, 'could not send the resolution; the alert ends by itself'),
        );
        deps.log.info({ runId: e.runId, procedure: e.procedure, why }, 'escalation resolved');
      }
      return closed;
    },

    /** A run verified its target healthy: the open escalations of its procedure on that target are resolved. */
    async resolveVerified(
      record: Pick<RunRecord, 'id' | 'procedure' | 'target'>,
      audit: (runId: string, entry: OperatorAction) => Promise<unknown>,
    ): Promise<void> {
      const why = `run ${record.id} verified ${record.target} healthy`;
      const closed = await lifecycle.resolve((e) => e.procedure === record.procedure && e.target === record.target, why);
      const at = new Date().toISOString();
      for (const e of closed)
        await audit(e.runId, { action: 'escalation-resolved', by: 'remediator', at, reason: why, runId: record.id });
    },

    async open(): Promise<OpenEscalation[]> {
      await adoptFromAlertmanager().catch(() => {});
      return deps.store.list();
    },
    resendDue,

    start(): void {
      timer ??= setInterval(() => void resendDue().catch(() => {}), deps.resendIntervalMs);
      timer.unref();
    },
    stop(): void {
      if (timer) clearInterval(timer);
      timer = undefined;
    },
  };
  return lifecycle;
}
export type EscalationLifecycle = ReturnType<typeof createEscalationLifecycle>;
