/**
 * Template hazards the loader can see before anything runs (issue 9), each reported at its field:
 *
 * - a template in a place that is never rendered: it would be used as written, `{{ labels.x }}` and all
 *   (a step check's values, an escalation's labels, a working directory, a title);
 * - an alert value (labels, annotations, forEach items) in a URL anywhere but its path or query: the scheme, the
 *   host (`http://{{ labels.host }}/…` lets an alert choose where the request goes), user info or fragment.
 *
 * Which strings are rendered, and for which sink, is asked of the plugins themselves: each action and check renders
 * its spec through a probe that records every (template, sink) it is given. So a new plugin needs no list here.
 * PromQL hazards (holes outside string literals, alert values in a regex argument) are the PromQL check's own,
 * at parse time (checks/promql-syntax.ts).
 */
import type { Render, Sink } from '../template.js';
import { parseTemplate, templateReferences, urlSection } from '../template.js';
import type { Procedure } from './schema.js';

type Path = readonly PropertyKey[];
export interface Hazard {
  path: Path;
  message: string;
}

const UNTRUSTED = new Set(['labels', 'annotations', 'item']);

/** A renderer that fills nothing and records what it was asked to render, for which sink. */
function probe(seen: Map<string, Set<Sink>>): Render {
  return (template: string, sink: Sink) => {
    const sinks = seen.get(template) ?? new Set<Sink>();
    sinks.add(sink);
    seen.set(template, sinks);
    return template;
  };
}

function* strings(value: unknown, path: PropertyKey[]): Generator<[Path, string]> {
  if (typeof value === 'string') yield [path, value];
  else if (Array.isArray(value)) for (const [i, v] of value.entries()) yield* strings(v, [...path, i]);
  else if (typeof value === 'object' && value !== null)
    for (const [k, v] of Object.entries(value)) yield* strings(v, [...path, k]);
}

const hasHoles = (text: string) => templateReferences(text).length > 0;

/**
 * Untrusted holes of a URL template outside its path and query. Operator values are not known here, so a template
 * that starts with one (`{{ vars.base }}/x/{{ labels.y }}`) is taken to hold scheme and host; an alert value must then
 * come after a literal `/`.
 */
export function urlTemplateProblems(template: string): string[] {
  const problems: string[] = [];
  let skeleton = '';
  for (const [i, part] of parseTemplate(template).parts.entries()) {
    if (typeof part === 'string') {
      skeleton += part;
      continue;
    }
    if (!UNTRUSTED.has(part.namespace)) {
      skeleton += i === 0 ? 'http://operator-value' : 'x';
      continue;
    }
    const section = urlSection(skeleton);
    if (section !== 'path' && section !== 'query')
      problems.push(
        `{{ ${part.namespace}.${part.name} }} is in the URL's ${section === 'scheme' ? 'scheme or host' : section}: an alert value may only fill the path or the query (it would choose where the request goes)`,
      );
    skeleton += 'x';
  }
  return problems;
}

/** Every hazard of a parsed procedure; `raw` is the file's data, walked for the strings as written. */
export function templateHazards(procedure: Omit<Procedure, 'file'>, raw: unknown): Hazard[] {
  const hazards: Hazard[] = [];
  const seen = new Map<string, Set<Sink>>();
  const r = probe(seen);
  const tolerate = (fn: () => unknown) => {
    try {
      fn();
    } catch {
      // A renderer that checks its result may refuse the template left in; what it was asked is recorded already.
    }
  };
  tolerate(() => r(procedure.target, 'target'));
  for (const step of procedure.steps) {
    if (step.action !== undefined) tolerate(() => step.action!.render(r));
    if (step.when !== undefined) tolerate(() => step.when!.render(r));
    if (step.expect !== undefined) tolerate(() => step.expect!.render(r));
    for (const v of Object.values(step.forEach?.where ?? {})) for (const x of [v].flat()) tolerate(() => r(String(x), 'data'));
  }
  for (const e of procedure.escalation) tolerate(() => r(e.message, 'text'));

  for (const [path, text] of strings(raw, [])) {
    // match and vars have their own messages (rules/load.ts contentProblems).
    if (path[0] === 'match' || path[0] === 'vars' || path[0] === '$schema' || !hasHoles(text)) continue;
    const sinks = seen.get(text);
    if (sinks === undefined) {
      hazards.push({
        path,
        message:
          'templates are not rendered here: {{ … }} would be used as written (take it out, or move it to a field that is rendered)',
      });
      continue;
    }
    if (sinks.has('url')) for (const message of urlTemplateProblems(text)) hazards.push({ path, message });
  }
  return hazards;
}
