import type { Logger } from 'pino';
import type { AlertmanagerClient } from '../alertmanager/client.js';

/**
 * What a run's escalation says, the same for every target; each target lays it out its own way
 * (an Alertmanager alert, a JSON POST, a chat message). Alert labels and step outputs inside it are untrusted text.
 */
export interface EscalationNotice {
  readonly kind: 'remediation-escalated';
  readonly runId: string;
  readonly procedure: string;
  readonly title: string;
  readonly target: string;
  /** Why it escalates: failed, unknown, budget-exhausted, timeout, paused, succeeded. */
  readonly outcome: string;
  readonly state: string;
  readonly reason?: string | undefined;
  /** The procedure's escalation message, rendered. */
  readonly message: string;
  readonly alert: {
    labels: Record<string, string>;
    annotations: Record<string, string>;
    fingerprint: string;
    startsAt: string;
    status: string;
    generatorURL?: string;
  };
  readonly steps: readonly { name: string; status: string; reason?: string | undefined }[];
  /** What the escalation entry asked to attach (outputs, metrics, steps, step:<name>). */
  readonly attachments: Readonly<Record<string, unknown>>;
  /** Extra labels the escalation entry gives (team, severity), for targets that have labels. */
  readonly labels: Readonly<Record<string, string>>;
  /** Where a human can read the run. */
  readonly runUrl?: string | undefined;
  /** The runbook: the firing alert's runbook_url annotation, else the procedure's page in the console. */
  readonly runbookUrl?: string | undefined;
}

/** Automation paused by the storm breaker: one notice, belonging to no procedure. */
export interface PauseNotice {
  readonly kind: 'remediation-paused';
  readonly message: string;
  /** One of the runs that tripped it. */
  readonly example: { runId: string; procedure: string; target: string };
  readonly at: string;
}

export type Notice = EscalationNotice | PauseNotice;

export interface TargetContext {
  /** Aborted on worker shutdown; honour it promptly. */
  readonly signal: AbortSignal;
  readonly log: Logger;
  /** Per-request timeout (HTTP_TIMEOUT). */
  readonly timeoutMs: number;
}

/** What the service shares with targets: clients it builds once for other uses too (silences). */
export interface SharedClients {
  readonly alertmanager?: AlertmanagerClient | undefined;
}

export type Env = Readonly<Record<string, string | undefined>>;

/**
 * Delivers ONE attempt of a notice somewhere a human will see it.
 *
 * Not a target's job: retries with backoff, the webhook fallback, run records, metrics: the escalator
 * (engine/escalate.ts) does those once for every target, as Alertmanager's RetryStage wraps any Notifier.
 * Throw EscalationError (or HttpError) saying whether trying again could help (5xx, 429, no connection: yes;
 * other 4xx, a bad configuration: no). Keep secrets (a webhook's token in its URL, a routing key) out of what
 * is thrown; cap what is sent to what the receiving end accepts.
 */
export interface EscalationTarget<Settings> {
  /** The name in rule files: `escalation: [{ to: [<kind>, …] }]`. */
  readonly kind: string;
  /** Its name in messages: "Alertmanager", "Slack". */
  readonly title: string;
  /** What must be set for it, in words for `check` and a failed escalation: "ESCALATION_WEBHOOK_URL". */
  readonly needs: string;
  /**
   * Its settings, read once at start from its own environment variables (validated: a bad value throws
   * TargetConfigError naming the variable) or from a client the service shares. Undefined: not configured.
   */
  configure(env: Env, shared: SharedClients): Settings | undefined;
  /** Where it delivers, without secrets: one line for `check` and logs. */
  describe(settings: Settings): string;
  send(notice: Notice, settings: Settings, ctx: TargetContext): Promise<void>;
}

export class EscalationError extends Error {
  override readonly name = 'EscalationError';
  constructor(
    message: string,
    readonly retryable: boolean,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

/** A target's environment variable holds a value it cannot use. */
export class TargetConfigError extends Error {
  override readonly name = 'TargetConfigError';
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the registry holds targets of every settings type
export type AnyTarget = EscalationTarget<any>;
