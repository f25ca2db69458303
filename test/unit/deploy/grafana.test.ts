import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { createMetrics } from '../../../src/metrics.js';
import { promqlSyntaxErrors } from '../../../src/checks/promql-syntax.js';
import { repoPath } from './k8s-objects.js';

type Panel = { type: string; title: string; targets?: { expr: string }[]; panels?: Panel[] };
const dashboard = JSON.parse(readFileSync(repoPath('deploy/grafana/remediator.json'), 'utf8')) as { panels: Panel[] };
const schema = JSON.parse(readFileSync(repoPath('test/fixtures/grafana/dashboard.schema.json'), 'utf8')) as object;
const panels = dashboard.panels.flatMap((p) => [p, ...(p.panels ?? [])]).filter((p) => p.type !== 'row');
const exprs = panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr })));

/** Grafana's variables replaced by what they stand for, so the query parses as Prometheus will see it. */
const asPromql = (expr: string) =>
  expr.replaceAll('$__rate_interval', '1m').replaceAll('$__range', '6h').replaceAll('$job', 'remediator');

/** Every metric name remediator's registry exposes (histograms with their _bucket/_count/_sum series). */
async function exportedNames(): Promise<Set<string>> {
  const metrics = createMetrics([{ id: 'P1-001', steps: [{ name: 's', estimate: 1000 }] }]);
  const names = new Set<string>();
  for (const m of await metrics.registry.getMetricsAsJSON()) {
    names.add(m.name);
    if (String(m.type) === 'histogram') for (const s of ['_bucket', '_count', '_sum']) names.add(m.name + s);
  }
  return names;
}
/** Metric names in a query: label lists (`by (…)`) and matchers (`{…}`) left out, they hold label names. */
const metricNames = (expr: string) => [
  ...new Set(
    expr.replace(/\b(?:by|without)\s*\([^)]*\)|\{[^}]*\}/g, ' ').match(/\b(?:remediator|process|nodejs)_[a-z0-9_]+\b/g) ?? [],
  ),
];

describe('deploy/grafana/remediator.json', () => {
  it('validates against the Grafana dashboard JSON schema', () => {
    const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);
    const ok = validate(dashboard);
    expect(ok, (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`).join('; ')).toBe(true);
  });

  it('every query parses as PromQL and reads only metrics remediator exports, under their real names', async () => {
    const names = await exportedNames();
    expect(exprs.length).toBeGreaterThan(15);
    for (const { panel, expr } of exprs) {
      expect(promqlSyntaxErrors(asPromql(expr)), `${panel}: ${expr}`).toEqual([]);
      for (const name of metricNames(expr)) expect(names, `${panel}: ${name}`).toContain(name);
    }
  });

  it('covers runs, outcomes, step durations against estimates, queue depth and webhook latency', () => {
    const all = exprs.map((e) => e.expr).join('\n');
    expect(all).toMatch(/remediator_runs_total/);
    expect(all).toMatch(/by \(outcome\)/);
    expect(all).toMatch(/remediator_step_duration_seconds_bucket/);
    expect(all).toMatch(/remediator_step_estimate_seconds/);
    expect(all).toMatch(/remediator_queue_jobs/);
    expect(all).toMatch(/remediator_webhook_duration_seconds_bucket/);
    expect(all).toMatch(/remediator_run_sla_ratio/);
  });
});

describe('rules/prometheus/remediator.rules.yaml (self-monitoring)', () => {
  const rules = parse(readFileSync(repoPath('rules/prometheus/remediator.rules.yaml'), 'utf8')) as {
    groups: { rules: { alert: string; expr: string; labels: { severity: string } }[] }[];
  };
  const all = rules.groups.flatMap((g) => g.rules);

  it('reads only metrics remediator exports, and every alert has a severity', async () => {
    const names = await exportedNames();
    names.add('up');
    for (const r of all) {
      expect(['warning', 'critical']).toContain(r.labels.severity);
      for (const name of metricNames(r.expr)) expect(names, `${r.alert}: ${name}`).toContain(name);
    }
    expect(all.map((r) => r.alert)).toEqual(
      expect.arrayContaining([
        'RemediatorDown',
        'RemediatorRuleReloadFailed',
        'RemediatorQueueStuck',
        'RemediatorEscalationFailing',
      ]),
    );
  });

  it('the Helm chart ships the same rules in its PrometheusRule', () => {
    const copy = parse(readFileSync(repoPath('helm/remediator/files/remediator.rules.yaml'), 'utf8')) as unknown;
    expect(copy).toEqual(rules);
    expect(readFileSync(repoPath('helm/remediator/templates/prometheusrule.yaml'), 'utf8')).toMatch(
      /files\/remediator\.rules\.yaml/,
    );
  });
});
