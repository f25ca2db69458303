import { lstat } from 'node:fs/promises';
import { z } from 'zod';
import { isOperatorTemplate } from '../template.js';
import { CheckUnavailableError, type Check } from './types.js';

export const SocketCheckSpec = z.strictObject({
  /** The path (`{{ vars.relay_registration_path }}`): operator values only, never an alert's. */
  socket: z
    .string()
    .min(1)
    .refine(isOperatorTemplate, 'the socket path comes from vars or env only (operator values), never from an alert'),
  /** Expect a socket there (default) or nothing that is a socket (`present: false`). */
  present: z.boolean().default(true),
});
export type SocketCheckSpec = z.infer<typeof SocketCheckSpec>;

/**
 * Whether a Unix socket file exists at a path, by `lstat` ONLY: it never connects. That is the one safe way to look
 * at rust-supervisor-relay's registration socket, where a connection that does not register ends the relay's
 * registration loop for good; and it works without Prometheus or the exporter (remediator on the supervisor's host).
 * A socket file says a process bound it, not that one still serves it: pair it with an `ipc` check or the
 * process's own signal where that matters.
 *
 * Rule form: `expect: { socket: "{{ vars.relay_registration_path }}", within: 30s }` (`present: false` for gone).
 */
export const socket: Check<SocketCheckSpec> = {
  kind: 'socket',
  key: 'socket',
  spec: SocketCheckSpec,
  describe: (s) => `${s.present ? 'a socket at' : 'no socket at'} ${s.socket} (stat only)`,
  render: (s, r) => ({ ...s, socket: r(s.socket, 'path') }),
  async evaluate(s, ctx) {
    ctx.signal.throwIfAborted();
    let kind: string;
    try {
      const st = await lstat(s.socket);
      kind = st.isSocket() ? 'socket' : st.isSymbolicLink() ? 'symlink' : st.isDirectory() ? 'directory' : 'file';
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR') kind = 'absent';
      else throw new CheckUnavailableError(`socket check: cannot stat (${code ?? 'error'})`, { cause: err, retryable: false });
    }
    ctx.signal.throwIfAborted();
    const isSocket = kind === 'socket';
    const observed = [{ labels: { path: s.socket, kind }, value: isSocket ? 1 : 0, at: new Date().toISOString() }];
    const holds = isSocket === s.present;
    const seen = kind === 'absent' ? 'nothing' : `a ${kind}`;
    return {
      holds,
      observed,
      reason: holds ? `${seen} at ${s.socket}` : `${seen} at ${s.socket}, expected ${s.present ? 'a socket' : 'no socket'}`,
    };
  },
};
