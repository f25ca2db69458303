import { execFileSync, spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { readFileSync } from 'node:fs';
import { repoPath } from './k8s-objects.js';

const promtool = spawnSync('promtool', ['--version']).status === 0;

type ScrapeConfig = { job_name: string; relabel_configs?: { target_label?: string; replacement?: string }[] };

describe('deploy/prometheus', () => {
  it('prometheus.yml loads the supervisor alert rules and scrapes job="supervisor", which the alerts select', () => {
    const config = parse(readFileSync(repoPath('deploy/prometheus/prometheus.yml'), 'utf8')) as {
      rule_files: string[];
      scrape_configs: ScrapeConfig[];
    };
    expect(config.rule_files).toEqual([
      '../../rules/prometheus/supervisor.rules.yaml',
      '../../rules/prometheus/remediator.rules.yaml',
    ]);
    expect(config.scrape_configs.map((s) => s.job_name)).toEqual(expect.arrayContaining(['supervisor', 'remediator']));
  });

  it('kubernetes-scrape.yml gives supervisor pods job="supervisor" and the namespace and pod labels the Kubernetes rule variants use', () => {
    const configs = parse(readFileSync(repoPath('deploy/prometheus/kubernetes-scrape.yml'), 'utf8')) as ScrapeConfig[];
    const pods = configs.find((s) => s.job_name === 'supervisor-pods');
    expect(pods?.relabel_configs?.map((r) => r.target_label)).toEqual(expect.arrayContaining(['namespace', 'pod', 'job']));
    expect(pods?.relabel_configs?.find((r) => r.target_label === 'job')?.replacement).toBe('supervisor');
  });

  // promtool comes with Debian's prometheus package (installed for the e2e tests); without it there is nothing to run.
  it.skipIf(!promtool)('prometheus.yml passes promtool check config (rule files included)', () => {
    const out = execFileSync('promtool', ['check', 'config', repoPath('deploy/prometheus/prometheus.yml')], { encoding: 'utf8' });
    expect(out).toMatch(/SUCCESS/);
  });

  it("remediator's self-monitoring rules pass promtool check rules and their promtool unit tests", () => {
    if (!promtool) throw new Error('promtool not found: apt-get install -y --no-install-recommends prometheus');
    const check = spawnSync('promtool', ['check', 'rules', repoPath('rules/prometheus/remediator.rules.yaml')], {
      encoding: 'utf8',
    });
    expect(check.status, check.stdout + check.stderr).toBe(0);
    const test = spawnSync('promtool', ['test', 'rules', repoPath('rules/prometheus/remediator.rules.test.yaml')], {
      encoding: 'utf8',
    });
    expect(test.status, test.stdout + test.stderr).toBe(0);
    expect(test.stdout).toMatch(/SUCCESS/);
  });
});
