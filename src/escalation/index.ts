import { AlertmanagerClient } from '../alertmanager/client.js';
import type { Config } from '../config.js';
import { alertmanager } from './alertmanager.js';
import { pagerduty } from './pagerduty.js';
import { slack } from './slack.js';
import { TargetConfigError, type AnyTarget, type Env, type SharedClients } from './types.js';
import { webhook } from './webhook.js';

/**
 * The only list of escalation targets. A new target: one file, one line here; the rule schema's
 * `escalation[].to`, `remediator check` and the escalator follow from this list.
 */
export const targets: readonly AnyTarget[] = [alertmanager, webhook, slack, pagerduty];
export const targetByKind: ReadonlyMap<string, AnyTarget> = new Map(targets.map((t) => [t.kind, t]));

/** A target with its settings, ready to send. */
export interface ConfiguredTarget {
  readonly target: AnyTarget;
  readonly settings: unknown;
}

/**
 * Reads every target's settings from the environment once. Targets not configured are left out; a bad value
 * throws TargetConfigError naming the variable.
 */
export function configureTargets(env: Env, shared: SharedClients = {}): ReadonlyMap<string, ConfiguredTarget> {
  const configured = new Map<string, ConfiguredTarget>();
  const problems: string[] = [];
  for (const target of targets) {
    try {
      const settings: unknown = target.configure(env, shared);
      if (settings !== undefined) configured.set(target.kind, { target, settings });
    } catch (err) {
      if (!(err instanceof TargetConfigError)) throw err;
      problems.push(err.message);
    }
  }
  if (problems.length > 0) throw new TargetConfigError(problems.join('\n'));
  return configured;
}

/**
 * The targets as the service configures them: each reads its own variables from the environment; the values the
 * configuration holds (ESCALATION_WEBHOOK_URL) win, and Alertmanager's client is the one silences use.
 */
export function configureEscalationTargets(
  config: Pick<Config, 'ALERTMANAGER_URL' | 'ESCALATION_WEBHOOK_URL' | 'HTTP_TIMEOUT'> | undefined,
  env: Env,
  alertmanagerClient?: AlertmanagerClient,
): ReadonlyMap<string, ConfiguredTarget> {
  const am =
    alertmanagerClient ??
    (config?.ALERTMANAGER_URL ? new AlertmanagerClient(config.ALERTMANAGER_URL, config.HTTP_TIMEOUT) : undefined);
  return configureTargets(
    config === undefined ? env : { ...env, ESCALATION_WEBHOOK_URL: config.ESCALATION_WEBHOOK_URL },
    am ? { alertmanager: am } : {},
  );
}
