import { stat } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';
import { z } from 'zod';
import { DurationText, formatDuration, parseDuration } from '../duration.js';
import { renderCommand } from '../template.js';
import { KILL_GRACE_MS, spawnGuarded, thisHost } from './process-guard.js';
import { ActionError, OUTPUT_LIMIT, type Action, type ActionResult } from './types.js';

export const ExecSpec = z.strictObject({
  /** argv: the program and its arguments. Never a shell string; each element is one argument. */
  command: z.array(z.string().min(1)).min(1),
  /** One attempt may take this long; the process gets SIGTERM, then SIGKILL 2 s later. */
  timeout: DurationText.optional(),
  /** Working directory. */
  cwd: z.string().min(1).optional(),
  /** Extra environment for the child (added to remediator's). */
  env: z.record(z.string(), z.string()).optional(),
  /** Exit codes that count as succeeded (default [0]). */
  okExitCodes: z.array(z.number().int()).min(1).optional(),
});
export type ExecSpec = z.infer<typeof ExecSpec>;

export { KILL_GRACE_MS } from './process-guard.js';

/**
 * Runs a program with an argv array: no shell, so `;`, `$(…)` and backticks in arguments are just text.
 * The child leads its own process group under a guard (process-guard.ts): timeouts and aborts signal the whole
 * group, so a script's own children go too, and the group dies with the worker (SIGKILL, OOM) instead of running on
 * beside the attempt a takeover starts. stdout and stderr are captured interleaved, in arrival order, and capped.
 *
 * - exits with a code in okExitCodes (default [0]): succeeded; any other code, a signal, or the spec's timeout: failed.
 * - the program cannot be started (not found, not executable): ActionError, not retryable.
 * - ctx.signal aborts: the group gets SIGTERM (SIGKILL 2 s later if still there) and run rejects at once with an
 *   ActionError (not retryable; the engine that aborted decides what happens next).
 */
export const exec: Action<ExecSpec> = {
  kind: 'exec',
  spec: ExecSpec,
  describe: (s) => `${s.command.map(quoteArg).join(' ')}${s.timeout !== undefined ? ` (timeout ${s.timeout})` : ''}`,
  timeoutMs: (s) => (s.timeout !== undefined ? parseDuration(s.timeout) : undefined),
  // renderCommand: each element one argument for the argv sink; an element that is exactly a list var splices it.
  // env values are templated too (e.g. a token from `{{ env.X }}`); cwd is not (the loader refuses a template there).
  render: (s, r) => ({
    ...s,
    command: renderCommand(r, s.command),
    ...(s.env !== undefined ? { env: Object.fromEntries(Object.entries(s.env).map(([k, v]) => [k, r(v, 'env')])) } : {}),
  }),
  run(s, ctx) {
    const program = s.command[0]!;
    const okCodes = s.okExitCodes ?? [0];
    const timeoutMs = s.timeout !== undefined ? parseDuration(s.timeout) : undefined;
    if (ctx.signal.aborted) return Promise.reject(aborted(program, ctx.signal));
    // The guard enforces the attempt's end by itself (the spec's timeout, else the step's deadline), even with no
    // worker left; the spec's timeout is also reported as this attempt's result.
    const hardMs = Math.max(
      1,
      Math.min(timeoutMs ?? Infinity, ctx.deadline !== undefined ? ctx.deadline - Date.now() : Infinity, 24 * 3_600_000),
    );

    return new Promise<ActionResult>((resolve, reject) => {
      const child = spawnGuarded({
        argv: s.command,
        ...(s.cwd !== undefined ? { cwd: s.cwd } : {}),
        env: { ...inheritedEnv(), ...s.env },
        timeoutMs: hardMs,
      });
      const output = new CappedText(OUTPUT_LIMIT);
      const decoders = [new StringDecoder('utf8'), new StringDecoder('utf8')] as const;
      child.onOutput((chunk, stream) => output.push(decoders[stream].write(chunk)));

      let settled = false;
      function settle(): void {
        settled = true;
        ctx.signal.removeEventListener('abort', onAbort);
      }
      function onAbort(): void {
        if (settled) return;
        settle();
        child.terminate(); // the launcher stops the group (SIGKILL after the grace) and shutdown waits for it
        reject(aborted(program, ctx.signal));
      }
      ctx.signal.addEventListener('abort', onAbort, { once: true });

      void child.started.then(async (started) => {
        if ('error' in started) {
          if (settled) return;
          settle();
          const err = Object.assign(new Error(started.error), { code: started.error }) as NodeJS.ErrnoException;
          startError(program, s.cwd, err).then(reject, reject);
          return;
        }
        // What runs goes into the checkpoint, so a takeover can fence it (process-guard.ts).
        await ctx
          .track?.({
            host: thisHost(),
            pid: started.pid,
            pgid: started.pid,
            startTime: started.start,
            ...(child.guardPid !== undefined ? { guardPid: child.guardPid } : {}),
            deadline: Date.now() + hardMs + KILL_GRACE_MS,
          })
          .catch((err: Error) => ctx.log.warn({ err: err.message }, 'could not record the running command'));
      });

      // The command's end, its output read (the launcher waits a short grace for pipes a daemon it started holds open).
      void child.exited.then(({ code, signal: sig, timedOut: guardTimedOut, dropped }) => {
        if (settled) return;
        for (const d of decoders) output.push(d.end());
        output.uncounted(dropped);
        finish(code, sig, guardTimedOut);
      });

      function finish(code: number | null, sig: NodeJS.Signals | null, guardTimedOut: boolean): void {
        if (settled) return;
        settle();
        const timedOut = guardTimedOut && timeoutMs !== undefined && timeoutMs <= hardMs;
        const ok = code !== null && okCodes.includes(code);
        const why = timedOut
          ? `[timed out after ${formatDuration(timeoutMs)}; killed with ${sig ?? 'SIGTERM'}]`
          : sig !== null
            ? `[killed by ${sig}]`
            : code === null
              ? '[the process launcher ended unexpectedly]'
              : undefined;
        resolve({
          status: ok && !guardTimedOut ? 'succeeded' : 'failed',
          ...(code !== null ? { exitCode: code } : {}),
          output: output.text(why),
          detail: { ...(sig !== null ? { signal: sig } : {}), ...(timedOut ? { timedOut: true } : {}) },
        });
      }
    });
  },
};

function aborted(program: string, signal: AbortSignal): ActionError {
  return new ActionError(`exec of ${program} aborted`, false, { cause: signal.reason });
}

/** Why a program could not be started, naming it (never its arguments or environment: they may hold secrets). */
async function startError(program: string, cwd: string | undefined, err: NodeJS.ErrnoException): Promise<ActionError> {
  if (err.code === 'ENOENT') {
    // spawn says ENOENT for a missing working directory too.
    if (
      cwd !== undefined &&
      !(await stat(cwd).then(
        (st) => st.isDirectory(),
        () => false,
      ))
    ) {
      return new ActionError(`exec: working directory ${cwd} does not exist`, false, { cause: err });
    }
    return new ActionError(`exec: program ${JSON.stringify(program)} not found (ENOENT); is it installed and on PATH?`, false, {
      cause: err,
    });
  }
  if (err.code === 'EACCES')
    return new ActionError(`exec: program ${JSON.stringify(program)} is not executable (EACCES)`, false, { cause: err });
  // EAGAIN, EMFILE, ENOMEM: the system is short of something; another attempt may well work.
  return new ActionError(`exec: could not start ${JSON.stringify(program)}: ${err.code ?? err.message}`, true, { cause: err });
}

/** Keeps the first `limit` characters and counts the rest: the same text as capOutput(all), in bounded memory. */
class CappedText {
  private kept = '';
  private total = 0;
  constructor(private readonly limit: number) {}
  /** Output the launcher only counted (bytes past its cap): part of the total cut. */
  uncounted(n: number): void {
    this.total += n;
  }
  push(text: string): void {
    this.total += text.length;
    if (this.kept.length < this.limit) this.kept += text.slice(0, this.limit - this.kept.length);
  }
  text(note?: string): string {
    const body = this.total > this.limit ? `${this.kept}\n…[truncated ${this.total - this.limit} characters]` : this.kept;
    if (note === undefined) return body;
    return body === '' || body.endsWith('\n') ? `${body}${note}` : `${body}\n${note}`;
  }
}

/** One argv element, readable and on one line: plain when safe, JSON-quoted otherwise. */
function quoteArg(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : JSON.stringify(arg);
}

/**
 * What an exec child inherits from remediator's environment: an allow-list, never "everything but our secrets"
 * (a new secret variable, REDIS_*, a cloud credential, would otherwise leak through a diagnostic script that dumps
 * its environment into a run record). The program search path, home, user, locale, time zone, temp dir, terminal,
 * and where a Kubernetes client finds its cluster. More names: EXEC_ENV_ALLOW (comma-separated). Anything else a
 * command needs, the rule passes through `env:` (e.g. `TOKEN: "{{ env.X }}"`, redacted from run records).
 */
export const INHERITED_ENV = [
  'PATH',
  'HOME',
  'USER',
  'LOGNAME',
  'SHELL',
  'LANG',
  'LANGUAGE',
  'TZ',
  'TMPDIR',
  'TERM',
  'KUBECONFIG',
  'KUBERNETES_SERVICE_HOST',
  'KUBERNETES_SERVICE_PORT',
] as const;

/** The child's base environment: the allow-list (and LC_*), plus EXEC_ENV_ALLOW's names. */
export function inheritedEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const extra = allowedExtra(env);
  if (env !== process.env) return buildInherited(env, extra);
  // Listing the whole environment for every command was an eighth of a worker's CPU: kept while the values of the
  // allowed names (and EXEC_ENV_ALLOW) stay the same; LC_* names are those present when it was built.
  const key = [env.EXEC_ENV_ALLOW ?? '', ...[...INHERITED_ENV, ...extra].map((n) => env[n] ?? '\u0000')].join('\u0001');
  if (inherited?.key !== key) inherited = { key, env: buildInherited(env, extra) };
  return { ...inherited.env };
}

let inherited: { key: string; env: NodeJS.ProcessEnv } | undefined;

function allowedExtra(env: NodeJS.ProcessEnv): string[] {
  return (env.EXEC_ENV_ALLOW ?? '')
    .split(',')
    .map((n) => n.trim())
    .filter((n) => n !== '');
}

function buildInherited(env: NodeJS.ProcessEnv, extra: string[]): NodeJS.ProcessEnv {
  const allowed = new Set<string>([...INHERITED_ENV, ...extra]);
  return Object.fromEntries(
    Object.entries(env).filter(([name, value]) => value !== undefined && (allowed.has(name) || /^LC_[A-Z]+$/.test(name))),
  );
}
