/**
 * PromQL syntax checks at load, with Prometheus' own Lezer grammar, so a typo in a rule file is a `check`
 * error rather than a failed expectation at run time. Templates are checked too: an alert's label value can
 * only be placed inside a double-quoted string literal, the one place the promql sink escapes for.
 */
import { parser } from '@prometheus-io/lezer-promql';

const HOLE = /\{\{\s*([A-Za-z]+)\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;
const UNTRUSTED = new Set(['labels', 'annotations', 'item']);

/** Where a hole sits in a query: inside which kind of string literal, or outside any. */
type Context = 'double' | 'single' | 'backtick' | 'code';

interface Hole {
  start: number;
  end: number;
  namespace: string;
  name: string;
  context: Context;
}

/** Scans the query as PromQL's lexer does (strings with escapes, raw backtick strings, `#` comments). */
function findHoles(query: string): Hole[] {
  const holes: Hole[] = [];
  let context: Context = 'code';
  let comment = false;
  for (let i = 0; i < query.length; i++) {
    HOLE.lastIndex = i;
    const hole = query.startsWith('{{', i) ? HOLE.exec(query) : null;
    if (hole !== null && hole.index === i) {
      if (!comment) holes.push({ start: i, end: i + hole[0].length, namespace: hole[1]!, name: hole[2]!, context });
      i += hole[0].length - 1;
      continue;
    }
    const c = query[i]!;
    if (comment) {
      if (c === '\n') comment = false;
    } else if (context === 'code') {
      if (c === '"') context = 'double';
      else if (c === "'") context = 'single';
      else if (c === '`') context = 'backtick';
      else if (c === '#') comment = true;
    } else if (c === '\\' && context !== 'backtick') {
      i++;
    } else if (
      (context === 'double' && c === '"') ||
      (context === 'single' && c === "'") ||
      (context === 'backtick' && c === '`')
    ) {
      context = 'code';
    }
  }
  return holes;
}

/** Placeholders tried for holes outside string literals (trusted values only): a number, a name, a duration. */
const CODE_PLACEHOLDERS = ['1', 'x', '5m'];

/**
 * Syntax errors of a (templated) PromQL query, each as `syntax error at <where>: <snippet>`; [] when it parses.
 * Also reports label and annotation holes that are not inside a double-quoted string literal.
 */
export function promqlSyntaxErrors(query: string): string[] {
  const holes = findHoles(query);
  const problems: string[] = [];
  for (const h of holes) {
    if (UNTRUSTED.has(h.namespace) && h.context !== 'double') {
      problems.push(
        `{{ ${h.namespace}.${h.name} }} must be inside a double-quoted string literal ("…"), the only place an alert's value is escaped for`,
      );
    }
  }
  if (query.trim() === '') return [...problems, 'empty query'];

  let best: string[] | undefined;
  for (const placeholder of holes.some((h) => h.context === 'code') ? CODE_PLACEHOLDERS : CODE_PLACEHOLDERS.slice(0, 1)) {
    const errors = parseErrors(query, holes, placeholder);
    if (best === undefined || errors.length < best.length) best = errors;
    if (errors.length === 0) break;
  }
  if (best !== undefined && best.length === 0) problems.push(...regexArgumentProblems(query, holes));
  return [...problems, ...(best ?? [])];
}

/** Functions with a regular expression among their string arguments, and its index. */
const REGEX_ARGUMENTS: Readonly<Record<string, number>> = { label_replace: 4 };

/**
 * An alert value as a function's regex argument (label_replace's): the promql sink quotes alert values as regexes
 * only in matchers (=~, !~), so here it would be a pattern an alert chose. Refused; use a matcher instead.
 */
function regexArgumentProblems(query: string, holes: readonly Hole[]): string[] {
  let text = '';
  const at: { hole: Hole; pos: number }[] = [];
  let last = 0;
  for (const h of holes) {
    text += query.slice(last, h.start);
    at.push({ hole: h, pos: text.length });
    text += h.context === 'code' ? '1' : 'x';
    last = h.end;
  }
  text += query.slice(last);
  const tree = parser.parse(text);
  const problems: string[] = [];
  for (const { hole, pos } of at) {
    if (!UNTRUSTED.has(hole.namespace) || hole.context !== 'double') continue;
    const literal = tree.resolve(pos, 1);
    const body = literal.parent;
    const call = body?.parent;
    if (literal.name !== 'StringLiteral' || body?.name !== 'FunctionCallBody' || call?.name !== 'FunctionCall') continue;
    const fn = text.slice(call.firstChild?.from ?? 0, call.firstChild?.to ?? 0);
    const args: number[] = [];
    for (let c = body.firstChild; c !== null; c = c.nextSibling) if (/^[A-Z]/.test(c.name)) args.push(c.from);
    if (REGEX_ARGUMENTS[fn] !== undefined && args.indexOf(literal.from) === REGEX_ARGUMENTS[fn])
      problems.push(
        `{{ ${hole.namespace}.${hole.name} }} is ${fn}'s regex argument: an alert value there is a pattern the alert chose; match it with a label matcher (=~ quotes it) instead`,
      );
  }
  return problems;
}

function parseErrors(query: string, holes: readonly Hole[], codePlaceholder: string): string[] {
  // Substitute every hole, remembering how to map a position in the substituted text back to the original.
  let text = '';
  const spans: { at: number; length: number; from: number; to: number }[] = [];
  let last = 0;
  for (const h of holes) {
    text += query.slice(last, h.start);
    const placeholder = h.context === 'code' ? codePlaceholder : 'x';
    spans.push({ at: text.length, length: placeholder.length, from: h.start, to: h.end });
    text += placeholder;
    last = h.end;
  }
  text += query.slice(last);
  const original = (pos: number): number => {
    let shift = 0;
    for (const s of spans) {
      if (pos < s.at) break;
      if (pos < s.at + s.length) return s.from;
      shift = s.to - (s.at + s.length);
    }
    return pos + shift;
  };

  const errors: string[] = [];
  parser.parse(text).iterate({
    enter(node) {
      if (node.type.isError) {
        errors.push(describeError(query, original(node.from), original(node.to)));
      } else if (node.name === 'StringLiteral') {
        const problem = stringLiteralProblem(text.slice(node.from, node.to));
        if (problem !== undefined) errors.push(`${problem} at ${position(query, original(node.from))}`);
      }
    },
  });
  return errors;
}

/** Go's escapes (strconv.Unquote), which Prometheus applies and the Lezer grammar does not check. */
const GO_ESCAPE = /\\(?:[abfnrtv\\]|x[0-9a-fA-F]{2}|[0-7]{3}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8})/y;

/** What the Lezer grammar lets through and Prometheus rejects: an unterminated literal, an unknown escape. */
function stringLiteralProblem(literal: string): string | undefined {
  const quote = literal[0]!;
  if (quote === '`') return literal.length >= 2 && literal.endsWith('`') ? undefined : 'unterminated string literal';
  for (let i = 1; i < literal.length; i++) {
    const c = literal[i]!;
    if (c === quote) return i === literal.length - 1 ? undefined : 'unterminated string literal';
    if (c !== '\\') continue;
    GO_ESCAPE.lastIndex = i;
    if (literal[i + 1] === quote) {
      i++;
    } else if (GO_ESCAPE.test(literal)) {
      i = GO_ESCAPE.lastIndex - 1;
    } else {
      return `unknown escape sequence \\${literal[i + 1] ?? ''} in a string literal`;
    }
  }
  return 'unterminated string literal';
}

function describeError(query: string, from: number, to: number): string {
  const where = position(query, from);
  if (from >= query.trimEnd().length) return `syntax error at ${where}: unexpected end of query`;
  const found = query.slice(from, Math.max(to, from + 1));
  const snippet = found.length > 20 ? `${found.slice(0, 20)}…` : found;
  const before = query.slice(Math.max(0, from - 20), from);
  return `syntax error at ${where}: unexpected ${quote(snippet)} after ${quote((from > 20 ? '…' : '') + before)}`;
}

/** Single quotes read better than JSON around PromQL, which is full of double quotes. */
function quote(text: string): string {
  return `'${text.replace(/\s+/g, ' ')}'`;
}

/** `char 12`, or `line 2, char 5` for a multi-line query; 1-based. */
function position(query: string, offset: number): string {
  const before = query.slice(0, offset);
  const line = before.split('\n').length;
  const col = offset - (before.lastIndexOf('\n') + 1) + 1;
  return line === 1 ? `char ${col}` : `line ${line}, char ${col}`;
}
