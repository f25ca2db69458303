/**
 * Reads RULES_DIR: every `*.yaml`/`*.yml` directly in it (not subdirectories: `rules/prometheus/` holds the
 * Prometheus alerting rules), one procedure a file. Every problem in every file is collected, each with its
 * place, `rules/p1-003.yaml:12: steps[1].expect.within: expected a duration like 10s`, so one `check` run
 * lists them all (errors.Join in spirit) instead of the first one.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { isMap, isNode, isScalar, isSeq, LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { actions } from '../actions/index.js';
import { templateHazards } from './hazards.js';
import { MatcherError, parseMatcher } from './match.js';
import { freezeData } from './model.js';
import { RuleFile, type Procedure } from './schema.js';
import { templateProblems, templateReferences } from '../template.js';

export interface RuleProblem {
  /** The file at fault (the directory itself when it cannot be read or holds no rule file). */
  file: string;
  /** 1-based line in the file, when the problem has a place in it. */
  line?: number;
  /** The field at fault, rendered `steps[1].expect.within`; '' for the file as a whole. */
  path: string;
  message: string;
}

/** `file:line: path: message`, leaving out what a problem does not have. */
export function formatProblem(p: RuleProblem): string {
  return [p.line === undefined ? p.file : `${p.file}:${p.line}`, p.path, p.message].filter((s) => s !== '').join(': ');
}

export class RuleFileError extends Error {
  override readonly name = 'RuleFileError';
  constructor(readonly problems: readonly RuleProblem[]) {
    super(
      `${problems.length} problem${problems.length === 1 ? '' : 's'} in the rule files:\n${problems.map((p) => `  ${formatProblem(p)}`).join('\n')}`,
    );
  }
}

export interface LoadedRules {
  /** The procedures without any problem, in file-name order. */
  procedures: Procedure[];
  problems: RuleProblem[];
}

type Env = Readonly<Record<string, string | undefined>>;

/** Loads every rule file in `dir`; never throws for a problem in the rules, it reports it. */
export function loadRules(dir: string, env: Env = process.env): LoadedRules {
  let names: string[];
  try {
    names = readdirSync(dir)
      .filter((n) => /\.ya?ml$/.test(n) && !n.startsWith('.')) // dot files: editor leftovers, Kubernetes' ..data
      .filter((n) => statSync(join(dir, n)).isFile()) // follows symlinks, as a ConfigMap volume mounts files
      .sort();
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such directory' : code === 'ENOTDIR' ? 'not a directory' : (err as Error).message;
    return { procedures: [], problems: [{ file: dir, path: '', message: `cannot read the rules directory: ${reason}` }] };
  }
  if (names.length === 0) {
    return {
      procedures: [],
      problems: [{ file: dir, path: '', message: 'no rule files (*.yaml, *.yml) in the rules directory' }],
    };
  }

  const procedures: Procedure[] = [];
  const problems: RuleProblem[] = [];
  const ids = new Map<string, string>();
  for (const name of names) {
    const file = join(dir, name);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      problems.push({ file, path: '', message: `cannot read: ${(err as Error).message}` });
      continue;
    }
    const result = checkRuleFile(file, text, env);
    problems.push(...result.problems);
    if (result.id !== undefined) {
      const first = ids.get(result.id.value);
      if (first !== undefined) {
        problems.push({
          file,
          line: result.id.line,
          path: 'id',
          message: `duplicate id "${result.id.value}" (also in ${first})`,
        });
        continue;
      }
      ids.set(result.id.value, file);
    }
    if (result.procedure !== undefined) procedures.push(result.procedure);
  }
  return { procedures, problems };
}

/** loadRules, throwing RuleFileError with every problem when there is any. */
export function loadRulesOrThrow(dir: string, env: Env = process.env): Procedure[] {
  const { procedures, problems } = loadRules(dir, env);
  if (problems.length > 0) throw new RuleFileError(problems);
  return procedures;
}

/** One rule file's text: the procedure when it has no problem, and every problem it has. */
export function parseRuleFile(
  file: string,
  text: string,
  env: Env = process.env,
): { procedure?: Procedure; problems: RuleProblem[] } {
  const { procedure, problems } = checkRuleFile(file, text, env);
  return procedure !== undefined ? { procedure, problems } : { problems };
}

type Path = readonly PropertyKey[];

function checkRuleFile(
  file: string,
  text: string,
  env: Env,
): { procedure?: Procedure; problems: RuleProblem[]; id?: { value: string; line: number } } {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const yamlError = doc.errors[0];
  if (yamlError !== undefined) {
    // Only the first: after a syntax error the parser's further errors are mostly echoes of it.
    return {
      problems: [{ file, line: lineCounter.linePos(yamlError.pos[0]).line, path: '', message: `YAML: ${yamlError.message}` }],
    };
  }
  const lineOf = locator(doc, lineCounter);
  const problems: RuleProblem[] = [];
  const add = (path: Path, message: string) => {
    const problem = { file, line: lineOf(path), path: formatPath(path), message };
    if (!problems.some((p) => formatProblem(p) === formatProblem(problem))) problems.push(problem);
  };

  let raw: unknown;
  try {
    raw = doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    return { problems: [{ file, line: 1, path: '', message: `YAML: ${(err as Error).message}` }] };
  }
  if (raw === null || raw === undefined) {
    return {
      problems: [
        { file, line: 1, path: '', message: 'empty file: a rule file holds one procedure (id, title, match, target, steps)' },
      ],
    };
  }

  const parsed = RuleFile.safeParse(raw);
  if (!parsed.success) {
    for (const { path, message } of explainIssues(parsed.error.issues, raw)) add(path, message);
    // The schema's cross-step checks run only on an otherwise valid file; run them here so nothing waits for a second pass.
    for (const { path, message } of stepReferenceProblems(raw)) add(path, message);
  }
  for (const { path, message } of contentProblems(raw)) add(path, message);
  // Hazards of where templates land (never rendered; alert values in a URL's host): only on a file that parsed.
  if (parsed.success) for (const { path, message } of templateHazards(parsed.data, raw)) add(path, message);

  const rawId = get(raw, ['id']);
  const id = typeof rawId === 'string' ? { value: rawId, line: lineOf(['id']) } : undefined;
  problems.sort((a, b) => (a.line ?? 0) - (b.line ?? 0));
  if (!parsed.success || problems.length > 0) return id !== undefined ? { problems, id } : { problems };
  let vars: Procedure['vars'];
  try {
    vars = overrideVars(parsed.data.vars, env);
  } catch (err) {
    problems.push({
      file,
      path: 'vars',
      message: (err as Error).message,
      ...(lineOf(['vars']) !== undefined ? { line: lineOf(['vars']) } : {}),
    });
    return id !== undefined ? { problems, id } : { problems };
  }
  // Immutable from here on: every run, `plan` and `docs` reads the same compiled procedure.
  const procedure: Procedure = freezeData({ ...parsed.data, vars, file });
  return id !== undefined ? { procedure, problems, id } : { procedure, problems };
}

/** `REMEDIATOR_VAR_<NAME>` (the var name upper-cased) overrides var `<name>` of every procedure that declares it. */
function overrideVars(vars: Readonly<Record<string, string | string[]>>, env: Env): Record<string, string | string[]> {
  return Object.fromEntries(Object.entries(vars).map(([name, value]) => [name, overrideVar(name, value, env)]));
}

/** A list var is overridden by a JSON array of strings: REMEDIATOR_VAR_RESTART_COMMAND='["systemctl","restart","sup"]'. */
function overrideVar(name: string, value: string | string[], env: Env): string | string[] {
  const key = `REMEDIATOR_VAR_${name.toUpperCase()}`;
  const raw = env[key];
  if (raw === undefined) return value;
  if (!Array.isArray(value)) return raw;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    parsed = undefined;
  }
  if (!Array.isArray(parsed) || parsed.length === 0 || !parsed.every((x) => typeof x === 'string')) {
    throw new Error(
      `${key}: var "${name}" is a list; set it to a JSON array of strings, e.g. ["systemctl","restart","supervisor"]`,
    );
  }
  return parsed;
}

// ---------------------------------------------------------------------------------------------------------------
// zod issues, in words that name the field

function explainIssues(issues: readonly z.core.$ZodIssue[], raw: unknown, prefix: Path = []): { path: Path; message: string }[] {
  const out: { path: Path; message: string }[] = [];
  const unknownActionAt = new Set<string>();
  for (const issue of issues) {
    const path = [...prefix, ...issue.path];
    if (issue.code === 'unrecognized_keys' && path.at(-1) === 'action' && path.at(-3) === 'steps') {
      unknownActionAt.add(formatPath(path));
    }
  }
  for (const issue of issues) {
    const path = [...prefix, ...issue.path];
    switch (issue.code) {
      case 'unrecognized_keys':
        for (const key of issue.keys) {
          out.push({
            path: [...path, key],
            message: unknownActionAt.has(formatPath(path))
              ? `unknown action kind "${key}" (one of ${actions.map((a) => a.kind).join(', ')})`
              : `unknown key "${key}"`,
          });
        }
        break;
      case 'invalid_type': {
        const value = get(raw, path);
        out.push({
          path,
          message: value === undefined ? 'required field is missing' : `expected ${issue.expected}, got ${typeName(value)}`,
        });
        break;
      }
      case 'invalid_value':
        out.push({
          path,
          message: `expected ${issue.values.length === 1 ? '' : 'one of '}${issue.values.map((v) => JSON.stringify(v)).join(', ')}, got ${describeValue(get(raw, path))}`,
        });
        break;
      case 'invalid_union': {
        // Report the branch whose shape fitted (its issues say what is wrong inside); else what would have fitted.
        const atRoot = (i: z.core.$ZodIssue) => i.path.length === 0 && (i.code === 'invalid_type' || i.code === 'invalid_value');
        const fitting = issue.errors.find((branch) => !branch.every(atRoot));
        if (fitting !== undefined) {
          out.push(...explainIssues(fitting, raw, path));
          break;
        }
        const flat = issue.errors.flat();
        const types = [
          ...new Set(flat.flatMap((i) => (i.code === 'invalid_type' ? [i.expected === 'array' ? 'a list' : i.expected] : []))),
        ];
        const values = flat.flatMap((i) => (i.code === 'invalid_value' ? i.values.map((v) => JSON.stringify(v)) : []));
        const expected = [...types, ...(values.length > 0 ? [`one of ${values.join(', ')}`] : [])];
        out.push({ path, message: `expected ${expected.join(' or ')}, got ${typeName(get(raw, path))}` });
        break;
      }
      case 'custom':
        if (unknownActionAt.has(formatPath(path)) && issue.message.startsWith('exactly one action kind')) break;
        out.push({ path, message: issue.message });
        break;
      default:
        out.push({ path, message: issue.message });
    }
  }
  return out;
}

function typeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return `${typeof value} ${describeValue(value)}`;
}

function describeValue(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 60)}…` : text;
}

// ---------------------------------------------------------------------------------------------------------------
// checks beyond the schema, on the raw data (so they run even when the schema fails elsewhere)

function* contentProblems(raw: unknown): Generator<{ path: Path; message: string }> {
  const match = get(raw, ['match']);
  if (Array.isArray(match)) {
    for (const [i, m] of match.entries()) {
      if (typeof m !== 'string') continue;
      if (templateReferences(m).length > 0) {
        yield { path: ['match', i], message: 'matchers are not templated: {{ … }} would be compared literally' };
        continue;
      }
      try {
        parseMatcher(m);
      } catch (err) {
        if (!(err instanceof MatcherError)) throw err;
        yield { path: ['match', i], message: err.message };
      }
    }
  }

  const vars = get(raw, ['vars']);
  const declared = new Set(isRecord(vars) ? Object.keys(vars) : []);
  for (const [path, text] of strings(raw, [])) {
    if (path[0] === 'match' || path[0] === '$schema') continue;
    if (path[0] === 'vars' && templateReferences(text).length > 0) {
      yield { path, message: 'vars are not templated: {{ … }} would stay as written' };
      continue;
    }
    for (const message of templateProblems(text)) yield { path, message };
    for (const ref of templateReferences(text)) {
      if (ref.namespace === 'vars' && !declared.has(ref.name)) {
        yield { path, message: `{{ vars.${ref.name} }}: no var "${ref.name}" is declared under vars` };
      }
    }
  }
}

/** Duplicate step names and `step:` references to a step that is not earlier; the same rules as RuleFile's. */
function* stepReferenceProblems(raw: unknown): Generator<{ path: Path; message: string }> {
  const steps = get(raw, ['steps']);
  if (!Array.isArray(steps)) return;
  const seen = new Map<string, number>();
  for (const [i, step] of steps.entries()) {
    const name = get(step, ['name']);
    if (typeof name === 'string') {
      if (seen.has(name))
        yield { path: ['steps', i, 'name'], message: `duplicate step name "${name}" (also steps[${seen.get(name)}])` };
      seen.set(name, i);
    }
    for (const field of ['when', 'expect'] as const) {
      const ref = get(step, [field, 'step']);
      if (typeof ref !== 'string') continue;
      const at = seen.get(ref);
      if (at === undefined || !(at < i || (field === 'expect' && at === i))) {
        yield { path: ['steps', i, field, 'step'], message: `"${ref}" is not an earlier step of this procedure` };
      }
    }
  }
}

function* strings(value: unknown, path: PropertyKey[]): Generator<[Path, string]> {
  if (typeof value === 'string') yield [path, value];
  else if (Array.isArray(value)) for (const [i, v] of value.entries()) yield* strings(v, [...path, i]);
  else if (isRecord(value)) for (const [k, v] of Object.entries(value)) yield* strings(v, [...path, k]);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function get(value: unknown, path: Path): unknown {
  let at = value;
  for (const seg of path) {
    if (Array.isArray(at) && typeof seg === 'number') at = at[seg];
    else if (isRecord(at) && typeof seg === 'string' && Object.hasOwn(at, seg)) at = at[seg];
    else return undefined;
  }
  return at;
}

// ---------------------------------------------------------------------------------------------------------------
// places

/** `steps[1].expect.within`; keys that are not plain names are quoted: `vars["a b"]`. */
export function formatPath(path: Path): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z_$][A-Za-z0-9_$-]*$/.test(String(seg))) out += out === '' ? String(seg) : `.${String(seg)}`;
    else out += `[${JSON.stringify(String(seg))}]`;
  }
  return out;
}

/**
 * The line of the deepest node on the path that exists: a map entry's key line (so `expect:` points at its own
 * line, not its first child's), a list item's line; a missing key points at its parent.
 */
function locator(doc: Document, lineCounter: LineCounter): (path: Path) => number {
  return (path) => {
    let node: unknown = doc.contents;
    let offset = isNode(node) && node.range ? node.range[0] : 0;
    for (const seg of path) {
      if (isMap(node)) {
        const pair = node.items.find((p) => String(isScalar(p.key) ? p.key.value : p.key) === String(seg));
        if (pair === undefined) break;
        if (isNode(pair.key) && pair.key.range) offset = pair.key.range[0];
        node = pair.value;
      } else if (isSeq(node) && typeof seg === 'number') {
        const item = node.items[seg];
        if (!isNode(item) || !item.range) break;
        offset = item.range[0];
        node = item;
      } else {
        break;
      }
    }
    return lineCounter.linePos(offset).line;
  };
}
