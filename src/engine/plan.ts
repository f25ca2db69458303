/**
 * What a procedure would do for an alert, rendered, without running anything: for `remediator plan`, the
 * console's procedures page and dry runs. A template that cannot be filled safely shows why the step would fail.
 */
import { parseMatcher } from '../rules/match.js';
import type { Procedure } from '../rules/schema.js';
import { createRender } from '../template.js';

export interface PlannedStep {
  name: string;
  estimate?: number;
  when?: string;
  action?: string;
  forEach?: string;
  expect?: string;
  onFailure: string;
}

export interface Plan {
  target: string;
  steps: PlannedStep[];
}

export function planProcedure(
  p: Procedure,
  labels: Record<string, string>,
  annotations: Record<string, string> = {},
  env: Readonly<Record<string, string | undefined>> = process.env,
): Plan {
  const render = createRender({ labels, annotations, vars: p.vars, env });
  const safe = (f: () => string) => {
    try {
      return f();
    } catch (err) {
      return `!! ${(err as Error).message} (the step would fail without running)`;
    }
  };
  return {
    target: safe(() => render(p.target, 'target')),
    steps: p.steps.map((s) => ({
      name: s.name,
      ...(s.estimate !== undefined ? { estimate: s.estimate } : {}),
      ...(s.when ? { when: safe(() => s.when!.render(render).describe()) } : {}),
      ...(s.action ? { action: safe(() => s.action!.describe(s.action!.render(render))) } : {}),
      ...(s.forEach
        ? {
            forEach: `element of ${s.forEach.step}'s ${s.forEach.path}${s.forEach.where ? ` where ${JSON.stringify(s.forEach.where)}` : ''}`,
          }
        : {}),
      ...(s.expect ? { expect: safe(() => s.expect!.render(render).describe()) } : {}),
      onFailure: `${s.onFailure}${s.onFailure === 'retry' ? ` (${s.retries} more)` : ''}`,
    })),
  };
}

/** Example labels that satisfy a procedure's matchers (equality values, a regex's first alternative). */
export function exampleLabels(p: Procedure): Record<string, string> {
  const labels: Record<string, string> = { instance: 'example-host:9100', job: 'example' };
  for (const text of p.match) {
    let m;
    try {
      m = parseMatcher(text);
    } catch {
      continue;
    }
    if (m.op === '=') labels[m.name] = m.value;
    else if (m.op === '=~') labels[m.name] = (m.value.split('|')[0] ?? '').replace(/[\\^$.*+?()[\]{}]/g, '');
  }
  return labels;
}
