import { z } from 'zod';
import { isDuration } from '../duration.js';
import { ActionError, type Action } from './types.js';

export const HttpSpec = z.strictObject({
  method: z.enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD']).default('POST'),
  /** Templated; alert values are percent-encoded so they cannot leave their path segment or query value. */
  url: z.string().min(1),
  headers: z.record(z.string(), z.string()).optional(),
  /** JSON body (strings inside are templated as text; JSON encoding escapes them). */
  body: z.unknown().optional(),
  timeout: z.string().refine(isDuration, 'expected a duration like 10s').optional(),
  /** HTTP statuses that count as succeeded (default: any 2xx). */
  okStatus: z.array(z.number().int().min(100).max(599)).min(1).optional(),
});
export type HttpSpec = z.infer<typeof HttpSpec>;

/** STUB: implementation in progress. */
export const http: Action<HttpSpec> = {
  kind: 'http',
  spec: HttpSpec,
  describe: (s) => `${s.method} ${s.url}`,
  render: (s) => s,
  run() {
    return Promise.reject(new ActionError('http not implemented yet', false));
  },
};
