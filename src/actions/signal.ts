import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { findByComm, ProcfsError } from '../procfs.js';
import { ActionError, capOutput, type Action } from './types.js';

export const SignalSpec = z
  .strictObject({
    /** Exact process name (as `pgrep -x`): every process of that name gets the signal. */
    process: z.string().min(1).optional(),
    /** A file holding the pid. */
    pidFile: z.string().min(1).optional(),
    signal: z.enum(['SIGTERM', 'SIGKILL', 'SIGHUP', 'SIGINT', 'SIGUSR1', 'SIGUSR2', 'SIGQUIT']),
  })
  .refine((s) => (s.process === undefined) !== (s.pidFile === undefined), {
    message: 'exactly one of process or pidFile must be set',
  });
export type SignalSpec = z.infer<typeof SignalSpec>;

/**
 * Sends a signal to processes found by exact name, or to the pid in a pid file.
 *
 * Finding by name reads /proc like `pgrep -x`: a process matches when its comm equals the name, or, for names
 * longer than comm holds, when comm is the name's first 15 characters and argv[0]'s basename is the whole name.
 * Zombies, pid 1 and remediator itself are never signalled.
 *
 * No such process, a stale or malformed pid file, or no permission: a failed result saying so (the target is in
 * a state worth recording, not the action broken). /proc or the pid file unreadable: ActionError.
 */
export const signal: Action<SignalSpec> = {
  kind: 'signal',
  spec: SignalSpec,
  describe: (s) =>
    `${s.signal} → ${s.process !== undefined ? `process ${JSON.stringify(s.process)}` : `pid file ${JSON.stringify(s.pidFile)}`}`,
  render: (s, r) => ({
    ...s,
    ...(s.process !== undefined ? { process: r(s.process, 'argv') } : {}),
    ...(s.pidFile !== undefined ? { pidFile: r(s.pidFile, 'path') } : {}),
  }),
  async run(s, ctx) {
    ctx.signal.throwIfAborted();
    let targets: number[];
    if (s.pidFile !== undefined) {
      const read = await pidFromFile(s.pidFile);
      if ('problem' in read) return { status: 'failed', output: read.problem, detail: { pids: [] } };
      targets = [read.pid];
    } else {
      targets = await findByName(s.process!);
      if (targets.length === 0) {
        return {
          status: 'failed',
          output: `no process named ${JSON.stringify(s.process)} found; nothing signalled`,
          detail: { pids: [] },
        };
      }
    }
    // Found, but the engine gave up meanwhile: do not signal.
    if (ctx.signal.aborted)
      throw new ActionError(`signal ${s.signal} aborted before sending`, false, { cause: ctx.signal.reason });

    const who = (pids: number[]): string =>
      s.pidFile !== undefined
        ? `pid ${pids.join(', ')} (from ${s.pidFile})`
        : `${s.process} (${pids.length === 1 ? 'pid' : 'pids'} ${pids.join(', ')})`;
    const sent: number[] = [];
    const problems: string[] = [];
    for (const pid of targets) {
      if (!safeTarget(pid)) {
        problems.push(`refusing to signal pid ${pid}`);
        continue;
      }
      try {
        process.kill(pid, s.signal);
        sent.push(pid);
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        problems.push(
          code === 'ESRCH'
            ? `pid ${pid} no longer exists`
            : code === 'EPERM'
              ? `no permission to signal pid ${pid}`
              : `pid ${pid}: ${code ?? String(err)}`,
        );
      }
    }
    ctx.log.info({ signal: s.signal, pids: sent, problems }, 'signal sent');

    const lines = [sent.length > 0 ? `${s.signal} sent to ${who(sent)}` : `${s.signal} not sent to ${who(targets)}`, ...problems];
    return {
      status: sent.length > 0 ? 'succeeded' : 'failed',
      output: capOutput(lines.join('\n')),
      detail: { pids: sent },
    };
  },
};

function safeTarget(pid: number): boolean {
  return Number.isSafeInteger(pid) && pid > 1 && pid !== process.pid;
}

async function pidFromFile(path: string): Promise<{ pid: number } | { problem: string }> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { problem: `pid file ${path} does not exist; nothing signalled` };
    throw new ActionError(`signal: cannot read pid file ${path} (${code ?? 'error'})`, false, { cause: err });
  }
  const trimmed = text.trim();
  if (!/^\d{1,10}$/.test(trimmed)) {
    return { problem: `pid file ${path} does not hold a pid: ${JSON.stringify(trimmed.slice(0, 40))}; nothing signalled` };
  }
  const pid = Number(trimmed);
  if (!safeTarget(pid)) return { problem: `pid file ${path} names pid ${pid}, which is never signalled; nothing signalled` };
  return { pid };
}

/** Pids whose process name is exactly `name` (`pgrep -x`, see procfs.ts), in ascending order. */
export async function findByName(name: string): Promise<number[]> {
  try {
    return (await findByComm(name)).map((p) => p.pid).filter(safeTarget);
  } catch (err) {
    if (!(err instanceof ProcfsError)) throw err;
    throw new ActionError(`signal: ${err.message} (finding a process by name needs Linux /proc)`, false, { cause: err });
  }
}
