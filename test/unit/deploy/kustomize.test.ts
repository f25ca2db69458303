import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { RuleFile } from '../../../src/rules/schema.js';
import { kustomize, repo, validateObject, type KubeObject } from './k8s-objects.js';

/** SHUTDOWN_TIMEOUT as seconds ("25s"). */
const seconds = (d: string) => Number(/^(\d+)s$/.exec(d)?.[1] ?? Number.NaN);

type Container = {
  env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string; optional?: boolean } } }[];
  livenessProbe?: { httpGet?: { path: string } };
  readinessProbe?: { httpGet?: { path: string } };
  startupProbe?: unknown;
  securityContext?: Record<string, unknown>;
  args?: string[];
};
type PodSpec = {
  serviceAccountName: string;
  terminationGracePeriodSeconds: number;
  securityContext: Record<string, unknown>;
  containers: Container[];
  volumes?: { name: string; configMap?: { name: string } }[];
};
const podSpec = (d: KubeObject) => (d.spec as { template: { spec: PodSpec } }).template.spec;
const one = (objects: KubeObject[], kind: string) => {
  const found = objects.filter((o) => o.kind === kind);
  expect(found, kind).toHaveLength(1);
  return found[0]!;
};

describe.each([
  ['deploy/kubernetes', 'remediator resources without a namespace'],
  ['deploy/kubernetes/overlays/example', 'the example overlay'],
])('kubectl kustomize %s', (dir) => {
  const objects = kustomize(dir);

  it('renders the expected kinds', () => {
    const kinds = new Set(objects.map((o) => o.kind));
    for (const kind of ['ServiceAccount', 'Role', 'RoleBinding', 'Deployment', 'Service', 'PodDisruptionBudget', 'NetworkPolicy'])
      expect(kinds).toContain(kind);
  });

  it('every rendered object validates against the Kubernetes OpenAPI schema of its kind', async () => {
    for (const object of objects) {
      await expect(validateObject(object), `${object.kind}/${object.metadata.name}`).resolves.toBeUndefined();
    }
  });

  it('the Deployment probes /healthz and /readyz, runs unprivileged, and outlives SHUTDOWN_TIMEOUT on termination', () => {
    const spec = podSpec(one(objects, 'Deployment'));
    const [container] = spec.containers;
    expect(container?.args).toEqual(['serve']);
    expect(container?.livenessProbe?.httpGet?.path).toBe('/healthz');
    expect(container?.readinessProbe?.httpGet?.path).toBe('/readyz');
    expect(container?.startupProbe).toBeDefined();
    expect(spec.securityContext.runAsNonRoot).toBe(true);
    expect(container?.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true });
    const shutdown = seconds(container?.env?.find((e) => e.name === 'SHUTDOWN_TIMEOUT')?.value ?? '');
    expect(spec.terminationGracePeriodSeconds).toBeGreaterThan(shutdown);
  });

  // Secure by default (issue 9): the pod takes WEBHOOK_TOKEN from a Secret that must exist (no `optional: true`).
  it('the Deployment requires WEBHOOK_TOKEN from a Secret (not optional)', () => {
    const [container] = podSpec(one(objects, 'Deployment')).containers;
    const token = container?.env?.find((e) => e.name === 'WEBHOOK_TOKEN');
    expect(token?.valueFrom?.secretKeyRef).toMatchObject({ name: expect.stringContaining('remediator'), key: 'webhook-token' });
    expect(token?.valueFrom?.secretKeyRef?.optional).not.toBe(true);
  });

  it('the pods run as the ServiceAccount the RoleBinding binds to the Role', () => {
    const sa = one(objects, 'ServiceAccount');
    const binding = one(objects, 'RoleBinding') as KubeObject & {
      roleRef: { kind: string; name: string };
      subjects: { kind: string; name: string }[];
    };
    expect(podSpec(one(objects, 'Deployment')).serviceAccountName).toBe(sa.metadata.name);
    expect(binding.subjects).toEqual([expect.objectContaining({ kind: 'ServiceAccount', name: sa.metadata.name })]);
    expect(binding.roleRef).toMatchObject({ kind: 'Role', name: one(objects, 'Role').metadata.name });
  });

  it('the Service and PodDisruptionBudget select the Deployment pods', () => {
    const labels = (one(objects, 'Deployment').spec as { template: { metadata: { labels: Record<string, string> } } }).template
      .metadata.labels;
    const service = one(objects, 'Service').spec as { selector: Record<string, string> };
    const pdb = one(objects, 'PodDisruptionBudget').spec as { selector: { matchLabels: Record<string, string> } };
    expect(labels).toMatchObject(service.selector);
    expect(labels).toMatchObject(pdb.selector.matchLabels);
  });
});

describe('the schema validation itself', () => {
  it('rejects a broken object, so a pass means something', async () => {
    const deployment = structuredClone(kustomize('deploy/kubernetes').find((o) => o.kind === 'Deployment')!);
    (podSpec(deployment).containers[0] as { ports: { containerPort: unknown }[] }).ports[0]!.containerPort = 'http';
    await expect(validateObject(deployment)).rejects.toThrow(/containerPort/);
  });
});

describe('the example overlay', () => {
  const objects = kustomize('deploy/kubernetes/overlays/example');

  it('puts every namespaced object in its namespace', () => {
    for (const o of objects.filter((x) => x.kind !== 'Namespace'))
      expect(o.metadata.namespace, `${o.kind}/${o.metadata.name}`).toBe('remediator');
  });

  it('mounts its rules ConfigMap as RULES_DIR, and every rule file in it is valid', () => {
    const spec = podSpec(one(objects, 'Deployment'));
    const configMap = one(objects, 'ConfigMap') as KubeObject & { data: Record<string, string> };
    expect(spec.volumes?.find((v) => v.name === 'rules')?.configMap?.name).toBe(configMap.metadata.name);
    expect(spec.containers[0]?.env?.find((e) => e.name === 'RULES_DIR')?.value).toBe('/etc/remediator/rules');
    for (const [file, text] of Object.entries(configMap.data)) {
      const parsed = RuleFile.safeParse(parse(text));
      expect(parsed.success, `${file}: ${parsed.error?.message}`).toBe(true);
    }
  });

  it('carries the supervisor alert groups the chart ships', () => {
    const rule = one(objects, 'PrometheusRule') as KubeObject & { spec: { groups: unknown[] } };
    const chart = parse(readFileSync(new URL('helm/remediator/files/supervisor.rules.yaml', repo), 'utf8')) as {
      groups: unknown[];
    };
    expect(rule.spec.groups).toEqual(chart.groups);
  });
});
