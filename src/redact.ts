/**
 * Values from `{{ env.X }}` are the operator's secrets (tokens, passwords): an action gets them, nothing remediator
 * stores or sends about the run does. Run records (and so the API and the console) and escalation notices go through
 * a redactor that replaces every value of an env variable the procedure's templates name, in every form it may have
 * been written in (as is, JSON-, PromQL- or URL-encoded), with `[redacted env.X]`: also where an action echoed it
 * into its output or an error message. Values shorter than 4 characters are not secrets worth the damage replacing
 * them everywhere would do, and are left alone.
 */
import { escapePromqlString } from './template.js';

const ENV_HOLE = /\{\{\s*env\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;
export const MIN_SECRET_LENGTH = 4;

export type Redactor = <T>(value: T) => T;

/** The env variables a procedure's templates name (its steps, checks, escalations: the whole rule as JSON). */
function envNames(procedure: object): string[] {
  return [...new Set([...JSON.stringify(procedure).matchAll(ENV_HOLE)].map((m) => m[1]!))];
}

const cache = new WeakMap<object, string[]>();

/** The redactor for one procedure's runs, with the environment its templates are filled from. */
export function envRedactor(procedure: object, env: Readonly<Record<string, string | undefined>>): Redactor {
  let names = cache.get(procedure);
  if (names === undefined) {
    names = envNames(procedure);
    cache.set(procedure, names);
  }
  const secrets = names.flatMap((name) => {
    const value = env[name];
    return value !== undefined && value.length >= MIN_SECRET_LENGTH ? [{ name, value }] : [];
  });
  return createRedactor(secrets);
}

function forms(value: string): string[] {
  let url = value;
  try {
    url = encodeURIComponent(value);
  } catch {
    // a lone surrogate: no URL form
  }
  return [...new Set([value, JSON.stringify(value).slice(1, -1), escapePromqlString(value), url])];
}

/** A deep copy of plain data with every form of every secret value replaced; non-plain objects are kept as they are. */
export function createRedactor(secrets: readonly { name: string; value: string }[]): Redactor {
  if (secrets.length === 0) return <T>(value: T) => value;
  // Longest first, so a secret that contains another is replaced whole.
  const replacements = secrets
    .flatMap(({ name, value }) => forms(value).map((form) => ({ form, with: `[redacted env.${name}]` })))
    .sort((a, b) => b.form.length - a.form.length);
  const text = (s: string) => replacements.reduce((out, r) => (out.includes(r.form) ? out.split(r.form).join(r.with) : out), s);
  const walk = (value: unknown): unknown => {
    if (typeof value === 'string') return text(value);
    if (Array.isArray(value)) return value.map(walk);
    if (value !== null && typeof value === 'object') {
      const proto = Object.getPrototypeOf(value) as unknown;
      if (proto !== Object.prototype && proto !== null) return value;
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [text(k), walk(v)]));
    }
    return value;
  };
  return <T>(value: T) => walk(value) as T;
}
