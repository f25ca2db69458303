import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { parse, parseAllDocuments } from 'yaml';
import { KubernetesSpec, kubernetes } from '../../../src/actions/kubernetes.js';
import { FakeKubeApi, exitStatus, startFakeKubeApi } from '../../helpers/fake-kube-api.js';
import { repo } from './k8s-objects.js';

/**
 * The RBAC we grant must be exactly what the kubernetes action uses. Every operation runs against the fake
 * API server; each recorded request is turned into the (apiGroup, resource, verb) Kubernetes authorizes it as;
 * the union must equal the rules in the chart and in the kustomize base, no more and no less.
 */
interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}
const expand = (rules: Rule[]) =>
  new Set(rules.flatMap((r) => r.apiGroups.flatMap((g) => r.resources.flatMap((res) => r.verbs.map((v) => `${g}|${res}|${v}`)))));

/** Kubernetes' request-info rules, for the paths the action uses. */
function authorizedAs(method: string, path: string, upgrade: boolean): string[] {
  const m = /^\/(?:api\/v1|apis\/([^/]+)\/[^/]+)\/namespaces\/[^/]+\/([^/]+)(?:\/([^/]+)(?:\/([^/]+))?)?$/.exec(path);
  if (!m) throw new Error(`unexpected path ${path}`);
  const [, group = '', resource, name, subresource] = m;
  const res = subresource ? `${resource}/${subresource}` : resource!;
  // The exec WebSocket upgrade is a GET: authorized as "create" since Kubernetes 1.30 and as "get" before.
  if (upgrade) return [`${group}|${res}|create`, `${group}|${res}|get`];
  const verb = { PATCH: 'patch', DELETE: 'delete', PUT: 'update', POST: 'create', GET: name ? 'get' : 'list' }[method];
  return [`${group}|${res}|${verb}`];
}

/** Every operation of the action, with each variant that reaches a different resource. */
const operations = [
  { rolloutRestart: { kind: 'Deployment', namespace: 'sup', name: 'supervisor' } },
  { rolloutRestart: { kind: 'StatefulSet', namespace: 'sup', name: 'supervisor' } },
  { rolloutRestart: { kind: 'DaemonSet', namespace: 'sup', name: 'supervisor' } },
  { scale: { kind: 'Deployment', namespace: 'sup', name: 'worker', replicas: 2 } },
  { scale: { kind: 'StatefulSet', namespace: 'sup', name: 'worker', replicas: 2 } },
  { deletePod: { namespace: 'sup', name: 'supervisor-0' } },
  { execInPod: { namespace: 'sup', pod: 'supervisor-0', command: ['true'] } },
  { execInPod: { namespace: 'sup', selector: { app: 'supervisor' }, command: ['true'] } },
];

/** The chart's rules with every rbac.actions.* guard on: the guard lines removed, the rest is YAML. */
function chartRules(): Rule[] {
  const helpers = readFileSync(new URL('helm/remediator/templates/_helpers.tpl', repo), 'utf8');
  const body = /\{\{- define "remediator\.rbacRules" -\}\}\n([\s\S]*?)\{\{- end \}\}\n\{\{- end \}\}/.exec(helpers)?.[1];
  if (!body) throw new Error('remediator.rbacRules not found in _helpers.tpl');
  const guards = body.match(/^\{\{-? (if|end)\b.*\}\}$/gm) ?? [];
  for (const g of guards)
    expect(g).toMatch(/^\{\{- (if \.Values\.rbac\.actions\.(rolloutRestart|scale|deletePod|execInPod)|end) \}\}$/);
  return parse(body.replace(/^\{\{-? (if|end)\b.*\}\}$/gm, '')) as Rule[];
}

describe('RBAC: exactly the API calls of the kubernetes action (against a fake Kubernetes API server)', () => {
  let api: FakeKubeApi;
  const saved = process.env.KUBECONFIG;
  const used = new Set<string>();

  beforeAll(async () => {
    api = await startFakeKubeApi();
    process.env.KUBECONFIG = api.writeKubeconfig();
    const ok = { status: 200, body: { kind: 'X', metadata: { name: 'x' } } };
    for (const [method, path] of [
      ['PATCH', '/apis/apps/v1/namespaces/sup/deployments/supervisor'],
      ['PATCH', '/apis/apps/v1/namespaces/sup/statefulsets/supervisor'],
      ['PATCH', '/apis/apps/v1/namespaces/sup/daemonsets/supervisor'],
      ['PATCH', '/apis/apps/v1/namespaces/sup/deployments/worker/scale'],
      ['PATCH', '/apis/apps/v1/namespaces/sup/statefulsets/worker/scale'],
      ['DELETE', '/api/v1/namespaces/sup/pods/supervisor-0'],
    ] as const)
      api.on(method, path, ok);
    api.on('GET', '/api/v1/namespaces/sup/pods', {
      status: 200,
      body: { kind: 'PodList', metadata: {}, items: [{ metadata: { name: 'supervisor-0' }, status: { phase: 'Running' } }] },
    });
    api.onExec({ status: exitStatus(0) });
    const log = pino({ level: 'silent' });
    for (const op of operations) {
      const result = await kubernetes.run(KubernetesSpec.parse(op), { signal: new AbortController().signal, log });
      expect(result.status, JSON.stringify(op)).toBe('succeeded');
    }
    for (const r of api.requests) for (const p of authorizedAs(r.method, r.path, false)) used.add(p);
    for (const e of api.execs) for (const p of authorizedAs('GET', e.path, true)) used.add(p);
  });
  afterAll(async () => {
    process.env.KUBECONFIG = saved;
    await api.stop();
  });

  it('the action made only calls the fake API server knew', () => {
    expect(api.unmatched).toEqual([]);
    expect([...used].sort()).toEqual(
      [
        'apps|daemonsets|patch',
        'apps|deployments/scale|patch',
        'apps|deployments|patch',
        'apps|statefulsets/scale|patch',
        'apps|statefulsets|patch',
        '|pods/exec|create',
        '|pods/exec|get',
        '|pods|delete',
        '|pods|list',
      ].sort(),
    );
  });

  it('the Helm chart grants exactly those (all rbac.actions on)', () => {
    expect([...expand(chartRules())].sort()).toEqual([...used].sort());
  });

  it('the kustomize base Role grants exactly those', () => {
    const docs = parseAllDocuments(readFileSync(new URL('deploy/kubernetes/base/rbac.yaml', repo), 'utf8')).map(
      (d) => d.toJS() as { kind: string; rules?: Rule[] },
    );
    const role = docs.find((d) => d.kind === 'Role');
    expect([...expand(role!.rules!)].sort()).toEqual([...used].sort());
  });
});
