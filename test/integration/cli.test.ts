import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/remediator.js';

/** The built CLI as a user runs it: `node dist/cli.js …` (npm test builds first). */
function cli(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, ['dist/cli.js', ...args], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    env: { PATH: process.env.PATH, ...env },
    timeout: 30_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('cli (the built binary, as a real process)', () => {
  it('check lists every problem of every broken file as file:line: path: message and exits 1', () => {
    const r = cli(['check', '--rules', 'test/fixtures/rules']);
    expect(r.code).toBe(1);
    const problems = r.stderr.split('\n').filter((l) => l.startsWith('test/fixtures/rules/'));
    // One line per problem, across all files at once, each naming file, line and field path.
    expect(problems).toContain(
      'test/fixtures/rules/invalid-bad-duration.yaml:14: steps[1].expect.within: expected a duration like 10s, 1m30s or 500ms',
    );
    expect(problems).toContain(
      'test/fixtures/rules/invalid-bad-duration.yaml:5: budget.per: expected a duration like 10s, 1m30s or 500ms',
    );
    expect(
      problems.some((l) =>
        /^test\/fixtures\/rules\/invalid-unknown-action\.yaml:\d+: steps\[0\]\.action\.restart: unknown action kind/.test(l),
      ),
    ).toBe(true);
    expect(problems.some((l) => /invalid-promql\.yaml:\d+: steps\[0\]\.when\.promql: syntax error/.test(l))).toBe(true);
    expect(problems.some((l) => /invalid-matcher\.yaml:\d+: match\[1\]:/.test(l))).toBe(true);
    expect(new Set(problems.map((l) => l.split(':')[0])).size).toBeGreaterThanOrEqual(8);
    expect(r.stderr).toMatch(new RegExp(`^${problems.length} problems$`, 'm'));
  });

  it('check passes on the shipped rules and names a bad configuration variable', () => {
    const ok = cli(['check'], {
      ALERTMANAGER_URL: 'http://127.0.0.1:9093',
      ESCALATION_WEBHOOK_URL: 'http://127.0.0.1:9999/hook',
    });
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/^ok: 4 procedures \(P1-001, P1-002, P1-003, P1-004\)/);
    expect(ok.stderr).toBe('');
    const bad = cli(['check'], { PORT: 'ninety', WORKER_CONCURRENCY: '0' });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/PORT: /);
    expect(bad.stderr).toMatch(/WORKER_CONCURRENCY: /);
  });

  it('plan shows the procedure and its steps rendered with the alert, runs nothing, and refuses hostile values per step', () => {
    const dir = mkdtempSync(join(tmpdir(), 'remediator-plan-'));
    const alert = join(dir, 'alert.json');
    writeFileSync(
      alert,
      JSON.stringify({
        status: 'firing',
        labels: { alertname: 'DashboardIPCDisconnected', instance: '10.0.0.7:9100', severity: 'page' },
        annotations: {},
        startsAt: '2026-11-28T07:17:26.321Z',
        endsAt: '0001-01-01T00:00:00Z',
        fingerprint: 'd643a3465bce26c5',
      }),
    );
    const r = cli(['plan', alert], { REMEDIATOR_VAR_RELAY_PROCESS_PATTERN: 'relay-test' });
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/→ P1-003: Dashboard IPC Disconnected {2}target=10\.0\.0\.7:9100/);
    expect(r.stdout).toMatch(/3\. restart-relay/);
    expect(r.stdout).toMatch(/action: pgrep -f relay-test/);
    expect(r.stdout).toMatch(/supervisor_relay_process_up\{instance="10\.0\.0\.7:9100"\} == 1 .* within 1m/);
    expect(r.stdout).toMatch(/when: +step restart-relay/);

    writeFileSync(
      alert,
      JSON.stringify({
        labels: { alertname: 'Unknown' },
        status: 'firing',
        startsAt: '2026-11-28T07:17:26Z',
        fingerprint: '0000000000000001',
      }),
    );
    expect(cli(['plan', alert]).stdout).toMatch(/no procedure matches/);
  });

  it('docs renders the runbook tables and schema prints a JSON Schema', () => {
    const docs = cli(['docs']);
    expect(docs.code).toBe(0);
    expect(docs.stdout).toMatch(/^## P1-001: Supervisor Process Crash$/m);
    expect(docs.stdout).toMatch(/^\| Step \| Action \| Expected Metrics \| Estimated Duration \|$/m);
    const schema = JSON.parse(cli(['schema']).stdout) as { properties: Record<string, unknown> };
    expect(Object.keys(schema.properties)).toEqual(
      expect.arrayContaining(['id', 'match', 'target', 'steps', 'escalation', 'vars', 'budget']),
    );
  });

  it('an unknown command says so and exits 2', () => {
    const r = cli(['frobnicate']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown command "frobnicate"/);
  });
});
