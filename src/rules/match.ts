/**
 * Alertmanager matcher syntax, one matcher a string: `name="value"`, `name!="value"`, `name=~"re"`, `name!~"re"`.
 * Values may be double-quoted (escapes `\"`, `\\`, `\n`, `\t`, `\r`) or unquoted as Alertmanager accepts
 * (`alertname=Foo`). Regular expressions are anchored, `^(?:re)$`, as Alertmanager anchors them, and have Go's RE2
 * syntax and semantics: they are compiled and matched by re2js (a port of RE2), whose matching time is linear in the
 * label value whatever the expression, so no alert can stall the receiver, the worker and the probes with a label
 * crafted against a backtracking engine. What RE2 (and so Alertmanager) refuses, lookarounds, backreferences,
 * possessive quantifiers, repeat counts over 1000, is refused at load with RE2's message.
 *
 * A procedure is chosen only by its `match`: no label, a `procedure` label included, selects one by itself.
 */
import { RE2JS } from 're2js';
import type { Procedure } from './schema.js';

export type MatchOp = '=' | '!=' | '=~' | '!~';

export interface Matcher {
  readonly name: string;
  readonly op: MatchOp;
  /** The unescaped value (for regex operators, the regular expression as written). */
  readonly value: string;
  /** The anchored regular expression (RE2), for `=~` and `!~`. */
  readonly regex?: LinearRegex;
}

export class MatcherError extends Error {
  override readonly name = 'MatcherError';
  constructor(
    message: string,
    /** The matcher text at fault. */
    readonly text: string,
  ) {
    super(message);
  }
}

const NAME = /[a-zA-Z_][a-zA-Z0-9_]*/y;
/** Alertmanager's reserved characters: never part of an unquoted name or value. */
const RESERVED = new Set(['{', '}', '!', '=', '~', ',', '\\', '"', "'", '`']);
const ESCAPES: Readonly<Record<string, string>> = { '"': '"', '\\': '\\', n: '\n', t: '\t', r: '\r' };
const OPS: readonly MatchOp[] = ['=~', '!~', '!=', '='];

/** Parses one matcher; throws MatcherError naming what is wrong and where (1-based character position). */
export function parseMatcher(text: string): Matcher {
  const fail = (message: string): never => {
    throw new MatcherError(`${message} in matcher '${text}'`, text);
  };
  let i = skipSpace(text, 0);
  if (i === text.length) fail('empty matcher');
  // Alertmanager also accepts `{a="b",c="d"}` lists; a rule file lists one matcher per entry so each error has its place.
  if (text[i] === '{') fail('one matcher per entry, without braces');

  let name: string;
  if (text[i] === '"') {
    [name, i] = readQuoted(text, i, fail);
  } else {
    NAME.lastIndex = i;
    const m = NAME.exec(text);
    if (m === null) fail(`expected a label name at position ${i + 1}`);
    name = m![0];
    i += name.length;
  }
  if (name === '') fail('empty label name');

  i = skipSpace(text, i);
  const op = OPS.find((o) => text.startsWith(o, i));
  if (op === undefined) {
    fail(`expected an operator (=, !=, =~, !~) after label name "${name}" at position ${i + 1}, got ${describeAt(text, i)}`);
  }
  i = skipSpace(text, i + op!.length);

  let value: string;
  if (text[i] === '"') {
    [value, i] = readQuoted(text, i, fail);
    i = skipSpace(text, i);
    if (i < text.length) fail(`unexpected ${describeAt(text, i)} after the quoted value at position ${i + 1}`);
  } else {
    const end = text.trimEnd().length;
    value = text.slice(i, end);
    for (let j = i; j < end; j++) {
      const c = text[j]!;
      if (RESERVED.has(c) || /\s/.test(c)) {
        fail(`unexpected '${c}' at position ${j + 1} in an unquoted value (quote the value: ${name}${op}"…")`);
      }
    }
  }

  if (op === '=~' || op === '!~') {
    return { name, op: op, value, regex: compileRegex(value, (message) => fail(`invalid regular expression: ${message}`)) };
  }
  return { name, op: op!, value };
}

/** A compiled RE2 expression: `test` runs in time linear in the input (no backtracking). */
export interface LinearRegex {
  readonly source: string;
  test(value: string): boolean;
}

/** Compiles an Alertmanager regex as Alertmanager does (`^(?:re)$`, Go RE2 syntax), failing with RE2's reason. */
export function compileRegex(source: string, fail: (message: string) => never): LinearRegex {
  let re: RE2JS;
  try {
    re = RE2JS.compile(`^(?:${source})$`);
  } catch (err) {
    // "error parsing regexp: invalid or unsupported Perl syntax: `(?=`": the same words as Go's regexp/syntax.
    const message = err instanceof Error ? err.message : String(err);
    return fail(message.replace(/^error parsing regexp: /, '').replace(`\`^(?:${source})$\``, `\`${source}\``));
  }
  return Object.freeze({ source, test: (value: string) => re.matches(value) });
}

function readQuoted(text: string, start: number, fail: (message: string) => never): [string, number] {
  let out = '';
  for (let i = start + 1; i < text.length; i++) {
    const c = text[i]!;
    if (c === '"') return [out, i + 1];
    if (c === '\n') break;
    if (c !== '\\') {
      out += c;
      continue;
    }
    const next = text[i + 1];
    const escaped = next === undefined ? undefined : ESCAPES[next];
    if (escaped === undefined) {
      fail(
        `unknown escape ${next === undefined ? '\\ at the end' : `\\${next}`} at position ${i + 1} (use \\", \\\\, \\n, \\t or \\r)`,
      );
    }
    out += escaped;
    i++;
  }
  return fail(`unterminated quoted string starting at position ${start + 1}`);
}

function skipSpace(text: string, i: number): number {
  while (i < text.length && /\s/.test(text[i]!)) i++;
  return i;
}

function describeAt(text: string, i: number): string {
  return i >= text.length ? 'the end' : `'${text.slice(i, i + 10)}'`;
}

/** Whether one matcher holds for a label value; a missing label is the empty string, as in Alertmanager. */
export function matcherHolds(m: Matcher, value: string | undefined): boolean {
  const v = value ?? '';
  switch (m.op) {
    case '=':
      return v === m.value;
    case '!=':
      return v !== m.value;
    case '=~':
      return m.regex!.test(v);
    case '!~':
      return !m.regex!.test(v);
  }
}

/** Whether every matcher holds. */
export function matches(matchers: readonly Matcher[], labels: Readonly<Record<string, string>>): boolean {
  return matchers.every((m) => matcherHolds(m, Object.hasOwn(labels, m.name) ? labels[m.name] : undefined));
}

/** The canonical text of a matcher, quoted and escaped: `severity=~"page|critical"`. */
export function formatMatcher(m: Matcher): string {
  const value = m.value
    .replace(/\\/g, '\\\\')
    .replace(/"/g, '\\"')
    .replace(/\n/g, '\\n')
    .replace(/\t/g, '\\t')
    .replace(/\r/g, '\\r');
  return `${m.name}${m.op}"${value}"`;
}

const compiled = new WeakMap<Procedure, readonly Matcher[]>();

/** A procedure's matchers, parsed once and cached for the procedure object. Throws MatcherError on a bad matcher. */
export function procedureMatchers(procedure: Procedure): readonly Matcher[] {
  let matchers = compiled.get(procedure);
  if (matchers === undefined) {
    matchers = procedure.match.map(parseMatcher);
    compiled.set(procedure, matchers);
  }
  return matchers;
}

/** Every procedure whose matchers all hold for these alert labels, in the order given. */
export function matchProcedures<P extends Procedure>(procedures: readonly P[], labels: Readonly<Record<string, string>>): P[] {
  return procedures.filter((p) => matches(procedureMatchers(p), labels));
}
