/**
 * `remediator ipc <method> [options]`: one dashboard-ipc.v1 exchange from a shell, e.g. inside the exporter
 * sidecar where a Kubernetes `execInPod` step runs it. It is the `ipc` action run once, so the request is exactly
 * what a rule's `ipc` step sends (every required command field filled, the child checked as one path segment,
 * the advertised command timeout).
 *
 * Prints one JSON line on stdout: the answer line exactly as the supervisor wrote it, or
 * `{"error":{"message","retryable","timedOut"}}` when there was no answer. Exit codes: 0 answered `ok: true`
 * (and, for a command, `accepted: true`); 1 answered otherwise; 2 no answer within the timeout; 3 no answer at
 * all (no socket, refused, unreadable); 64 a usage error.
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { IpcSpec, prepareIpcRequest, toResult } from './actions/ipc.js';
import { ActionError } from './actions/types.js';
import { silentLogger } from './log.js';
import { createIpcClient } from './supervisor/ipc-client.js';
import { commandKindOf, COMMAND_KINDS } from './supervisor/protocol.js';
import { readHello } from './supervisor/results.js';

export const IPC_USAGE = `Usage: remediator ipc <method> [options]

  method     hello | state | ${COMMAND_KINDS.join(' | ')}
             (or command.<kind>, the wire name)
             snapshot: not an IPC method: the exporter's last hello and last good state (its GET /snapshot),
             for when the control loop is too starved to answer state

Options:
  --path PATH         the supervisor's ipc.path socket (default: $SUPERVISOR_IPC_PATH)
  --target-id ID      the supervisor's ipc.target_id (default: $SUPERVISOR_TARGET_ID, else hello's answer)
  --child ID          the child of a child command (one path segment)
  --confirmed         send confirmed: true (needed by remove_child, add_child, shutdown_tree)
  --manifest FILE     add_child: the child's YAML declaration ("-" reads stdin)
  --reason TEXT       words for the command's reason
  --timeout DURATION  default: the supervisor's advertised command timeout (30s), 5s for hello and state
  --exporter URL      snapshot: the exporter (default http://127.0.0.1:$EXPORTER_PORT, port 9466)

Prints the answer line; exit 0 ok (and accepted), 1 answered otherwise, 2 timed out, 3 no answer, 64 usage.`;

export interface IpcCommandIo {
  env: NodeJS.ProcessEnv;
  stdout: (line: string) => void;
  stderr: (line: string) => void;
  readStdin?: () => string;
  signal?: AbortSignal;
}

export async function runIpcCommand(argv: string[], io: IpcCommandIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        path: { type: 'string' },
        'target-id': { type: 'string' },
        child: { type: 'string' },
        confirmed: { type: 'boolean' },
        manifest: { type: 'string' },
        reason: { type: 'string' },
        timeout: { type: 'string' },
        exporter: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (err) {
    io.stderr(`${(err as Error).message}\n\n${IPC_USAGE}`);
    return 64;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    io.stdout(IPC_USAGE);
    return 0;
  }
  if (positionals.length !== 1) {
    io.stderr(`remediator ipc needs exactly one method\n\n${IPC_USAGE}`);
    return 64;
  }
  const raw = positionals[0]!;
  if (raw === 'snapshot') return snapshot(values.exporter ?? `http://127.0.0.1:${io.env.EXPORTER_PORT || '9466'}`, io);
  const method = raw === 'hello' || raw === 'state' || raw.startsWith('command.') ? raw : `command.${raw}`;
  const path = values.path ?? io.env.SUPERVISOR_IPC_PATH;
  if (path === undefined || path === '') {
    io.stderr('remediator ipc: give --path or set SUPERVISOR_IPC_PATH');
    return 64;
  }
  let targetId = values['target-id'] ?? (io.env.SUPERVISOR_TARGET_ID || undefined);
  if (targetId === undefined && commandKindOf(method) !== undefined) {
    // The supervisor says who it is in hello (without going through its control loop).
    const hello = await createIpcClient({ path, timeoutMs: 2000 }).call('hello', {}, { signal: io.signal });
    if (hello.status === 'answered' && hello.response.ok) targetId = readHello(hello.response).registration.target_id;
    else {
      io.stderr('remediator ipc: no target id: give --target-id or set SUPERVISOR_TARGET_ID (hello did not say it)');
      return 64;
    }
  }
  let manifest: string | undefined;
  if (values.manifest !== undefined) {
    manifest =
      values.manifest === '-' ? (io.readStdin ?? (() => readFileSync(0, 'utf8')))() : readFileSync(values.manifest, 'utf8');
  }
  const spec = IpcSpec.safeParse({
    path,
    method,
    ...(targetId !== undefined ? { target_id: targetId } : {}),
    ...(values.child !== undefined ? { child: values.child } : {}),
    ...(values.confirmed ? { confirmed: true } : {}),
    ...(manifest !== undefined ? { manifest } : {}),
    ...(values.reason !== undefined ? { reason: values.reason } : {}),
    ...(values.timeout !== undefined ? { timeout: values.timeout } : {}),
  });
  if (!spec.success) {
    for (const i of spec.error.issues) io.stderr(`remediator ipc: ${i.path.join('.') || method}: ${i.message}`);
    return 64;
  }
  const client = createIpcClient({ path });
  const signal = io.signal ?? new AbortController().signal;
  const noAnswer = (message: string, retryable: boolean, timedOut: boolean) =>
    io.stdout(JSON.stringify({ error: { message, retryable, timedOut } }));
  try {
    const request = await prepareIpcRequest(spec.data, { signal, log: silentLogger }, client);
    if ('notSent' in request) {
      io.stderr(`remediator ipc: not sent: ${request.notSent}`);
      return 64;
    }
    const outcome = await client.call(method, request.params, { signal, timeoutMs: request.timeoutMs });
    if (outcome.status === 'timed_out') {
      noAnswer(outcome.error.message, true, true);
      return 2;
    }
    if (outcome.status === 'failed') {
      noAnswer(outcome.error.message, outcome.retryable, false);
      return 3;
    }
    // The whole line, as the supervisor wrote it (the action's output is capped; this is not).
    io.stdout(outcome.line);
    return toResult(method, outcome, request.timeoutMs).status === 'succeeded' ? 0 : 1;
  } catch (err) {
    if (!(err instanceof ActionError)) throw err;
    noAnswer(err.message, err.retryable, false);
    return 3;
  }
}

/** `remediator ipc snapshot`: prints the exporter's /snapshot (exit 0), or `{"error":…}` and exit 3. */
async function snapshot(base: string, io: IpcCommandIo): Promise<number> {
  try {
    const res = await fetch(`${base.replace(/\/+$/, '')}/snapshot`, {
      signal: AbortSignal.any([AbortSignal.timeout(5000), ...(io.signal ? [io.signal] : [])]),
    });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    io.stdout((await res.text()).trimEnd());
    return 0;
  } catch (err) {
    io.stdout(
      JSON.stringify({
        error: { message: `exporter snapshot at ${base}: ${(err as Error).message}`, retryable: true, timedOut: false },
      }),
    );
    return 3;
  }
}
