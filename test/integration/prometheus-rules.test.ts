import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { beforeAll, describe, expect, it } from 'vitest';
import { runCommand } from '../helpers/processes.js';
import { assertStackBinaries, BINARIES, fastRuleCopy } from '../helpers/stack.js';

const RULES = 'rules/prometheus/supervisor.rules.yaml';
const RULE_TESTS = 'rules/prometheus/supervisor.rules.test.yaml';
const AM_CONFIG = 'deploy/alertmanager.yml';

interface Rule {
  alert: string;
  expr: string;
  for?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

const rules = (file: string): Rule[] =>
  (parse(readFileSync(file, 'utf8')) as { groups: { rules: Rule[] }[] }).groups.flatMap((g) => g.rules);

describe('Prometheus rules and Alertmanager config (promtool, amtool)', () => {
  beforeAll(() => assertStackBinaries());

  it('promtool test rules passes (each alert firing and not firing)', async () => {
    const r = await runCommand(BINARIES.promtool, ['test', 'rules', RULE_TESTS]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('SUCCESS');
  });

  it('promtool check rules passes', async () => {
    const r = await runCommand(BINARIES.promtool, ['check', 'rules', RULES]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
  });

  it('amtool check-config deploy/alertmanager.yml passes and routes every P1 alert to remediator', async () => {
    const r = await runCommand(BINARIES.amtool, ['check-config', AM_CONFIG]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    for (const alertname of ['SupervisorDown', 'ChildCrashLoop', 'DashboardIPCDisconnected', 'RuntimeStarvation']) {
      const t = await runCommand(BINARIES.amtool, [
        'config',
        'routes',
        'test',
        `--config.file=${AM_CONFIG}`,
        '--verify.receivers=remediator',
        `alertname=${alertname}`,
        'severity=page',
        'instance=host-a:9100',
      ]);
      expect(t.code, `${alertname}: ${t.stdout}${t.stderr}`).toBe(0);
    }
  });

  it('fires only on series remediator exporter writes (and up), never on the invented supervisor_* names', () => {
    const exported =
      /^supervisor_(ipc_up|ipc_state_ok|process_up|relay_process_up|relay_registration_socket_present|child_restart_limit_used|child_restart_limit_exhausted|child_operation)$/;
    for (const r of rules(RULES)) {
      const names = [...r.expr.matchAll(/\b([a-z_][a-z0-9_]*)\s*(?=[{=<>!)\s]|$)/g)].map((m) => m[1]!);
      for (const name of names.filter((n) => n.startsWith('supervisor_'))) expect(name, r.alert).toMatch(exported);
      expect(r.expr, r.alert).not.toMatch(/\babsent\s*\(/);
    }
  });

  it('has one alert per procedure, paging, with a runbook annotation and no procedure label', () => {
    const all = rules(RULES);
    expect(all.map((r) => [r.alert, r.annotations?.runbook])).toEqual([
      ['SupervisorDown', 'P1-001'],
      ['ChildCrashLoop', 'P1-002'],
      ['DashboardIPCDisconnected', 'P1-003'],
      ['RuntimeStarvation', 'P1-004'],
    ]);
    for (const r of all) {
      expect(r.labels).toEqual({ severity: 'page' });
      expect(r.for).toBeDefined();
      // No aggregation that would drop instance: no sum/avg/max/min/count by.
      expect(r.expr).not.toMatch(/\b(sum|avg|max|min|count)\s*(by|without)?\s*\(/);
    }
  });

  it('fastRuleCopy makes a valid copy with for: 0s and short windows', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'fast-rules-'));
    const out = fastRuleCopy(RULES, dir);
    const r = await runCommand(BINARIES.promtool, ['check', 'rules', out]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    const fast = rules(out);
    expect(fast.map((x) => x.for)).toEqual(['0s', '0s', '0s', '0s']);
    // Expressions are kept as they are (these have no range windows to shorten).
    expect(fast.map((x) => x.expr)).toEqual(rules(RULES).map((x) => x.expr));
    rmSync(dir, { recursive: true, force: true });
  });
});
