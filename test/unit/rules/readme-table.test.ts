import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { BEGIN, currentTable, END, splice } from '../../../scripts/readme-table.js';

const README = fileURLToPath(new URL('../../../README.md', import.meta.url));

describe('README: the runbook-step table is generated from the rules and never drifts', () => {
  it('equals `remediator docs --format markdown-table` over rules/ (regenerate: npm run docs:readme)', () => {
    const readme = readFileSync(README, 'utf8');
    expect(readme).toContain(BEGIN);
    expect(readme).toContain(END);
    // Comparing the whole file after a splice names the drifted rows in the diff.
    expect(readme, 'README.md table differs from the rules: run `npm run docs:readme` and commit').toBe(
      splice(readme, currentTable()),
    );
  });

  it('has one row per step of every shipped procedure, numbered as the runbook numbers them', () => {
    const rows = currentTable()
      .split('\n')
      .filter((l) => /^\| P\d-\d{3} /.test(l));
    expect(rows.length).toBeGreaterThanOrEqual(18);
    expect(rows.map((r) => /^\| (P\d-\d{3}) (\w+) \|/.exec(r)?.[1])).not.toContain(undefined);
  });
});
