/**
 * The supervisor's dashboard IPC service (rust-supervisor dashboard/runtime.rs:113-204, ipc_server.rs:133-335):
 * connections served concurrently, each read line by line until EOF, one answer line per request line.
 * `hello` and all validation are answered here; `state` and commands wait for the control loop.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { stringifyWireJson } from '../../src/supervisor/json.js';
import {
  COMMAND_KINDS,
  CONFIRMATION_REQUIRED,
  INVALID_REQUEST_ID,
  lastSegment,
  PROTOCOL_VERSION,
} from '../../src/supervisor/protocol.js';
import type { IpcSettings, SimConfig } from './config.js';
import { configVersion } from './config.js';
import type { ControlLoop } from './control-loop.js';
import {
  dashboardError,
  decodeCommandParams,
  parseRequestLine,
  type CommandRequest,
  type DashboardError,
  type ParsedRequest,
} from './request.js';
import { SupervisorError, type Runtime } from './runtime.js';

/** TargetProcessRegistration (model.rs:33), from build_registration_payload (registration.rs:47). */
export function registrationPayload(ipc: IpcSettings): Record<string, unknown> | DashboardError {
  if (ipc.registration === undefined)
    return dashboardError('validation_failed', 'registration', ipc.targetId, 'dynamic registration is not enabled');
  return {
    target_id: ipc.targetId,
    display_name: ipc.registration.displayName,
    ipc_path: ipc.path,
    lease_seconds: ipc.registration.leaseSeconds,
    supported_commands: COMMAND_KINDS.map((name) => ({ name, idempotent: false, timeout_seconds: 30 })),
  };
}

export interface IpcServiceDeps {
  ipc: IpcSettings;
  config: SimConfig;
  loop: ControlLoop;
  runtime: Runtime;
  /** Fixed when the IPC service starts (dashboard/state.rs:77 reads SupervisorState.generated_at, set once). */
  generatedAt: bigint;
}

type Answer = { ok: true; result: unknown } | { ok: false; error: DashboardError };

export function createIpcService(deps: IpcServiceDeps): Server {
  return createServer((socket) => serveConnection(socket, deps));
}

function serveConnection(socket: Socket, deps: IpcServiceDeps): void {
  let buffer = '';
  let chain = Promise.resolve();
  socket.on('error', () => undefined);
  socket.on('data', (chunk: Buffer) => {
    buffer += chunk.toString('utf8');
    let nl: number;
    while ((nl = buffer.indexOf('\n')) !== -1) {
      const line = buffer.slice(0, nl + 1);
      buffer = buffer.slice(nl + 1);
      // One line at a time per connection, in order (read_line → handle → write, runtime.rs:158-174).
      chain = chain.then(async () => {
        const out = await responseForLine(line, deps);
        if (!socket.destroyed) socket.write(`${stringifyWireJson(out)}\n`);
      });
    }
  });
}

async function responseForLine(line: string, deps: IpcServiceDeps): Promise<Record<string, unknown>> {
  const parsed = parseRequestLine(line);
  if (!parsed.ok) return { request_id: INVALID_REQUEST_ID, ok: false, error: parsed.error };
  const answer = await dispatch(parsed.request, deps);
  return answer.ok
    ? { request_id: parsed.request.request_id, ok: true, result: answer.result }
    : { request_id: parsed.request.request_id, ok: false, error: answer.error };
}

async function dispatch(request: ParsedRequest, deps: IpcServiceDeps): Promise<Answer> {
  const { ipc } = deps;
  switch (request.method) {
    case 'hello': {
      const reg = registrationPayload(ipc);
      if ('code' in reg) return { ok: false, error: reg as DashboardError };
      return { ok: true, result: { type: 'hello', protocol_version: PROTOCOL_VERSION, registration: reg } };
    }
    case 'state':
      return { ok: true, result: { type: 'state', target_id: ipc.targetId, state: await dashboardState(deps) } };
    case 'events.subscribe':
    case 'logs.tail': {
      const params = request.params as Record<string, unknown> | null;
      if (params === null || typeof params !== 'object' || params.session_established !== true) {
        return {
          ok: false,
          error: dashboardError(
            'session_required',
            'subscription',
            ipc.targetId,
            'event and log subscription must be triggered by an established dashboard session',
          ),
        };
      }
      return {
        ok: true,
        result: {
          type: 'subscription',
          target_id: ipc.targetId,
          subscription: request.method === 'logs.tail' ? 'logs' : 'events',
        },
      };
    }
    default:
      return commandResult(request, deps);
  }
}

/** current_dashboard_state (ipc_server.rs:224-270), one control-loop round trip. */
async function dashboardState(deps: IpcServiceDeps) {
  const { ipc, config, runtime, loop } = deps;
  const current = await loop.request(() => runtime.currentState());
  const children = config.children;
  const node = (id: string | null, criticality = 'critical') => ({
    node_id: id === null ? '/' : `/${id}`,
    child_id: id,
    path: id === null ? '/' : `/${id}`,
    name: id ?? 'root supervisor',
    kind: id === null ? 'root_supervisor' : 'child_task',
    tags: [] as string[],
    criticality,
    state_summary: id === null ? 'root' : 'declared',
    diagnostics: {},
  });
  const childNodes = children.map((c) => ({
    ...node(c.name, c.criticality === 'critical' ? 'critical' : 'standard'),
    tags: c.tags,
  }));
  return {
    target: {
      target_id: ipc.targetId,
      display_name: ipc.registration?.displayName ?? ipc.targetId,
      registration_state: 'active',
      connection_state: 'registered',
    },
    topology: {
      root: node(null),
      nodes: [node(null), ...childNodes],
      edges: children.map((c, i) => ({
        edge_id: `parent:/->/${c.name}`,
        source_path: '/',
        target_path: `/${c.name}`,
        kind: 'parent_child',
        order: i,
      })),
      declaration_order: ['/', ...children.map((c) => `/${c.name}`)],
    },
    runtime_state: current.records.map((r) => ({
      child_path: r.child_path,
      lifecycle_state: r.managed_child_state,
      health: r.liveness.heartbeat_stale ? 'stale' : 'healthy',
      readiness: r.liveness.readiness,
      generation: r.generation ?? 0,
      child_start_count: r.attempt ?? 0,
      restart_count: r.restart_limit.used,
      last_failure: r.failure?.reason ?? null,
      last_policy_decision: `restart_limit_remaining=${r.restart_limit.remaining}`,
      shutdown_state: current.shutdownCompleted ? 'completed' : 'running',
    })),
    child_runtime_records: current.records,
    recent_events: [],
    recent_logs: [],
    dropped_event_count: 0,
    dropped_log_count: 0,
    config_version: configVersion(config),
    generated_at_unix_nanos: deps.generatedAt,
    state_generation: 1,
  };
}

/** command_result (ipc_server.rs:281-335): validation here, execution through the control loop. */
async function commandResult(request: ParsedRequest, deps: IpcServiceDeps): Promise<Answer> {
  const decoded = decodeCommandParams(request.params);
  if (!decoded.ok) return decoded;
  const cmd = decoded.command;
  const invalid = (msg: string, target: string): Answer => ({
    ok: false,
    error: dashboardError('validation_failed', 'command_validate', target, msg),
  });
  if (cmd.reason.trim() === '') return invalid('command reason must not be empty', cmd.target_id);
  if (cmd.requested_by.trim() === '') return invalid('requested_by must be derived by relay', cmd.target_id);
  if (CONFIRMATION_REQUIRED.has(cmd.command) && !cmd.confirmed)
    return invalid('dangerous command requires confirmation', cmd.target_id);
  if (cmd.target_id !== deps.ipc.targetId) return invalid('command target_id must match target process', deps.ipc.targetId);
  let delta: unknown;
  let error: DashboardError | null = null;
  try {
    delta = await execute(cmd, deps);
  } catch (err) {
    if (err instanceof ChildPathMissing) error = err.error;
    else if (err instanceof SupervisorError)
      error = dashboardError('command_failed', 'command_dispatch', cmd.target_id, err.message, true);
    else throw err;
  }
  return {
    ok: true,
    result: {
      type: 'command_result',
      target_id: cmd.target_id,
      result: {
        command_id: cmd.command_id,
        target_id: cmd.target_id,
        accepted: error === null,
        status: error === null ? 'completed' : 'failed',
        error,
        // serde_json::Value: maps are sorted by key (model.rs:865).
        state_delta: error === null ? sortKeys(delta) : null,
        completed_at_unix_nanos: deps.runtime.now(),
      },
    },
  };
}

class ChildPathMissing extends Error {
  constructor(readonly error: DashboardError) {
    super(error.message);
  }
}

/** execute_command (ipc_server.rs:509-564) → handle → control loop. */
async function execute(cmd: CommandRequest, deps: IpcServiceDeps): Promise<unknown> {
  const { loop, runtime } = deps;
  const child = (): string => {
    const path = cmd.target.child_path;
    if (path === null)
      throw new ChildPathMissing(
        dashboardError('validation_failed', 'command_validate', cmd.target_id, 'child_path is required for child command'),
      );
    return lastSegment(path) ?? path;
  };
  switch (cmd.command) {
    case 'restart_child': {
      const id = child();
      return loop.request(() => runtime.restartChild(id));
    }
    case 'pause_child': {
      const id = child();
      return loop.request(() => runtime.stopChild(id, 'paused'));
    }
    case 'quarantine_child': {
      const id = child();
      return loop.request(() => runtime.stopChild(id, 'quarantined'));
    }
    case 'remove_child': {
      const id = child();
      return loop.request(() => runtime.stopChild(id, 'removed'));
    }
    case 'resume_child': {
      const id = child();
      return loop.request(() => runtime.resumeChild(id));
    }
    case 'add_child':
      return loop.request(() => runtime.addChild(cmd.target.child_manifest ?? ''));
    case 'shutdown_tree':
      return loop.request(async () => ({ type: 'shutdown', result: await runtime.shutdownTree(cmd.requested_by, cmd.reason) }));
  }
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v !== null && typeof v === 'object' && typeof v !== 'bigint') {
    return Object.fromEntries(
      Object.keys(v)
        .sort()
        .map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]),
    );
  }
  return v;
}
