/**
 * The simulated host's YAML config: the real `SupervisorConfig` sections (rust-supervisor
 * `src/config/configurable.rs`: `supervisor`, `policy`, `shutdown`, `observability`, `ipc`, `children`) plus a
 * `sim:` section that is NOT part of the real program (process name, admin socket, host behaviour).
 *
 * Real children are tasks the host declares in code; here each child names a behaviour instead (the chaos
 * fixtures' `ChildBehavior`, tests/chaos/fixtures/child_spawner.rs), which shows only through the IPC fields.
 */
import { readFileSync } from 'node:fs';
import { isAbsolute } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';

const Behavior = z.enum(['normal', 'panic_after', 'block_forever', 'ignore_cancel']);
export type Behavior = z.infer<typeof Behavior>;

const Child = z.strictObject({
  name: z.string().regex(/^[a-zA-Z_][a-zA-Z0-9_-]*$/, 'names must match ^[a-zA-Z_][a-zA-Z0-9_-]*$'),
  behavior: Behavior.default('normal'),
  /** panic_after: ms from each start to its panic. */
  panic_after_ms: z.number().int().positive().default(500),
  /** Calls TaskContext::heartbeat every this many ms (0 = never, as the chaos fixtures). */
  heartbeat_ms: z.number().int().nonnegative().default(0),
  criticality: z.enum(['critical', 'optional']).default('critical'),
  tags: z.array(z.string()).default([]),
});
export type ChildConfig = z.infer<typeof Child>;

const Registration = z.strictObject({
  enabled: z.boolean(),
  relay_registration_path: z.string().optional(),
  display_name: z.string().optional(),
  lease_seconds: z.number().int().nonnegative().optional(),
  registration_heartbeat_interval_seconds: z.number().int().nonnegative().optional(),
});

const Ipc = z.strictObject({
  enabled: z.boolean(),
  target_id: z.string().optional(),
  path: z.string().optional(),
  /** Parsed and never applied, as in the real program: the socket mode follows the umask. */
  permissions: z.string().optional(),
  bind_mode: z.enum(['create_new', 'replace_stale']).optional(),
  registration: Registration.optional(),
});

const Sim = z.strictObject({
  /** The host binary's name as /proc/<pid>/comm shows it (cut to 15 characters by Linux). */
  process_name: z.string().min(1).default('payments-worker'),
  /** Fault injection, HTTP over this Unix socket (not part of the contract). Default `<ipc.path>.admin`. */
  admin_socket: z.string().optional(),
  /** Print lifecycle strings (`shutdown_phase_changed:Reconcile:Completed`, …) to stdout, as a host that logs
   * `handle.subscribe_events()` would. */
  lifecycle_log: z.boolean().default(false),
  /** SIGTERM: `graceful` = a host that handles it like Ctrl-C (shutdown_tree, socket removed, exit 0);
   * `default` = a host that does not (the process dies, the socket file stays). SIGINT is always graceful. */
  sigterm: z.enum(['graceful', 'default']).default('graceful'),
  /** The line:column printed in `thread 'main' panicked at src/main.rs:L:C:`. */
  panic_location: z.string().default('src/main.rs:42:9'),
});

export const SimConfig = z.strictObject({
  supervisor: z
    .strictObject({ strategy: z.enum(['OneForOne', 'OneForAll', 'RestForOne']).default('OneForOne') })
    .default({ strategy: 'OneForOne' }),
  policy: z
    .strictObject({
      child_restart_limit: z.number().int().positive().default(10),
      child_restart_window_ms: z.number().int().positive().default(60_000),
      supervisor_failure_limit: z.number().int().positive().default(30),
      supervisor_failure_window_ms: z.number().int().positive().default(60_000),
      initial_backoff_ms: z.number().int().positive().default(10),
      max_backoff_ms: z.number().int().positive().default(1000),
      jitter_ratio: z.number().min(0).max(1).default(0),
      heartbeat_interval_ms: z.number().int().positive().default(1000),
      stale_after_ms: z.number().int().positive().default(3000),
    })
    .prefault({}),
  shutdown: z
    .strictObject({
      graceful_timeout_ms: z.number().int().positive().default(5000),
      abort_wait_ms: z.number().int().positive().default(100),
    })
    .prefault({}),
  observability: z
    .strictObject({
      event_journal_capacity: z.number().int().positive().default(256),
      metrics_enabled: z.boolean().default(true),
      audit_enabled: z.boolean().default(true),
    })
    .prefault({}),
  ipc: Ipc.optional(),
  children: z.array(Child).default([]),
  sim: Sim.prefault({}),
});
export type SimConfig = z.infer<typeof SimConfig>;

export class SimConfigError extends Error {
  override readonly name = 'SimConfigError';
}

export function loadSimConfig(file: string): SimConfig {
  const parsed = SimConfig.safeParse(parseYaml(readFileSync(file, 'utf8')) ?? {});
  if (!parsed.success) throw new SimConfigError(`${file}: ${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

/** `ValidatedDashboardIpcConfig` (dashboard/config.rs:233). */
export interface IpcSettings {
  targetId: string;
  path: string;
  bindMode: 'create_new' | 'replace_stale';
  registration?: {
    relayRegistrationPath: string;
    displayName: string;
    leaseSeconds: number;
    heartbeatSeconds: number;
  };
}

/** A refusal with the real `DashboardError` text (`validation_failed at config: …`), for the fatal print. */
export class IpcConfigError extends Error {
  override readonly name = 'IpcConfigError';
}

/** validate_dashboard_ipc_config (dashboard/config.rs:269-374): the same checks, order and messages. */
export function validateIpc(config: SimConfig): IpcSettings | undefined {
  const ipc = config.ipc;
  if (ipc === undefined || !ipc.enabled) return undefined;
  const fail = (msg: string): never => {
    throw new IpcConfigError(`validation_failed at config: ${msg}`);
  };
  const targetId = (ipc.target_id ?? '').trim();
  if (targetId === '') fail('ipc.target_id must not be empty');
  if (ipc.path === undefined) fail('ipc.path is required when IPC is enabled');
  const path = ipc.path as string;
  if (!isAbsolute(path)) fail('ipc.path must be absolute');
  const settings: IpcSettings = { targetId, path, bindMode: ipc.bind_mode ?? 'create_new' };
  const reg = ipc.registration;
  if (reg === undefined || !reg.enabled) return settings;
  if (reg.relay_registration_path === undefined) fail('ipc.registration.relay_registration_path is required');
  if (!isAbsolute(reg.relay_registration_path as string)) fail('ipc.registration.relay_registration_path must be absolute');
  if (reg.lease_seconds === undefined) fail('ipc.registration.lease_seconds is required');
  if (reg.lease_seconds === 0) fail('ipc.registration.lease_seconds must be greater than zero');
  const heartbeat = reg.registration_heartbeat_interval_seconds ?? 15;
  if (heartbeat === 0 || heartbeat >= (reg.lease_seconds as number)) {
    fail('ipc.registration.registration_heartbeat_interval_seconds must be positive and less than lease_seconds');
  }
  const display = reg.display_name?.trim() ? reg.display_name : targetId;
  settings.registration = {
    relayRegistrationPath: reg.relay_registration_path as string,
    displayName: display,
    leaseSeconds: reg.lease_seconds as number,
    heartbeatSeconds: heartbeat,
  };
  return settings;
}

/** `ConfigState::config_version` (config/state.rs:357-366). */
export function configVersion(config: SimConfig): string {
  return `supervisor-${config.supervisor.strategy}-policy-${config.policy.child_restart_limit}-${config.policy.supervisor_failure_limit}-shutdown-${config.shutdown.graceful_timeout_ms}-observe-${config.observability.event_journal_capacity}`;
}
