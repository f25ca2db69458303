import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { DurationText, parseDuration } from '../duration.js';
import type { Action } from './types.js';

export const WaitSpec = z.strictObject({
  duration: DurationText,
});
export type WaitSpec = z.infer<typeof WaitSpec>;

/** Waits; for "give it 5 s before looking". Aborts promptly. */
export const wait: Action<WaitSpec> = {
  kind: 'wait',
  spec: WaitSpec,
  describe: (s) => `wait ${s.duration}`,
  render: (s) => s,
  async run(s, ctx) {
    const ms = parseDuration(s.duration);
    await sleep(ms, undefined, { signal: ctx.signal });
    return { status: 'succeeded', output: `waited ${s.duration}` };
  },
};
