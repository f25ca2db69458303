/**
 * One scrape's measurements of one supervisor, taken when Prometheus asks (mysqld_exporter's "collect on
 * scrape"): the IPC `hello` and `state` (each bounded by its own timeout, both at once), the socket files
 * (stat only) and the processes (/proc). The result is plain data; `./series.ts` turns it into series and exports
 * only what was measured.
 *
 * Never a hung scrape: every IPC call has its own deadline (IPC_TIMEOUT, or less when Prometheus's scrape
 * timeout is shorter), the calls run in parallel, and file and /proc reads do not wait on the supervisor. A
 * control loop that does not turn therefore reads as `state` timed out within one scrape, while `hello`, which
 * the IPC task answers without the loop, still answers.
 *
 * The relay's registration socket is only ever stat()ed: a connection that does not register ends the relay's
 * registration loop for good (docs/supervisor.md). Nothing here connects to anything but the supervisor's own
 * IPC socket, and only through the one dashboard-ipc.v1 client.
 */
import { stat } from 'node:fs/promises';
import { findByCmdline, findByComm, type ProcessInfo } from '../procfs.js';
import type { IpcClient, IpcOutcome } from '../supervisor/ipc-client.js';
import { readHello, readState } from '../supervisor/results.js';
import type { DashboardState, IpcResponse, TargetProcessRegistration } from '../supervisor/schema.js';

/** The parts of a scrape, each timed and with its own error count (`supervisor_exporter_scrape_errors_total{stage}`). */
export const STAGES = ['ipc_socket', 'hello', 'state', 'process', 'relay_process', 'relay_registration'] as const;
export type Stage = (typeof STAGES)[number];

/** One IPC call as measured. */
export interface IpcCall {
  /** A well-formed answer line came back in time (ok or not). */
  answered: boolean;
  /** It answered `ok: true`. */
  ok: boolean;
  timedOut: boolean;
  seconds: number;
  /** The answer line exactly as the server wrote it (every digit of the `*_unix_nanos` values). */
  line?: string;
  response?: IpcResponse;
  /** Why there was no (good) answer, in words. */
  problem?: string;
}

export interface ProcessProbe {
  up: boolean;
  pids: number[];
  /** Unix seconds; of the earliest-started match. */
  startTimeSeconds?: number;
}

export interface Measurement {
  /** When the scrape began (Unix milliseconds). */
  at: number;
  /** The supervisor's IPC path exists and is a socket. Undefined: stat failed other than "not there". */
  ipcSocketPresent?: boolean;
  hello: IpcCall & { registration?: TargetProcessRegistration };
  state: IpcCall & { state?: DashboardState };
  /** Undefined when not looked for (SUPERVISOR_PROCESS unset) or /proc unreadable. */
  process?: ProcessProbe;
  relayProcess?: ProcessProbe;
  /** Undefined when not looked at (RELAY_REGISTRATION_PATH unset) or stat failed other than "not there". */
  relayRegistrationPresent?: boolean;
  /** The supervisor's ipc.target_id: configured, or learned from an answer. */
  targetId?: string;
  /** A stage that could not measure what it is for, with the reason. */
  errors: Partial<Record<Stage, string>>;
  stageSeconds: Partial<Record<Stage, number>>;
}

export interface CollectDeps {
  client: IpcClient;
  ipcPath: string;
  /** Per IPC call. */
  timeoutMs: number;
  supervisorProcess?: string;
  relayPattern?: RegExp;
  relayRegistrationPath?: string;
  /** Configured target id; else `learnedTargetId`. */
  targetId?: string;
  learnedTargetId?: string;
  procRoot?: string;
}

/** Takes one scrape's measurements. Never throws for what it measures; a bug still propagates. */
export async function collect(deps: CollectDeps): Promise<Measurement> {
  const at = Date.now();
  const errors: Measurement['errors'] = {};
  const stageSeconds: Measurement['stageSeconds'] = {};
  const timed = async <T>(stage: Stage, run: () => Promise<T>): Promise<T> => {
    const t0 = performance.now();
    try {
      return await run();
    } finally {
      stageSeconds[stage] = (performance.now() - t0) / 1000;
    }
  };

  const knownTarget = deps.targetId ?? deps.learnedTargetId;
  const [ipcSocketPresent, hello, state, proc, relayProcess, relayRegistrationPresent] = await Promise.all([
    timed('ipc_socket', () => isSocket(deps.ipcPath, (e) => (errors.ipc_socket = e))),
    timed('hello', () => callHello(deps)),
    timed('state', () => callState(deps, knownTarget)),
    deps.supervisorProcess === undefined
      ? undefined
      : timed('process', () =>
          probeProcesses(
            () => findByComm(deps.supervisorProcess!, { root: deps.procRoot }),
            (e) => (errors.process = e),
          ),
        ),
    deps.relayPattern === undefined
      ? undefined
      : timed('relay_process', () =>
          probeProcesses(
            () => findByCmdline(deps.relayPattern!, { root: deps.procRoot }),
            (e) => (errors.relay_process = e),
          ),
        ),
    deps.relayRegistrationPath === undefined
      ? undefined
      : timed('relay_registration', () => isSocket(deps.relayRegistrationPath!, (e) => (errors.relay_registration = e))),
  ]);

  if (!hello.answered || (hello.ok && hello.registration === undefined)) errors.hello = hello.problem ?? 'no hello';
  if (!state.ok || state.state === undefined) errors.state = state.problem ?? 'no state';

  // The target id: configured, else what the supervisor said (hello's registration, or the state answer).
  const answeredTarget = hello.registration?.target_id ?? state.state?.target.target_id;
  if (deps.targetId !== undefined && answeredTarget !== undefined && answeredTarget !== deps.targetId) {
    // Every command would be refused (ipc_server.rs: target_id must equal ipc.target_id).
    errors.hello = `the supervisor answers as target_id ${JSON.stringify(answeredTarget)}, but SUPERVISOR_TARGET_ID is ${JSON.stringify(deps.targetId)}`;
  }
  const targetId = deps.targetId ?? answeredTarget ?? deps.learnedTargetId;

  return {
    at,
    ...(ipcSocketPresent !== undefined ? { ipcSocketPresent } : {}),
    hello,
    state,
    ...(proc !== undefined ? { process: proc } : {}),
    ...(relayProcess !== undefined ? { relayProcess } : {}),
    ...(relayRegistrationPresent !== undefined ? { relayRegistrationPresent } : {}),
    ...(targetId !== undefined ? { targetId } : {}),
    errors,
    stageSeconds,
  };
}

async function callHello(deps: CollectDeps): Promise<Measurement['hello']> {
  const call = toCall(await deps.client.call('hello', {}, { timeoutMs: deps.timeoutMs }));
  if (!call.response?.ok) return call;
  try {
    return { ...call, registration: readHello(call.response).registration };
  } catch (err) {
    return { ...call, problem: (err as Error).message };
  }
}

async function callState(deps: CollectDeps, targetId: string | undefined): Promise<Measurement['state']> {
  // The server ignores state's params; the relay sends the target id, so do we when we know it.
  const params = targetId !== undefined ? { target_id: targetId } : {};
  const call = toCall(await deps.client.call('state', params, { timeoutMs: deps.timeoutMs }));
  if (!call.response?.ok) return call;
  try {
    return { ...call, state: readState(call.response).state };
  } catch (err) {
    return { ...call, problem: `state answer unreadable: ${(err as Error).message}` };
  }
}

function toCall(outcome: IpcOutcome): IpcCall {
  const seconds = outcome.elapsedMs / 1000;
  if (outcome.status === 'answered') {
    const { response, line } = outcome;
    const e = response.error;
    return {
      answered: true,
      ok: response.ok,
      timedOut: false,
      seconds,
      line,
      response,
      ...(response.ok ? {} : { problem: e ? `${e.code} at ${e.stage}: ${e.message}` : 'ok: false' }),
    };
  }
  return { answered: false, ok: false, timedOut: outcome.status === 'timed_out', seconds, problem: outcome.error.message };
}

/** stat() only. True: a socket is there; false: nothing, or not a socket; undefined: could not tell. */
async function isSocket(path: string, fail: (e: string) => void): Promise<boolean | undefined> {
  try {
    return (await stat(path)).isSocket();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return false;
    fail(`stat ${path}: ${code ?? String(err)}`);
    return undefined;
  }
}

async function probeProcesses(find: () => Promise<ProcessInfo[]>, fail: (e: string) => void): Promise<ProcessProbe | undefined> {
  try {
    const found = await find();
    const starts = found.map((p) => p.startTimeSeconds).filter((s): s is number => s !== undefined);
    return {
      up: found.length > 0,
      pids: found.map((p) => p.pid),
      ...(starts.length > 0 ? { startTimeSeconds: Math.min(...starts) } : {}),
    };
  } catch (err) {
    fail((err as Error).message);
    return undefined;
  }
}
