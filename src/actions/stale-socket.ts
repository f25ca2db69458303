import { lstat, unlink } from 'node:fs/promises';
import { z } from 'zod';
import { probeSocketListener } from '../supervisor/ipc-client.js';
import { isOperatorTemplate } from '../template.js';
import type { Action, ActionResult } from './types.js';

/** How long a connect to a Unix socket may take before its listener counts as live (a full backlog). */
const PROBE_TIMEOUT_MS = 1_000;

export const StaleSocketSpec = z.strictObject({
  /** The supervisor's `ipc.path` (`{{ vars.ipc_path }}`): operator values only, never an alert's. */
  path: z
    .string()
    .min(1)
    .refine(isOperatorTemplate, 'the socket path comes from vars or env only (operator values), never from an alert'),
});
export type StaleSocketSpec = z.infer<typeof StaleSocketSpec>;

/**
 * Removes a STALE socket file at the supervisor's `ipc.path`, the way rust-tokio-supervisor's own
 * `bind_mode: replace_stale` does (ipc_server.rs:371-430): a socket nobody listens on (connect refused) is
 * unlinked; a live one (the connect is accepted), a symlink or anything that is not a socket is left alone and the
 * result is `failed`, with the real program's words. A SIGKILLed supervisor leaves its socket behind, and under the
 * default `bind_mode: create_new` the next start then fails with `IPC path already exists`: this clears the way
 * without ever taking a live process's socket.
 *
 * The probe connects and closes at once, to the supervisor's OWN IPC socket (which serves one request per line
 * until EOF); it must never be pointed at the relay's registration socket, where a connection without a
 * registration ends the relay's registration loop. No file: `succeeded`, nothing to do.
 *
 * Rule form: `action: { staleSocket: { path: "{{ vars.ipc_path }}" } }`.
 */
export const staleSocket: Action<StaleSocketSpec> = {
  kind: 'staleSocket',
  spec: StaleSocketSpec,
  describe: (s) => `remove ${s.path} if it is a stale socket (nobody listening)`,
  timeoutMs: () => PROBE_TIMEOUT_MS + 1_000,
  render: (s, r) => ({ path: r(s.path, 'path') }),
  async run(s, ctx): Promise<ActionResult> {
    ctx.signal.throwIfAborted();
    const path = s.path;
    const result = (status: ActionResult['status'], output: string, state: string): ActionResult => ({
      status,
      output,
      detail: { path, state },
    });
    let kind: string;
    try {
      const st = await lstat(path);
      kind = st.isSocket() ? 'socket' : st.isSymbolicLink() ? 'symlink' : st.isDirectory() ? 'directory' : 'not a socket';
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT')
        return result('succeeded', `no file at ${path}: nothing stale`, 'absent');
      throw err;
    }
    if (kind !== 'socket')
      return result('failed', `IPC path ${path} is a ${kind}, not a socket: left alone`, kind.replace(/ /g, '_'));
    const probe = await probeSocketListener(path, ctx.signal, PROBE_TIMEOUT_MS);
    if (probe === 'gone') return result('succeeded', `no file at ${path}: nothing stale`, 'absent');
    if (probe === 'live') return result('failed', `IPC path is served by a live process: ${path} left alone`, 'live');
    ctx.signal.throwIfAborted();
    try {
      await unlink(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    ctx.log.info({ path }, 'removed a stale IPC socket');
    return result('succeeded', `removed stale socket ${path} (connection refused: no process serves it)`, 'removed');
  },
};
