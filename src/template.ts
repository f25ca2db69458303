/**
 * `{{ labels.x }}`, `{{ annotations.x }}`, `{{ vars.x }}`, `{{ env.X }}` and nothing else.
 * No expressions: a template is text with holes, each hole filled with one value escaped for where it lands.
 *
 * Trust: labels and annotations come from alerts and are untrusted. vars and env are the operator's.
 * Untrusted values are escaped or, where no escaping makes them safe, rejected with TemplateError.
 */

/**
 * Where a rendered string lands; decides escaping. In every sink but `text`, an untrusted value that is empty is
 * refused: an empty label turns `/pods/{{ labels.pod }}` into the collection, `/data/{{ labels.dir }}` into the whole
 * directory and `up{instance="{{ labels.instance }}"}` into every series *without* the label.
 */
export type Sink =
  | 'text' // free text: messages and descriptions (JSON encoding escapes them later); the one sink that takes ''
  | 'data' // a string value sent to another system (an http JSON body): like text, but never empty
  | 'argv' // one argv element of exec: never a shell; untrusted values may not start with '-', hold control chars or
  //           a `..` path segment; in an element whose literal text holds a '/' (a path), they are path components
  | 'url' // a URL: untrusted values only in its path or query, percent-encoded as one segment / query component
  | 'promql' // inside a PromQL double-quoted string literal: \ " and newlines escaped; in a regex matcher (=~, !~),
  //           untrusted values are regex-quoted first, so they match themselves and nothing more
  | 'path' // a file system path: untrusted values may not hold '/', '\\', NUL or be '.' / '..'
  | 'header' // an HTTP header value: no CR/LF
  | 'env' // an environment variable's value for a child process: untrusted values may not hold NUL or controls
  | 'target' // the per-target key of a procedure (lease, budget): never empty (queue/keys.ts canonicalises it)
  | 'k8s-name'; // a Kubernetes object name or namespace: untrusted values must be RFC 1123 labels

/** A var is a string, or a list of strings that stands alone as argv elements (`command: ["{{ vars.restart }}"]`). */
export type VarValue = string | readonly string[];

export interface TemplateScope {
  labels: Readonly<Record<string, string>>;
  annotations: Readonly<Record<string, string>>;
  vars: Readonly<Record<string, VarValue>>;
  env: Readonly<Record<string, string | undefined>>;
  /** The current element of a step's `forEach` (fields of a JSON object from an API; untrusted). */
  item?: Readonly<Record<string, string>>;
}

/** Renders one template string for one sink; `argv` renders a command line, splicing list vars. */
export interface Render {
  (template: string, sink: Sink): string;
  /** Absent on hand-made renderers (tests); actions then render each element with the argv sink. */
  argv?(elements: readonly string[]): string[];
}

export class TemplateError extends Error {
  override readonly name = 'TemplateError';
  constructor(
    message: string,
    /** The hole at fault, e.g. `labels.instance`. */
    readonly reference?: string,
  ) {
    super(message);
  }
}

/** A hole: `{{ namespace.name }}`, spaces inside the braces allowed. */
const HOLE = /\{\{\s*([A-Za-z]+)\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g;
const ANY_BRACES = /\{\{|\}\}/;
const NAMESPACES = ['labels', 'annotations', 'vars', 'env', 'item'] as const;
type Namespace = (typeof NAMESPACES)[number];
const UNTRUSTED: ReadonlySet<Namespace> = new Set(['labels', 'annotations', 'item']);
const WHOLE_LIST_VAR = /^\{\{\s*vars\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}$/;

// eslint-disable-next-line no-control-regex -- control characters are exactly what we look for
const CONTROL = /[\u0000-\u001f\u007f]/;
const LONE_SURROGATE = /\p{Cs}/u;
/** `..` as a whole path segment: `..`, `../x`, `x/..`, `a\\..\\b`. */
const DOT_DOT_SEGMENT = /(^|[/\\])\.\.([/\\]|$)/;
const RFC1123_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** One piece of a parsed template: literal text, or a hole `{{ namespace.name }}`. */
export type TemplatePart = string | { readonly namespace: string; readonly name: string };

/** A template parsed once: its parts in order, and whether it has braces outside a hole (a typo). */
export interface ParsedTemplate {
  readonly parts: readonly TemplatePart[];
  readonly malformed: boolean;
}

/** Rule files hold a bounded set of templates; the cap only guards against a caller rendering arbitrary text. */
const PARSED_CACHE_LIMIT = 10_000;
const parsedCache = new Map<string, ParsedTemplate>();

/**
 * Parses a template once (cached by its text): the loader parses every string of a rule file at load, so
 * rendering at run time finds them parsed.
 */
export function parseTemplate(template: string): ParsedTemplate {
  const cached = parsedCache.get(template);
  if (cached !== undefined) return cached;
  const parts: TemplatePart[] = [];
  let last = 0;
  for (const m of template.matchAll(HOLE)) {
    if (m.index > last) parts.push(template.slice(last, m.index));
    parts.push(Object.freeze({ namespace: m[1]!, name: m[2]! }));
    last = m.index + m[0].length;
  }
  if (last < template.length) parts.push(template.slice(last));
  const parsed: ParsedTemplate = Object.freeze({
    parts: Object.freeze(parts),
    malformed: ANY_BRACES.test(parts.filter((p) => typeof p === 'string').join('')),
  });
  if (parsedCache.size < PARSED_CACHE_LIMIT) parsedCache.set(template, parsed);
  return parsed;
}

/** The holes of a template, for validation at load: `[{ namespace: 'labels', name: 'instance' }]`. */
export function templateReferences(template: string): { namespace: string; name: string }[] {
  return parseTemplate(template).parts.flatMap((p) => (typeof p === 'string' ? [] : [{ namespace: p.namespace, name: p.name }]));
}

/**
 * Whether only operator values (`vars`, `env`) fill a template: never an alert's labels or annotations, nor a
 * forEach item. For fields that choose what is acted on, such as a socket path.
 */
export function isOperatorTemplate(template: string): boolean {
  return templateReferences(template).every((r) => !UNTRUSTED.has(r.namespace as Namespace));
}

/**
 * Problems with a template's syntax, found without any values: unknown namespaces, and `{{`/`}}`
 * that are not part of a hole (most likely a typo such as `{{ labels.instance }`).
 */
export function templateProblems(template: string): string[] {
  const problems: string[] = [];
  for (const { namespace } of templateReferences(template)) {
    if (!(NAMESPACES as readonly string[]).includes(namespace)) {
      problems.push(`unknown template namespace "${namespace}" (use labels, annotations, vars or env)`);
    }
  }
  if (parseTemplate(template).malformed) {
    problems.push('malformed template: "{{" or "}}" outside a {{ namespace.name }} hole');
  }
  return problems;
}

export function escapePromqlString(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n').replace(/\r/g, '\\r');
}

/** Go's regexp.QuoteMeta: the value as a regular expression that matches exactly itself (RE2 and Prometheus). */
export function quoteRegex(value: string): string {
  return value.replace(/[\\.+*?()|[\]{}^$]/g, '\\$&');
}

/** Where the next character of a URL falls, given the text before it. */
export type UrlSection = 'scheme' | 'authority' | 'path' | 'query' | 'fragment';
export function urlSection(prefix: string): UrlSection {
  if (prefix.includes('#')) return 'fragment';
  if (prefix.includes('?')) return 'query';
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.exec(prefix);
  const rest = scheme ? prefix.slice(scheme[0].length) : prefix.startsWith('//') ? prefix.slice(2) : undefined;
  if (rest !== undefined) return rest.includes('/') ? 'path' : 'authority';
  return prefix.startsWith('/') ? 'path' : 'scheme';
}

/** Where a hole sits in a PromQL query, from the PromQL lexer's view of the literal text before it. */
type PromqlContext = 'code' | 'string' | 'regex' | 'single' | 'backtick' | 'comment';

/**
 * The context of each hole of a PromQL template, scanning its literal text as PromQL's lexer does (double- and
 * single-quoted strings with escapes, raw backtick strings, `#` comments). A double-quoted literal right after
 * `=~` or `!~` is a regex matcher's value.
 */
export function promqlHoleContexts(template: string): PromqlContext[] {
  const contexts: PromqlContext[] = [];
  let state: PromqlContext = 'code';
  let code = '';
  let escaped = false;
  for (const part of parseTemplate(template).parts) {
    if (typeof part !== 'string') {
      contexts.push(state);
      if (state === 'code') code += 'x';
      continue;
    }
    for (const c of part) {
      if (state === 'comment') {
        if (c === '\n') state = 'code';
      } else if (state === 'code') {
        if (c === '"') state = /[=!]~\s*$/.test(code) ? 'regex' : 'string';
        else if (c === "'") state = 'single';
        else if (c === '`') state = 'backtick';
        else if (c === '#') state = 'comment';
        else code += c;
      } else if (escaped) {
        escaped = false;
      } else if (c === '\\' && state !== 'backtick') {
        escaped = true;
      } else if (
        ((state === 'string' || state === 'regex') && c === '"') ||
        (state === 'single' && c === "'") ||
        (state === 'backtick' && c === '`')
      ) {
        state = 'code';
        code += '"s"';
      }
    }
  }
  return contexts;
}

/** Where one hole lands, for `place`: the sink, plus what the text around it says. */
interface Spot {
  sink: Sink;
  untrusted: boolean;
  reference: string;
  /** argv: the element's literal text holds a '/', so the hole is a path component. */
  pathLike?: boolean;
  /** url: the part of the URL the hole is in (from what was rendered before it). */
  urlSection?: UrlSection;
  /** promql: the kind of literal (or code) the hole is in. */
  promql?: PromqlContext;
}

function fail(reference: string, why: string): never {
  throw new TemplateError(`${reference} ${why}`, reference);
}

function place(value: string, spot: Spot): string {
  const { sink, untrusted, reference } = spot;
  if (untrusted && value === '' && sink !== 'text')
    fail(reference, 'is empty: an empty value would widen what is acted on (a collection, a directory, every series)');
  switch (sink) {
    case 'text':
    case 'data':
    case 'target':
      return value;
    case 'promql': {
      // A lone UTF-16 surrogate has no UTF-8 form: no PromQL literal can hold it (only a malformed POST carries one).
      if (LONE_SURROGATE.test(value)) fail(reference, 'holds a lone surrogate, not valid in a PromQL string');
      const where = spot.promql ?? 'string';
      if (untrusted && where !== 'string' && where !== 'regex')
        fail(reference, 'is outside a double-quoted string literal ("…"), the only place an alert value is escaped for');
      // Trusted or not, a value inside a string literal must stay inside it; an alert's value inside a regex
      // matcher must match itself only (`.*` in a label must not become "every instance").
      return escapePromqlString(untrusted && where === 'regex' ? quoteRegex(value) : value);
    }
    case 'header':
      // Refuse what an HTTP client would send altered (it strips controls, DEL and anything above U+00FF):
      // the value that arrives must be the value that was rendered. Trusted values too.
      if (/[^\t\x20-\x7e\x80-\xff]/.test(value))
        fail(reference, 'holds a line break, control or non-Latin-1 character, not allowed in a header');
      return value;
    case 'url': {
      if (!untrusted) return value;
      const section = spot.urlSection ?? 'path';
      if (section !== 'path' && section !== 'query')
        fail(reference, `is in the URL's ${section}: an alert value may only fill its path or query`);
      // encodeURIComponent leaves '.' alone, and a '..' segment would climb the path.
      if (value === '.' || value === '..') fail(reference, 'is a dot segment, not allowed in a URL');
      try {
        return encodeURIComponent(value);
      } catch {
        // URIError: a lone UTF-16 surrogate (JSON "\ud800" in an alert) has no UTF-8 encoding.
        return fail(reference, 'holds text that cannot be percent-encoded (a lone surrogate)');
      }
    }
    case 'argv':
      if (!untrusted) return value;
      if (CONTROL.test(value)) fail(reference, 'holds a control character, not allowed in a command argument');
      if (value.startsWith('-')) fail(reference, 'starts with "-", which a command could read as an option');
      if (DOT_DOT_SEGMENT.test(value)) fail(reference, 'holds a ".." path segment, which would leave its directory');
      if (spot.pathLike) return place(value, { ...spot, sink: 'path' });
      return value;
    case 'path':
      if (!untrusted) return value;
      if (value === '.' || value === '..' || /[/\\\0]/.test(value) || CONTROL.test(value))
        fail(reference, `is not a safe file name component: ${JSON.stringify(value)}`);
      return value;
    case 'env':
      if (!untrusted) return value;
      if (CONTROL.test(value)) fail(reference, 'holds a NUL or control character, not allowed in an environment variable');
      return value;
    case 'k8s-name':
      if (!RFC1123_LABEL.test(value))
        fail(reference, `is not a valid Kubernetes name (RFC 1123 label): ${JSON.stringify(value)}`);
      return value;
  }
}

/**
 * Renders one template; a missing value is an error, and so is an empty untrusted one outside free text (an empty
 * string silently widens matchers, URLs, paths and argv).
 */
export function renderTemplate(template: string, scope: TemplateScope, sink: Sink): string {
  const parsed = parseTemplate(template);
  const pathLike = sink === 'argv' && parsed.parts.some((p) => typeof p === 'string' && p.includes('/'));
  const promql = sink === 'promql' ? promqlHoleContexts(template) : undefined;
  let hole = 0;
  let out = '';
  for (const part of parsed.parts) {
    if (typeof part === 'string') {
      out += part;
      continue;
    }
    const { namespace, name } = part;
    const reference = `${namespace}.${name}`;
    if (!(NAMESPACES as readonly string[]).includes(namespace)) {
      throw new TemplateError(`unknown template namespace in {{ ${reference} }}`, reference);
    }
    const ns = namespace as Namespace;
    const bag = scope[ns];
    // Own properties only: `{{ labels.constructor }}` must not reach Object.prototype.
    const value = bag !== undefined && Object.hasOwn(bag, name) ? bag[name] : undefined;
    if (Array.isArray(value)) {
      throw new TemplateError(`{{ ${reference} }} is a list: it can only stand alone as a command's argument list`, reference);
    }
    if (value === undefined) throw new TemplateError(`{{ ${reference} }} has no value`, reference);
    const spot: Spot = { sink, untrusted: UNTRUSTED.has(ns), reference, pathLike };
    if (sink === 'url') spot.urlSection = urlSection(out);
    if (promql !== undefined) spot.promql = promql[hole];
    out += place(value as string, spot);
    hole++;
  }
  return out;
}

/**
 * Renders an argv: an element that is exactly `{{ vars.x }}` with a list value becomes that list's elements
 * (operator config, trusted); every other element is one argument rendered for the `argv` sink.
 */
export function renderArgv(elements: readonly string[], scope: TemplateScope): string[] {
  return elements.flatMap((element) => {
    const whole = WHOLE_LIST_VAR.exec(element);
    const value = whole && Object.hasOwn(scope.vars, whole[1]!) ? scope.vars[whole[1]!] : undefined;
    return Array.isArray(value) ? [...(value as readonly string[])] : [renderTemplate(element, scope, 'argv')];
  });
}

export function createRender(scope: TemplateScope): Render {
  const render = ((template: string, sink: Sink) => renderTemplate(template, scope, sink)) as Render;
  render.argv = (elements) => renderArgv(elements, scope);
  return render;
}

/** A command line through a renderer: splices list vars when the renderer can, else one argument per element. */
export function renderCommand(render: Render, elements: readonly string[]): string[] {
  return render.argv ? render.argv(elements) : elements.map((e) => render(e, 'argv'));
}
