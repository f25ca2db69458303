import { execFileSync } from 'node:child_process';
import { parseAllDocuments } from 'yaml';

/** A rendered Kubernetes object, as plain data. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [key: string]: unknown;
}

export const repo = new URL('../../../', import.meta.url);
export const repoPath = (p: string) => new URL(p, repo).pathname;

/** `kubectl kustomize DIR`, parsed. kubectl embeds kustomize, so no cluster is needed. */
export function kustomize(dir: string): KubeObject[] {
  const out = execFileSync('kubectl', ['kustomize', repoPath(dir)], { encoding: 'utf8' });
  return parseAllDocuments(out).map((d) => d.toJS() as KubeObject);
}

/**
 * Validates one object against the Kubernetes OpenAPI schema of its kind (kubernetes-models; the
 * prometheus-operator CRD schemas for monitoring.coreos.com). Throws with the failing paths.
 */
export async function validateObject(object: KubeObject): Promise<void> {
  const [group, version] = object.apiVersion.includes('/') ? object.apiVersion.split('/') : ['', object.apiVersion];
  const module =
    group === 'monitoring.coreos.com'
      ? `@kubernetes-models/prometheus-operator/${group}/${version}/${object.kind}`
      : `kubernetes-models/${group === '' ? '' : `${group}/`}${version}/${object.kind}`;
  const models = (await import(module)) as Record<string, new (data: unknown) => { validate(): void }>;
  const Model = models[object.kind];
  if (!Model) throw new Error(`no model for ${object.apiVersion} ${object.kind}`);
  new Model(object).validate();
}
