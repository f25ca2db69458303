/**
 * `remediator docs`: the procedures rendered back into the runbook's own form, a table per procedure
 * (Step | Action | Expected Metrics | Estimated Duration), then the escalation and the total estimate.
 * Prose the runbook had (`description`, `expected`, `escalationText`) wins; otherwise the text is derived
 * from the spec, with the action registry's `describe`.
 */
import { parseTemplate, type VarValue } from '../template.js';
import type { AnyCheckUse } from './model.js';
import type { Escalation, Procedure, Step } from './schema.js';

/** `after`: more about each procedure, below its runbook table (`remediator docs` adds what really runs). */
export function renderRunbook(procedures: readonly Procedure[], after?: (p: Procedure) => string): string {
  return `${procedures.map((p) => (after ? `${renderProcedure(p)}\n\n${after(p)}` : renderProcedure(p))).join('\n\n')}\n`;
}

export function renderProcedure(p: Procedure): string {
  const text = (s: string) => fillHoles(s, p.vars);
  const lines = [`## ${p.id}: ${p.title}`, ''];
  if (p.description !== undefined) lines.push(oneLine(text(p.description)), '');
  lines.push('| Step | Action | Expected Metrics | Estimated Duration |', '|---|---|---|---|');
  const numbers = stepNumbers(p.steps);
  p.steps.forEach((step, i) => {
    const cells = [
      numbers[i]!,
      actionText(step, text),
      expectedText(step),
      step.estimate !== undefined ? formatEstimate(step.estimate) : '',
    ];
    lines.push(`| ${cells.map((c) => cell(text(c))).join(' | ')} |`);
  });
  lines.push('', `Escalation: ${oneLine(text(p.escalationText ?? escalationText(p.escalation)))}`, '', totalText(p));
  return lines.join('\n');
}

/** The runbook's step numbers: `added` steps take the number of the step before them plus a letter (`3a`). */
export function stepNumbers(steps: readonly Pick<Step, 'added'>[]): string[] {
  let n = 0;
  let extra = 0;
  return steps.map((step) => {
    if (step.added !== true) {
      n += 1;
      extra = 0;
      return String(n);
    }
    extra += 1;
    return `${n}${String.fromCharCode(96 + extra)}`;
  });
}

function actionText(step: Step, fill: (text: string) => string): string {
  if (step.description !== undefined) return step.description;
  const prefix = step.when !== undefined ? `If ${describeCheck(step.when)}: ` : '';
  const action = step.action;
  if (action === undefined) return `${prefix}Verify`;
  let filled: unknown = action.spec;
  try {
    // The action knows which of its fields are templates; fill them (vars, `<name>` for the rest) before describing.
    const render = Object.assign((template: string) => fill(template), {
      argv: (elements: readonly string[]) => elements.map((e) => fill(e)),
    });
    filled = action.render(render);
  } catch {
    // describe the spec as written
  }
  return `${prefix}${action.describe(filled)}`;
}

function expectedText(step: Step): string {
  if (step.expected !== undefined) return step.expected;
  return step.expect !== undefined ? describeCheck(step.expect) : '';
}

/** A check in the runbook's words: `supervisor_ipc_up == 1 within 10s`, `step restart-relay status failed`. */
export function describeCheck(c: AnyCheckUse): string {
  const { afterMs, withinMs, forMs } = c.timing;
  const parts = [c.check.explain?.(c.spec) ?? c.check.describe(c.spec)];
  if (afterMs !== undefined) parts.push(`after ${formatEstimate(afterMs)}`);
  if (withinMs !== undefined) parts.push(`within ${formatEstimate(withinMs)}`);
  if (forMs !== undefined) parts.push(`for ${formatEstimate(forMs)}`);
  return parts.join(' ');
}

function escalationText(entries: readonly Escalation[]): string {
  if (entries.length === 0) return 'none configured';
  return entries
    .map((e) => {
      const when = Array.isArray(e.when) ? e.when.join(' or ') : e.when;
      const attach = e.attach.length > 0 ? ` with ${e.attach.join(', ')}` : '';
      return `When ${when}, notify ${e.to.join(' and ')}${attach}: ${e.message.replace(/\.?$/, '.')}`;
    })
    .join(' ');
}

function totalText(p: Procedure): string {
  const estimates = p.steps.map((s) => s.estimate).filter((e): e is number => e !== undefined);
  const total = p.estimate ?? (estimates.length > 0 ? estimates.reduce((a, b) => a + b, 0) : undefined);
  if (total === undefined) return 'Total estimated duration: not estimated.';
  const sla = p.sla === undefined ? '' : ` (${total <= p.sla ? 'within' : 'over'} ${formatEstimate(p.sla)} SLA)`;
  return `Total estimated duration: ${formatEstimate(total)}${sla}.`;
}

/** The runbook's way: `3min`, `30s`, `1min30s`, `2h`. */
export function formatEstimate(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return ms < 1000 && ms > 0 ? `${ms}ms` : `${s}s`;
  const min = Math.floor(s / 60);
  const rest = s % 60;
  if (rest === 0 && min % 60 === 0 && min >= 120) return `${min / 60}h`;
  return rest === 0 ? `${min}min` : `${min}min${rest}s`;
}

/** A runbook reads better with the deployment's values than with holes: vars filled in, anything else `<name>`. */
function fillHoles(text: string, vars: Readonly<Record<string, VarValue>>): string {
  return parseTemplate(text)
    .parts.map((part) => {
      if (typeof part === 'string') return part;
      const value = part.namespace === 'vars' && Object.hasOwn(vars, part.name) ? vars[part.name] : undefined;
      return value === undefined ? `<${part.name}>` : Array.isArray(value) ? value.join(' ') : (value as string);
    })
    .join('');
}

function oneLine(text: string): string {
  return text.trim().replace(/\s*\n\s*/g, ' ');
}

/** A Markdown table cell: one line, pipes escaped. */
function cell(text: string): string {
  return oneLine(text).replace(/\|/g, '\\|');
}
