/**
 * The living runbook: `remediator docs` (renderRunbook over the shipped rules) must say what the operations
 * runbook (docs/runbook.md, the project's specification, kept in the repository) says, step by step: every step's action,
 * expected metrics and estimated duration, the escalation line and the total estimate.
 *
 * Both documents are parsed into the same shape and compared field by field, so a failure names the
 * procedure, the step and the column that drifted.
 */
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { renderRunbook } from '../../../src/rules/docs.js';
import { loadRules } from '../../../src/rules/load.js';

const REPO_ROOT = fileURLToPath(new URL('../../..', import.meta.url));
/** The operations runbook, in the repository (the tests read nothing outside it). */
const RUNBOOK = fileURLToPath(new URL('../../../docs/runbook.md', import.meta.url));
const RULES_DIR = fileURLToPath(new URL('../../../rules', import.meta.url));

interface StepRow {
  step: number;
  action: string;
  expected: string;
  duration: string;
}

interface ProcedureDoc {
  id: string;
  title: string;
  steps: StepRow[];
  escalation: string;
  /** "12min" */
  total: string;
  /** "(within 15min SLA)" when the document says it. */
  sla?: string;
}

const PROCEDURE_HEADING = /^(?:#+\s*)?(P\d-\d{3}):\s*(.+?)\s*$/;
const ROW = /^\|(.*)\|\s*$/;

/** Splits a Markdown table row into its cells, honouring `\|` inside a cell. */
function cells(row: string): string[] {
  const inner = ROW.exec(row.trim())?.[1] ?? '';
  return inner.split(/(?<!\\)\|/).map((c) => c.trim().replace(/\\\|/g, '|'));
}

/**
 * Parses a runbook in either spelling: the source document (`P1-001: Title` lines, the escalation and the
 * total on one line or two) and the rendered one (`## P1-001: Title`, blank lines between parts).
 */
function parseRunbook(text: string): ProcedureDoc[] {
  const out: ProcedureDoc[] = [];
  let current: ProcedureDoc | undefined;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const heading = PROCEDURE_HEADING.exec(line);
    if (heading !== null) {
      current = { id: heading[1]!, title: heading[2]!, steps: [], escalation: '', total: '' };
      out.push(current);
      continue;
    }
    if (current === undefined) continue;
    if (ROW.test(line)) {
      const c = cells(line);
      if (!/^\d+$/.test(c[0] ?? '')) continue; // header and separator rows
      if (c.length !== 4) throw new Error(`${current.id}: a step row needs four cells: ${line}`);
      current.steps.push({ step: Number(c[0]), action: c[1]!, expected: c[2]!, duration: c[3]! });
      continue;
    }
    const escalation = /^Escalation:\s*(.*?)\s*(?=Total estimated duration:|$)/.exec(line);
    if (escalation !== null) current.escalation = escalation[1]!;
    const total = /Total estimated duration:\s*(\S+?)(?:\s*(\(within \d+\w+ SLA\)))?\.?\s*$/.exec(line);
    if (total !== null) {
      current.total = total[1]!;
      if (total[2] !== undefined) current.sla = total[2];
    }
  }
  return out;
}

describe('living runbook: `remediator docs` renders the runbook (docs/runbook.md)', () => {
  it('finds the runbook in the repository', () => {
    expect(existsSync(RUNBOOK), `${RUNBOOK} (in the repository, ${REPO_ROOT})`).toBe(true);
  });

  const runbook = existsSync(RUNBOOK) ? parseRunbook(readFileSync(RUNBOOK, 'utf8')) : [];
  // No REMEDIATOR_VAR_* from the environment: the docs show the shipped defaults.
  const { procedures, problems } = loadRules(RULES_DIR, {});
  const rendered = parseRunbook(renderRunbook(procedures));

  it('loads the shipped rules without a problem, one per runbook procedure', () => {
    expect(problems).toEqual([]);
    expect(runbook.map((p) => p.id)).toEqual(['P1-001', 'P1-002', 'P1-003', 'P1-004']);
    expect(rendered.map((p) => p.id)).toEqual(runbook.map((p) => p.id));
  });

  describe.each(runbook.map((p) => [p.id, p] as const))('%s', (id, spec) => {
    const doc = () => {
      const d = rendered.find((p) => p.id === id);
      expect(d, `remediator docs renders no ${id}`).toBeDefined();
      return d!;
    };

    it('has the runbook title and the same number of steps', () => {
      expect(doc().title).toBe(spec.title);
      expect(doc().steps.map((s) => s.step)).toEqual(spec.steps.map((s) => s.step));
    });

    it.each(spec.steps.map((s) => [s.step, s] as const))(
      'step %i: action, expected metrics and duration as in the runbook',
      (_n, want) => {
        const got = doc().steps.find((s) => s.step === want.step);
        expect(got, `${id} step ${want.step} is missing`).toBeDefined();
        expect({ id, step: want.step, action: got!.action }).toEqual({ id, step: want.step, action: want.action });
        expect({ id, step: want.step, expected: got!.expected }).toEqual({ id, step: want.step, expected: want.expected });
        expect({ id, step: want.step, duration: got!.duration }).toEqual({ id, step: want.step, duration: want.duration });
      },
    );

    it('has the runbook escalation line and total estimated duration', () => {
      expect(spec.escalation, `the runbook has an escalation line for ${id}`).not.toBe('');
      expect(doc().escalation).toBe(spec.escalation);
      expect(doc().total).toBe(spec.total);
      // The runbook names the SLA only for P1-001; where it does, the rendering must agree.
      if (spec.sla !== undefined) expect(doc().sla).toBe(spec.sla);
    });

    it('the step estimates add up to no more than the total, and the total is within the 15min SLA', () => {
      const minutes = (d: string) => Number(/^(\d+)min$/.exec(d)?.[1] ?? NaN);
      const sum = spec.steps.reduce((a, s) => a + minutes(s.duration), 0);
      const procedure = procedures.find((p) => p.id === id)!;
      expect(procedure.estimate).toBe(minutes(spec.total) * 60_000);
      expect(procedure.sla).toBe(15 * 60_000);
      expect(minutes(spec.total)).toBeLessThanOrEqual(15);
      expect(sum).toBe(minutes(spec.total));
    });
  });
});
