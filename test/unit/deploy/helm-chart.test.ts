import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { Ajv } from 'ajv';
import { parse, stringify } from 'yaml';
import { loadConfig } from '../../../src/config.js';
import { routeOf } from '../../../src/routes.js';
import { RuleFile } from '../../../src/rules/schema.js';
import { repo } from './k8s-objects.js';

/**
 * No helm binary is available here (none in Debian, none on npm), so the chart is checked statically:
 * values against values.schema.json (as `helm lint`/`install` would), every .Values path the templates read
 * exists in values.yaml, every include is defined, blocks are balanced. The RBAC rules are compared with the
 * action's API calls in rbac.test.ts; the same objects rendered by kustomize are schema-validated in kustomize.test.ts.
 */
const chart = new URL('helm/remediator/', repo);
const read = (p: string) => readFileSync(new URL(p, chart), 'utf8');
type Values = Record<string, unknown>;
const values = parse(read('values.yaml')) as Values;
const schema = JSON.parse(read('values.schema.json')) as object;
const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);

/** Helm's merge of a -f file over values.yaml: maps merge, everything else replaces, null deletes. */
function merge(base: Values, over: Values): Values {
  const out: Values = { ...base };
  for (const [k, v] of Object.entries(over)) {
    if (v === null) delete out[k];
    else if (
      typeof v === 'object' &&
      !Array.isArray(v) &&
      typeof base[k] === 'object' &&
      base[k] !== null &&
      !Array.isArray(base[k])
    )
      out[k] = merge(base[k] as Values, v as Values);
    else out[k] = v;
  }
  return out;
}

const ciFiles = readdirSync(new URL('ci/', chart)).filter((f) => f.endsWith('.yaml'));
const templates = readdirSync(new URL('templates/', chart), { recursive: true, encoding: 'utf8' })
  .filter((f) => /\.(yaml|tpl|txt)$/.test(f))
  .map((f) => ({ file: f, text: read(`templates/${f}`) }));

const errors = () => (validate.errors ?? []).map((e) => `${e.instancePath} ${e.message}`).join('; ');

describe('helm/remediator', () => {
  it('Chart.yaml is a v2 application chart with semver version and appVersion', () => {
    const meta = parse(read('Chart.yaml')) as Record<string, string>;
    expect(meta).toMatchObject({ apiVersion: 'v2', name: 'remediator', type: 'application' });
    expect(meta.version).toMatch(/^\d+\.\d+\.\d+$/);
    expect(meta.appVersion).toMatch(/^\d+\.\d+\.\d+$/);
  });

  // Secure by default (issue 9): the chart installs nothing without a token, as remediator starts nothing without one.
  it('values.yaml alone is refused: a token (webhookToken.value or webhookToken.existingSecret) is required', () => {
    expect(validate(values)).toBe(false);
    expect(JSON.stringify(validate.errors)).toContain('webhookToken');
    for (const value of ['', 'short', '   ']) expect(validate(merge(values, { webhookToken: { value } }))).toBe(false);
    expect(validate(merge(values, { webhookToken: { existingSecret: '' } }))).toBe(false);
  });

  it('values.yaml plus a token (by value, or an existing Secret) validates against values.schema.json', () => {
    expect(validate(merge(values, { webhookToken: { value: 'a-token-of-16-chars-or-more' } })), errors()).toBe(true);
    expect(validate(merge(values, { webhookToken: { existingSecret: 'remediator-token' } })), errors()).toBe(true);
  });

  it('the templates refuse to render without a token and always pass WEBHOOK_TOKEN from the Secret', () => {
    const helpers = templates.find((t) => t.file === '_helpers.tpl')!.text;
    const deployment = templates.find((t) => t.file === 'deployment.yaml')!.text;
    expect(helpers).toMatch(
      /define "remediator\.requireToken"[\s\S]*?if not \(include "remediator\.hasToken" \.\)[\s\S]*?fail "webhookToken/,
    );
    expect(helpers).toMatch(
      /define "remediator\.hasToken"[\s\S]*?or \.Values\.webhookToken\.existingSecret \.Values\.webhookToken\.value/,
    );
    expect(
      deployment.split('\n')[deployment.split('\n').findIndex((l) => !l.startsWith('{{- /*') && /^\{\{-? include/.test(l))],
    ).toBe('{{- include "remediator.requireToken" . }}');
    // WEBHOOK_TOKEN is set unconditionally (no `if hasToken` around it).
    const env = /define "remediator\.env"[\s\S]*?\{\{- end \}\}\n\{\{- end \}\}/.exec(helpers)![0];
    expect(env).toMatch(/\n- name: WEBHOOK_TOKEN\n {2}valueFrom:\n {4}secretKeyRef:/);
    expect(env).not.toMatch(/if include "remediator\.hasToken"[^\n]*\n- name: WEBHOOK_TOKEN/);
  });

  it.each(ciFiles)('ci/%s, merged over values.yaml as helm does, validates against values.schema.json', (file) => {
    expect(validate(merge(values, parse(read(`ci/${file}`)) as Values)), errors()).toBe(true);
  });

  it.each([
    [{ mode: 'both' }, 'mode'],
    [{ webhookToken: { value: 'short' } }, 'webhookToken'],
    [{ webhookToken: { value: '', existingSecret: '' } }, 'webhookToken'],
    [{ redis: { url: 'http://redis:6379' } }, 'redis'],
    [{ rbac: { actions: { rolloutRestart: true, scale: true, deletePod: true, execInPod: true, impersonate: true } } }, 'rbac'],
    [{ replicas: 3 }, 'additional'],
    [{ config: { shutdownTimeoutSeconds: '25s' } }, 'shutdownTimeoutSeconds'],
  ])('the schema rejects %j', (override, where) => {
    const withToken = merge(values, { webhookToken: { value: 'a-token-of-16-chars-or-more' } });
    expect(validate(merge(withToken, override as Values))).toBe(false);
    expect(JSON.stringify(validate.errors)).toContain(where);
  });

  it.each(ciFiles)('ci/%s: every rule file given by value is a valid rule file', (file) => {
    const files = (parse(read(`ci/${file}`)) as { rules?: { files?: Record<string, string> } }).rules?.files ?? {};
    for (const [name, text] of Object.entries(files)) {
      const parsed = RuleFile.safeParse(parse(text));
      expect(parsed.success, `${name}: ${parsed.error?.message}`).toBe(true);
    }
  });

  it('every .Values path the templates read exists in values.yaml', () => {
    const missing: string[] = [];
    for (const { file, text } of templates) {
      for (const [, path] of text.matchAll(/\$?\.Values((?:\.[A-Za-z_][A-Za-z0-9_]*)+)/g)) {
        let at: unknown = values;
        for (const key of path!.slice(1).split('.')) {
          if (typeof at !== 'object' || at === null || !(key in at)) {
            missing.push(`${file}: .Values${path}`);
            break;
          }
          at = (at as Values)[key];
        }
      }
    }
    expect(missing).toEqual([]);
  });

  it('the per-role values the Deployment template reads (index $.Values $role) exist for every role', () => {
    const deployment = templates.find((t) => t.file === 'deployment.yaml')!.text;
    const fields = new Set([...deployment.matchAll(/\$c\.([A-Za-z]+)/g)].map((m) => m[1]!));
    for (const role of ['serve', 'receiver', 'worker'])
      for (const f of fields) expect(values[role], `${role}.${f}`).toHaveProperty(f);
  });

  it('every include names a defined template, and every block is closed', () => {
    const all = templates.map((t) => t.text).join('\n');
    const defined = new Set([...all.matchAll(/\{\{-? define "([^"]+)"/g)].map((m) => m[1]));
    for (const [, name] of all.matchAll(/(?:include|template) "([^"]+)"/g)) expect(defined, name).toContain(name);
    for (const { file, text } of templates) {
      const code = text.replace(/\{\{-?\s*\/\*[\s\S]*?\*\/\s*-?\}\}/g, '');
      const opens = [...code.matchAll(/\{\{-?\s*(if|range|with|define)\b/g)].length;
      const ends = [...code.matchAll(/\{\{-?\s*end\s*-?\}\}/g)].length;
      expect(ends, `${file}: {{ end }} count`).toBe(opens);
    }
  });

  const overrides: [string, Values][] = [
    ['values.yaml', {}],
    ...ciFiles.map((f): [string, Values] => [`ci/${f}`, parse(read(`ci/${f}`)) as Values]),
  ];
  it.each(overrides)('%s: terminationGracePeriodSeconds exceeds the worker shutdown timeout', (_file, over) => {
    const v = merge(values, over) as { terminationGracePeriodSeconds: number; config: { shutdownTimeoutSeconds: number } };
    expect(v.terminationGracePeriodSeconds).toBeGreaterThan(v.config.shutdownTimeoutSeconds);
  });

  it('the chart refuses to render a grace period not above the shutdown timeout, and probes /healthz and /readyz', () => {
    const deployment = templates.find((t) => t.file === 'deployment.yaml')!.text;
    expect(deployment).toMatch(
      /if le \(int \.Values\.terminationGracePeriodSeconds\) \(int \.Values\.config\.shutdownTimeoutSeconds\)[\s\S]*?fail /,
    );
    expect(deployment).toMatch(/livenessProbe:\s*\n\s*httpGet: \{ path: \/healthz/);
    expect(deployment).toMatch(/readinessProbe:\s*\n\s*httpGet: \{ path: \/readyz/);
  });

  // Routing by target: routing.routes becomes the ConfigMap's routes.yaml (toYaml of routes and default), mounted as
  // ROUTES_FILE on every role; routing.workerRoutes becomes WORKER_ROUTES. What the chart writes is what remediator reads.
  it('routing: the table the chart mounts as ROUTES_FILE is one remediator reads, and WORKER_ROUTES is checked against it', () => {
    const token = { webhookToken: { value: 'a-token-of-sixteen-or-more' } };
    const routing = {
      routes: { 'edge-1': ['payments-host-1'], 'edge-2': ['payments-host-2'] },
      workerRoutes: ['default', 'edge-1'],
    };
    const v = merge(values, { ...token, routing }) as { routing: { routes: object; default: string; workerRoutes: string[] } };
    expect(validate(v), errors()).toBe(true);
    const file = stringify({ routes: v.routing.routes, default: v.routing.default });
    const config = loadConfig(
      { ROUTES_FILE: '/etc/remediator/routes/routes.yaml', WORKER_ROUTES: v.routing.workerRoutes.join(',') },
      () => file,
    );
    expect(routeOf(config.routes, 'payments-host-2')).toBe('edge-2');
    expect(routeOf(config.routes, 'elsewhere')).toBe('default');
    expect(config.WORKER_ROUTES).toEqual(['default', 'edge-1']);
    // The schema refuses what remediator would refuse at start: a route name that cannot be a queue's, no worker route.
    for (const bad of [{ routes: { 'Edge 1': ['h'] } }, { routes: { a: [] } }, { workerRoutes: [] }, { default: 'a:b' }])
      expect(validate(merge(values, { ...token, routing: { ...v.routing, ...bad } })), JSON.stringify(bad)).toBe(false);
    // The template mounts the file where ROUTES_FILE points, on every role, only when there is a table.
    const helpers = templates.find((t) => t.file === '_helpers.tpl')!.text;
    expect(helpers).toMatch(
      /if \.Values\.routing\.routes \}\}\n- name: ROUTES_FILE\n {2}value: \/etc\/remediator\/routes\/routes\.yaml/,
    );
    const deployment = templates.find((t) => t.file === 'deployment.yaml')!.text;
    expect(deployment).toMatch(/- name: routes\n\s+mountPath: \/etc\/remediator\/routes\n/);
    const configMap = templates.find((t) => t.file === 'configmap-routes.yaml')!.text;
    expect(configMap).toContain('routes.yaml: |');
    expect(configMap).toContain('toYaml (dict "routes" .Values.routing.routes "default" .Values.routing.default)');
  });

  it('has every object the issue asks for', () => {
    const kinds = new Set(templates.flatMap((t) => [...t.text.matchAll(/^kind: (\w+)/gm)].map((m) => m[1])));
    for (const kind of [
      'Deployment',
      'Service',
      'ServiceAccount',
      'Role',
      'RoleBinding',
      'ClusterRole',
      'ClusterRoleBinding',
      'ConfigMap',
      'Secret',
      'PodDisruptionBudget',
      'HorizontalPodAutoscaler',
      'ServiceMonitor',
      'PrometheusRule',
      'NetworkPolicy',
    ]) {
      expect(kinds).toContain(kind);
    }
  });

  it('the PrometheusRule carries the supervisor alert rules (the copy equals rules/prometheus/supervisor.rules.yaml when that exists)', () => {
    const copy = parse(read('files/supervisor.rules.yaml')) as { groups: { rules: { alert?: string }[] }[] };
    const alerts = copy.groups.flatMap((g) => g.rules.map((r) => r.alert));
    for (const a of ['SupervisorDown', 'DashboardIPCDisconnected']) expect(alerts).toContain(a);
    const source = new URL('rules/prometheus/supervisor.rules.yaml', repo);
    if (existsSync(source)) expect(copy.groups).toEqual((parse(readFileSync(source, 'utf8')) as { groups: unknown }).groups);
  });
});
