import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { repoPath } from './k8s-objects.js';

const AMTOOL = '/usr/bin/amtool';
const CONFIG = repoPath('deploy/alertmanager.yml');

/** `amtool config routes test`: the receivers Alertmanager would pick for these labels. */
function receivers(labels: Record<string, string>): string[] {
  const r = spawnSync(
    AMTOOL,
    ['config', 'routes', 'test', `--config.file=${CONFIG}`, ...Object.entries(labels).map(([k, v]) => `${k}=${v}`)],
    {
      encoding: 'utf8',
    },
  );
  if (r.error)
    throw new Error(`amtool not found: apt-get install -y --no-install-recommends prometheus-alertmanager (${r.error.message})`);
  return r.stdout.trim().split(',').filter(Boolean);
}

describe('deploy/alertmanager.yml: escalations reach people, never remediator', () => {
  it.each<Record<string, string>>([
    { alertname: 'RemediationEscalated', severity: 'page', procedure: 'P1-003', target: 'host-a:9100', reason: 'failed' },
    { alertname: 'RemediationPaused', severity: 'page', reason: 'paused' },
    { alertname: 'RemediatorDown', severity: 'critical', job: 'remediator' },
    { alertname: 'RemediatorEscalationFailing', severity: 'critical', procedure: 'P1-001', to: 'alertmanager' },
  ])('$alertname goes to the oncall receiver only', (labels) => {
    expect(receivers(labels)).toEqual(['oncall']);
  });

  it('the P1 alerts still go to remediator', () => {
    expect(receivers({ alertname: 'DashboardIPCDisconnected', severity: 'page', instance: 'host-a:9100' })).toEqual([
      'remediator',
    ]);
  });
});
