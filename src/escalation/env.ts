import { z } from 'zod';
import { TargetConfigError, type Env } from './types.js';

const HttpUrl = z.url({ protocol: /^https?$/ });

/** An http(s) URL from the environment, or undefined when unset; a bad value throws naming the variable (never the value: it may hold a token). */
export function urlFromEnv(env: Env, name: string): string | undefined {
  const raw = env[name];
  if (raw === undefined || raw === '') return undefined;
  if (!HttpUrl.safeParse(raw).success) throw new TargetConfigError(`${name}: expected an http(s) URL`);
  return raw;
}

/** Text cut to `max` characters, marked. */
export function cap(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}…[truncated]`;
}
