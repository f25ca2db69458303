/**
 * The supervisor exporter's deployment files: the kustomize Component and its example overlay (rendered by
 * `kubectl kustomize`, every object validated against its Kubernetes or prometheus-operator schema), the Helm
 * values example for the supervisor's own chart (its sidecar, volumes and pod settings validated as a Pod), and the
 * systemd units (`systemd-analyze verify`). No cluster and no systemd instance are needed.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { loadConfig, loadExporterConfig } from '../../../src/config.js';
import { kustomize, repoPath, validateObject, type KubeObject } from './k8s-objects.js';

type Probe = { httpGet?: { path: string; port: string | number } };
type Container = {
  name: string;
  image: string;
  args?: string[];
  env?: { name: string; value?: string }[];
  envFrom?: { configMapRef?: { name: string } }[];
  ports?: { name?: string; containerPort: number }[];
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  securityContext?: Record<string, unknown>;
  volumeMounts?: { name: string; mountPath: string }[];
};
type PodSpec = {
  shareProcessNamespace?: boolean;
  securityContext?: { runAsUser?: number; runAsNonRoot?: boolean };
  containers: Container[];
  volumes?: { name: string; emptyDir?: object }[];
};
const podSpec = (d: KubeObject) => (d.spec as { template: { spec: PodSpec } }).template.spec;

/** What every exporter sidecar must be, wherever it is declared. */
function expectExporterSidecar(spec: PodSpec, settings: Record<string, string>) {
  const exporter = spec.containers.find((c) => c.args?.[0] === 'exporter');
  expect(exporter, 'a container running `remediator exporter`').toBeDefined();
  const app = spec.containers.find((c) => c !== exporter)!;
  // Its settings are valid exporter configuration.
  const config = loadExporterConfig(settings);
  // It shares the directory of ipc.path with the supervisor's container, through one volume.
  const dir = dirname(config.SUPERVISOR_IPC_PATH);
  const mount = exporter!.volumeMounts?.find((m) => m.mountPath === dir);
  expect(mount, `exporter mounts ${dir}`).toBeDefined();
  expect(app.volumeMounts?.find((m) => m.name === mount!.name)?.mountPath, 'the supervisor mounts the same volume there').toBe(
    dir,
  );
  expect(spec.volumes?.map((v) => v.name)).toContain(mount!.name);
  // It can see the supervisor's process, and can connect to a socket whose mode follows the supervisor's umask.
  expect(spec.shareProcessNamespace).toBe(true);
  expect(spec.securityContext?.runAsUser).toBeGreaterThan(0);
  expect(spec.securityContext?.runAsNonRoot).toBe(true);
  // Port, probes, hardening.
  const port = exporter!.ports?.find((p) => p.containerPort === config.EXPORTER_PORT);
  expect(port?.name).toBe('supervisor-metrics');
  expect(exporter!.livenessProbe?.httpGet).toEqual({ path: '/healthz', port: 'supervisor-metrics' });
  expect(exporter!.readinessProbe?.httpGet?.path).toBe('/healthz');
  expect(exporter!.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true });
  return { exporter: exporter!, config };
}

describe('deploy/kubernetes: the supervisor exporter sidecar (kustomize component + example overlay)', () => {
  const objects = kustomize('deploy/kubernetes/overlays/supervisor-sidecar');
  const one = (kind: string) => {
    const found = objects.filter((o) => o.kind === kind);
    expect(found, kind).toHaveLength(1);
    return found[0]!;
  };

  it('every rendered object validates against its schema', async () => {
    expect(objects.map((o) => o.kind).sort()).toEqual(['ConfigMap', 'Deployment', 'PodMonitor']);
    for (const o of objects) await expect(validateObject(o), `${o.kind}/${o.metadata.name}`).resolves.toBeUndefined();
  });

  it('adds the exporter to the labelled Deployment, configured from the ConfigMap, sharing the socket through a volume', () => {
    const deployment = one('Deployment');
    const configMap = one('ConfigMap') as KubeObject & { data: Record<string, string> };
    const { exporter, config } = expectExporterSidecar(podSpec(deployment), configMap.data);
    expect(exporter.envFrom).toEqual([{ configMapRef: { name: configMap.metadata.name } }]);
    expect(exporter.image).toBe('ghcr.io/remediator/remediator:0.1.0');
    expect(config).toMatchObject({
      SUPERVISOR_TARGET_ID: 'payments-worker-a',
      SUPERVISOR_PROCESS: 'payments-worker',
      RELAY_PROCESS_PATTERN: '',
    });
  });

  it('the PodMonitor scrapes the sidecar port, with instance = namespace/pod', () => {
    const monitor = one('PodMonitor') as KubeObject & {
      spec: {
        selector: { matchLabels: Record<string, string> };
        podMetricsEndpoints: { port: string; relabelings: { targetLabel: string; sourceLabels: string[] }[] }[];
      };
    };
    const deployment = one('Deployment') as KubeObject & { spec: { template: { metadata: { labels: Record<string, string> } } } };
    expect(deployment.spec.template.metadata.labels).toMatchObject(monitor.spec.selector.matchLabels);
    const [endpoint] = monitor.spec.podMetricsEndpoints;
    expect(endpoint?.port).toBe('supervisor-metrics');
    expect(endpoint?.relabelings).toContainEqual(
      expect.objectContaining({
        targetLabel: 'instance',
        sourceLabels: ['__meta_kubernetes_namespace', '__meta_kubernetes_pod_name'],
      }),
    );
  });

  it('the component patches only Deployments that carry its label', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kustomize-exporter-'));
    try {
      const component = repoPath('deploy/kubernetes/components/supervisor-exporter');
      const deployment = (name: string, labels: Record<string, string>) => ({
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name, labels },
        spec: {
          selector: { matchLabels: { app: name } },
          template: { metadata: { labels: { app: name } }, spec: { containers: [{ name, image: 'x' }] } },
        },
      });
      writeFileSync(
        join(dir, 'a.yaml'),
        JSON.stringify(deployment('labelled', { 'remediator.io/supervisor-exporter': 'enabled' })),
      );
      writeFileSync(join(dir, 'b.yaml'), JSON.stringify(deployment('other', {})));
      writeFileSync(
        join(dir, 'kustomization.yaml'),
        JSON.stringify({
          resources: ['a.yaml', 'b.yaml'],
          components: [relative(dir, component)], // kustomize takes relative paths only
          configMapGenerator: [{ name: 'supervisor-exporter', literals: ['SUPERVISOR_IPC_PATH=/run/rust-supervisor/s.sock'] }],
        }),
      );
      const out = execFileSync('kubectl', ['kustomize', dir], { encoding: 'utf8' });
      const docs = out.split(/^---$/m).map((d) => parse(d) as KubeObject);
      const byName = (n: string) => podSpec(docs.find((d) => d.metadata.name === n)!);
      expect(
        byName('labelled')
          .containers.map((c) => c.name)
          .sort(),
      ).toEqual(['labelled', 'supervisor-exporter']);
      expect(byName('other').containers.map((c) => c.name)).toEqual(['other']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('helm/examples/supervisor-exporter-sidecar.values.yaml (for the supervisor application chart)', () => {
  const values = parse(readFileSync(repoPath('helm/examples/supervisor-exporter-sidecar.values.yaml'), 'utf8')) as {
    shareProcessNamespace: boolean;
    podSecurityContext: PodSpec['securityContext'];
    extraVolumes: NonNullable<PodSpec['volumes']>;
    extraVolumeMounts: NonNullable<Container['volumeMounts']>;
    podLabels: Record<string, string>;
    sidecars: Container[];
  };
  /** The pod such a chart renders: its main container with extraVolumeMounts, plus the sidecars and volumes. */
  const pod: KubeObject = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'payments-worker', labels: values.podLabels },
    spec: {
      shareProcessNamespace: values.shareProcessNamespace,
      securityContext: values.podSecurityContext,
      containers: [
        { name: 'payments-worker', image: 'registry.example.com/payments-worker:1.0.0', volumeMounts: values.extraVolumeMounts },
        ...values.sidecars,
      ],
      volumes: values.extraVolumes,
    },
  };

  it('renders into a valid Pod', async () => {
    await expect(validateObject(pod)).resolves.toBeUndefined();
  });

  it('the sidecar runs the exporter, shares the socket directory and the process namespace', () => {
    const sidecar = values.sidecars.find((c) => c.args?.[0] === 'exporter')!;
    const env = Object.fromEntries((sidecar.env ?? []).map((e) => [e.name, e.value ?? '']));
    expectExporterSidecar(pod.spec as PodSpec, env);
  });

  it('runs the same image and settings as the kustomize overlay', () => {
    const overlay = kustomize('deploy/kubernetes/overlays/supervisor-sidecar');
    const data = (overlay.find((o) => o.kind === 'ConfigMap') as KubeObject & { data: Record<string, string> }).data;
    const sidecar = values.sidecars[0]!;
    const env = Object.fromEntries((sidecar.env ?? []).map((e) => [e.name, e.value ?? '']));
    for (const key of Object.keys(data)) expect(env[key], key).toBe(data[key]);
    expect(sidecar.image).toBe('ghcr.io/remediator/remediator:0.1.0');
  });
});

describe('deploy/systemd', () => {
  const SYSTEMD_ANALYZE = '/usr/bin/systemd-analyze';
  const dir = mkdtempSync(join(tmpdir(), 'systemd-units-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const verify = (file: string) => {
    if (!existsSync(SYSTEMD_ANALYZE))
      throw new Error(`${SYSTEMD_ANALYZE} not found: install the Debian package "systemd" (.ci/run does)`);
    return spawnSync(SYSTEMD_ANALYZE, ['verify', file], { encoding: 'utf8' });
  };

  it('remediator-exporter@.service verifies cleanly as an instance, and runs `remediator exporter` as the supervisor user', () => {
    const unit = join(dir, 'remediator-exporter@payments.service');
    copyFileSync(repoPath('deploy/systemd/remediator-exporter@.service'), unit);
    const r = verify(unit);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toBe(''); // no unknown keys, no unsafe settings
    const text = readFileSync(unit, 'utf8');
    expect(text).toMatch(/^ExecStart=\/usr\/bin\/node \/opt\/remediator\/dist\/cli\.js exporter$/m);
    expect(text).toMatch(/^EnvironmentFile=\/etc\/remediator\/exporter-%i\.env$/m);
    expect(text).toMatch(/^Restart=always$/m);
    expect(text).toMatch(/^User=rust-supervisor$/m);
    // What would blind the exporter: hiding other processes, or /proc/stat.
    expect(text).not.toMatch(/^(ProtectProc|ProcSubset|PrivateTmp)=/m);
  });

  it('exporter.env.example is a valid exporter configuration', () => {
    const env = Object.fromEntries(
      readFileSync(repoPath('deploy/systemd/exporter.env.example'), 'utf8')
        .split('\n')
        .filter((l) => l.trim() !== '' && !l.startsWith('#'))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    expect(loadExporterConfig(env)).toMatchObject({
      SUPERVISOR_IPC_PATH: '/run/rust-supervisor/payments-worker-a.sock',
      IPC_TIMEOUT: 2000,
    });
  });

  it('rust-supervisor-relay.service restarts the relay always and stops it with SIGINT (its graceful signal)', () => {
    // The relay binary is not installed here: verify the unit with its ExecStart pointed at /bin/true.
    const text = readFileSync(repoPath('deploy/systemd/rust-supervisor-relay.service'), 'utf8');
    const unit = join(dir, 'rust-supervisor-relay.service');
    writeFileSync(unit, text.replace(/^ExecStart=\S+/m, 'ExecStart=/bin/true'));
    const r = verify(unit);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    expect(text).toMatch(/^ExecStart=\S*rust-supervisor-relay --config /m);
    expect(text).toMatch(/^Restart=always$/m);
    expect(text).toMatch(/^KillSignal=SIGINT$/m);
  });

  it('remediator-worker.service verifies cleanly and runs `remediator worker` with its env file', () => {
    const unit = join(dir, 'remediator-worker.service');
    copyFileSync(repoPath('deploy/systemd/remediator-worker.service'), unit);
    const r = verify(unit);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    const text = readFileSync(unit, 'utf8');
    expect(text).toMatch(/^ExecStart=\/usr\/bin\/node \/opt\/remediator\/dist\/cli\.js worker$/m);
    expect(text).toMatch(/^EnvironmentFile=\/etc\/remediator\/worker\.env$/m);
  });

  it('worker.env.example is a valid configuration for a host-local worker, and routes.example.yaml a valid table', () => {
    const env = Object.fromEntries(
      readFileSync(repoPath('deploy/systemd/worker.env.example'), 'utf8')
        .split('\n')
        .filter((l) => l.trim() !== '' && !l.startsWith('#'))
        .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
    );
    const files: Record<string, string> = {
      '/etc/remediator/routes.yaml': readFileSync(repoPath('deploy/routes.example.yaml'), 'utf8'),
    };
    const config = loadConfig({ ...env, ROUTES_FILE: '/etc/remediator/routes.yaml' }, (p) => files[p]!);
    expect(config.WORKER_ROUTES).toEqual(['payments-host-1']);
    expect(config.routes.routes).toEqual(['default', 'payments-host-1', 'payments-host-2']);
    expect(JSON.parse(env.REMEDIATOR_VAR_RESTART_COMMAND!)).toEqual(['systemctl', 'restart', 'payments-worker']);
  });
});
