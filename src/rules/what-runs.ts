/**
 * What remediator really runs for each runbook step, beside the runbook's words: the action and the verification,
 * rendered with example alert labels and the rule's vars (what `remediator plan` would print for such an alert),
 * and the step's `deviation` (where the real program differs from the runbook). `remediator docs` appends it to
 * each procedure; `remediator docs --format markdown-table` is the README's one table over every procedure.
 */
import { createRender, parseTemplate, TemplateError, type Render, type VarValue } from '../template.js';
import { describeCheck, stepNumbers } from './docs.js';
import { procedureMatchers } from './match.js';
import { verifies, type Procedure, type Step } from './schema.js';

/** Example values for the labels the shipped rules read; any other label gets `example-<name>`. */
const EXAMPLE_VALUES: Readonly<Record<string, string>> = {
  instance: 'payments-host:9466',
  job: 'supervisor',
  child_id: 'ledger_sync',
  namespace: 'payments',
  pod: 'payments-worker-0',
  severity: 'page',
};

/** The labels an alert for this procedure carries in the examples: its `=` matchers, then every label it reads. */
export function exampleLabels(p: Procedure): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const m of procedureMatchers(p)) {
    if (m.op === '=') labels[m.name] = m.value;
    // A simple alternation (`page|critical`): its first branch.
    else if (m.op === '=~' && /^[A-Za-z0-9_.:-]+(\|[A-Za-z0-9_.:-]+)*$/.test(m.value)) labels[m.name] = m.value.split('|')[0]!;
  }
  const text = JSON.stringify({ target: p.target, steps: p.steps, escalation: p.escalation });
  for (const [, name] of text.matchAll(/\{\{\s*labels\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g))
    labels[name!] ??= EXAMPLE_VALUES[name!] ?? `example-${name}`;
  return labels;
}

export interface StepRun {
  /** The runbook's number (`3a` for an added step) and the rule's step name. */
  number: string;
  name: string;
  /** The runbook's words for the step (`description`). */
  runbook: string;
  /** What runs: `if <condition>: <action>`, rendered. */
  runs: string;
  /** What is checked afterwards, rendered; empty when the step only acts or only diagnoses. */
  verifies: string;
  deviation: string;
}

/** Each step of a procedure, rendered with the example labels. */
export function stepRuns(p: Procedure, labels: Record<string, string> = exampleLabels(p)): StepRun[] {
  const render = renderer(labels, p.vars);
  const text = (s: string) => fillHoles(s, labels, p.vars);
  const numbers = stepNumbers(p.steps);
  return p.steps.map((step, i) => ({
    number: numbers[i]!,
    name: step.name,
    runbook: text(step.description ?? ''),
    runs: runsText(step, render),
    verifies:
      step.expect === undefined
        ? ''
        : // A diagnosis (`verifies: false`) checks that the look worked; it confirms no fix (engine/run.ts).
          `${verifies(step) ? '' : 'diagnosis only: '}${safe(() => describeCheck(step.expect!.render(render)))}`,
    deviation: step.deviation !== undefined ? text(step.deviation) : '',
  }));
}

function runsText(step: Step, render: Render): string {
  const parts: string[] = [];
  if (step.when !== undefined) parts.push(`if ${safe(() => describeCheck(step.when!.render(render)))}:`);
  if (step.forEach !== undefined)
    parts.push(
      `for each element of ${step.forEach.step}'s \`${step.forEach.path}\`${step.forEach.where !== undefined ? ` where ${JSON.stringify(step.forEach.where)}` : ''}:`,
    );
  if (step.action !== undefined)
    parts.push(safe(() => `${step.action!.kind}: ${step.action!.describe(step.action!.render(render))}`));
  else parts.push('no action (verifies only)');
  return parts.join(' ');
}

/** Renders as a run would, for the example alert; what only a run has (`env`, `item`) shows as `<env.X>`. */
function renderer(labels: Record<string, string>, vars: Readonly<Record<string, VarValue>>): Render {
  const real = createRender({ labels, annotations: {}, vars, env: {} });
  const render = ((template: string, sink: Parameters<Render>[1]) => {
    try {
      return real(template, sink);
    } catch (err) {
      if (!(err instanceof TemplateError)) throw err;
      return fillHoles(template, labels, vars);
    }
  }) as Render;
  render.argv = (elements) => {
    try {
      return real.argv!(elements);
    } catch (err) {
      if (!(err instanceof TemplateError)) throw err;
      return elements.map((e) => fillHoles(e, labels, vars));
    }
  };
  return render;
}

function safe(f: () => string): string {
  try {
    return f();
  } catch (err) {
    return `(cannot be rendered: ${(err as Error).message})`;
  }
}

function fillHoles(text: string, labels: Record<string, string>, vars: Readonly<Record<string, VarValue>>): string {
  return parseTemplate(text)
    .parts.map((part) => {
      if (typeof part === 'string') return part;
      const bag = part.namespace === 'vars' ? vars : part.namespace === 'labels' ? labels : undefined;
      const value = bag !== undefined && Object.hasOwn(bag, part.name) ? bag[part.name] : undefined;
      return value === undefined
        ? `<${part.namespace}.${part.name}>`
        : Array.isArray(value)
          ? value.join(' ')
          : (value as string);
    })
    .join('');
}

function oneLine(text: string): string {
  return text.trim().replace(/\s*\n\s*/g, ' ');
}

/** A Markdown table cell: one line, pipes escaped, empty shown as a dash. */
function cell(text: string): string {
  const one = oneLine(text).replace(/\|/g, '\\|');
  return one === '' ? '—' : one;
}

const labelText = (labels: Record<string, string>) =>
  Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .join(', ');

/** For `remediator docs`: after a procedure's runbook table, what runs for each of its steps. */
export function renderWhatRuns(p: Procedure): string {
  const labels = exampleLabels(p);
  const lines = [
    `What remediator runs for an alert {${labelText(labels)}}, with the rule's vars:`,
    '',
    '| Step | remediator runs | verifies | where the real program differs |',
    '|---|---|---|---|',
  ];
  // The step cell is `1 name`, never a bare number: the runbook table above is the one with the runbook's rows.
  for (const s of stepRuns(p, labels))
    lines.push(`| ${cell(`${s.number} ${s.name}`)} | ${cell(s.runs)} | ${cell(s.verifies)} | ${cell(s.deviation)} |`);
  return lines.join('\n');
}

/** `remediator docs --format markdown-table`: every procedure's steps in one table (the README's). */
export function renderStepTable(procedures: readonly Procedure[]): string {
  const lines = [
    '| Runbook step | Runbook says | remediator runs (example alert) | verifies (the real signal) | where the real program differs |',
    '|---|---|---|---|---|',
  ];
  for (const p of procedures) {
    for (const s of stepRuns(p))
      lines.push(
        `| ${cell(`${p.id} ${s.number}`)} | ${cell(s.runbook)} | ${cell(s.runs)} | ${cell(s.verifies)} | ${cell(s.deviation)} |`,
      );
  }
  const examples = procedures.map((p) => `${p.id} {${labelText(exampleLabels(p))}}`).join('; ');
  lines.push('', `Example alerts: ${examples}. Vars: each rule's defaults (\`REMEDIATOR_VAR_<NAME>\` overrides them).`);
  return `${lines.join('\n')}\n`;
}
