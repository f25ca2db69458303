import { z } from 'zod';
import { ActionError, type Action } from './types.js';

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

/** STUB: implementation in progress. */
export const signal: Action<SignalSpec> = {
  kind: 'signal',
  spec: SignalSpec,
  describe: (s) => `${s.signal} → ${s.process !== undefined ? `process ${s.process}` : `pid file ${s.pidFile}`}`,
  render: (s, r) => ({
    ...s,
    ...(s.process !== undefined ? { process: r(s.process, 'argv') } : {}),
    ...(s.pidFile !== undefined ? { pidFile: r(s.pidFile, 'path') } : {}),
  }),
  run() {
    return Promise.reject(new ActionError('signal not implemented yet', false));
  },
};
