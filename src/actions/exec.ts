import { z } from 'zod';
import { isDuration } from '../duration.js';
import { ActionError, type Action } from './types.js';

export const ExecSpec = z.strictObject({
  /** argv: the program and its arguments. Never a shell string; each element is one argument. */
  command: z.array(z.string().min(1)).min(1),
  /** One attempt may take this long; the process gets SIGTERM, then SIGKILL 2 s later. */
  timeout: z.string().refine(isDuration, 'expected a duration like 30s').optional(),
  /** Working directory. */
  cwd: z.string().min(1).optional(),
  /** Extra environment for the child (added to remediator's). */
  env: z.record(z.string(), z.string()).optional(),
  /** Exit codes that count as succeeded (default [0]). */
  okExitCodes: z.array(z.number().int()).min(1).optional(),
});
export type ExecSpec = z.infer<typeof ExecSpec>;

/** STUB: implementation in progress. */
export const exec: Action<ExecSpec> = {
  kind: 'exec',
  spec: ExecSpec,
  describe: (s) => s.command.join(' '),
  render: (s, r) => ({ ...s, command: s.command.map((a) => r(a, 'argv')) }),
  run() {
    return Promise.reject(new ActionError('exec not implemented yet', false));
  },
};
