/** The e2e stack's fast copy of the alert rules (test/helpers/stack.ts): `for:` and range windows shortened. */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { fastRuleCopy } from '../../helpers/stack.js';

describe('fastRuleCopy', () => {
  // Note: a window-like text inside a label-value literal is rewritten too; keep such text out of rule exprs.
  it('sets for: and every range window, leaving the rest alone', () => {
    const dir = mkdtempSync(join(tmpdir(), 'fast-unit-'));
    const src = join(dir, 'r.yaml');
    writeFileSync(
      src,
      'groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: rate(x[1m]) == 0 and increase(y[10m]) > 3 and z{a="[1m]"} offset 5m\n        for: 2m\n        labels: {severity: page}\n      - record: r\n        expr: sum(rate(x[30s]))\n',
    );
    const out = fastRuleCopy(src, join(dir, 'out'), { for: '0s', window: '3s' });
    const doc = parse(readFileSync(out, 'utf8')) as { groups: { rules: Record<string, unknown>[] }[] };
    const [a, r] = doc.groups[0]?.rules ?? [];
    expect(a).toEqual({
      alert: 'A',
      expr: 'rate(x[3s]) == 0 and increase(y[3s]) > 3 and z{a="[3s]"} offset 5m',
      for: '0s',
      labels: { severity: 'page' },
    });
    expect(r).toEqual({ record: 'r', expr: 'sum(rate(x[3s]))' });
    rmSync(dir, { recursive: true, force: true });
  });
});
