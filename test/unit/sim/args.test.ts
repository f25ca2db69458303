import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { fastRuleCopy } from '../../helpers/stack.js';
import { parseSupervisorArgs, toArgv, UsageError } from '../../sim/args.js';
import { parseMetrics } from '../../sim/client.js';

describe('supervisor command line', () => {
  it('has the runbook defaults', () => {
    const o = parseSupervisorArgs([]);
    expect(o).toMatchObject({
      socket: '/tmp/supervisor.sock',
      processName: 'supervisor',
      relayName: 'relay',
      children: 3,
      host: '127.0.0.1',
    });
    expect(o.journal).toBe(join(o.dumpDir, 'supervisor.journal'));
  });

  it('round-trips through toArgv', () => {
    const o = parseSupervisorArgs([
      '--metrics-port',
      '1234',
      '--admin-port',
      '1235',
      '--socket',
      '/tmp/x.sock',
      '--children',
      '5',
      '--dump-dir',
      '/tmp/d',
    ]);
    expect(parseSupervisorArgs(toArgv(o))).toEqual(o);
  });

  it('rejects bad values with the flag name', () => {
    expect(() => parseSupervisorArgs(['--children', 'many'])).toThrow(
      new UsageError('--children: expected an integer, got "many"'),
    );
    expect(() => parseSupervisorArgs(['--host', '0.0.0.0'])).toThrow(/--host: loopback only/);
    expect(() => parseSupervisorArgs(['--process-name', 'a-name-longer-than-15'])).toThrow(/--process-name/);
    expect(() => parseSupervisorArgs(['--bogus'])).toThrow(UsageError);
  });
});

describe('parseMetrics', () => {
  it('keys series exactly as exposed', () => {
    const m = parseMetrics('# HELP x y\n# TYPE x gauge\nsupervisor_up 1\nsupervisor_children{state="running"} 3\n');
    expect([...m]).toEqual([
      ['supervisor_up', 1],
      ['supervisor_children{state="running"}', 3],
    ]);
  });
});

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
