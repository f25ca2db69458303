import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { parse } from 'yaml';
import {
  FIELD_MANAGER,
  KubernetesSpec,
  RESTARTED_AT,
  exitCodeOf,
  kubernetes,
  restartedAtNow,
} from '../../../src/actions/kubernetes.js';
import { actionByKind } from '../../../src/actions/index.js';
import { ActionError, OUTPUT_LIMIT, type ActionContext } from '../../../src/actions/types.js';
import { describeActionContract } from './contract.js';
import { RuleFile } from '../../../src/rules/schema.js';
import { TemplateError, createRender, type VarValue } from '../../../src/template.js';
import { FakeKubeApi, TOKEN, exitStatus, startFakeKubeApi, statusBody } from '../../helpers/fake-kube-api.js';

const log = pino({ level: 'silent' });
const ctx = (signal = new AbortController().signal): ActionContext => ({ signal, log });
const render = (labels: Record<string, string> = {}, vars: Record<string, VarValue> = {}) =>
  createRender({ labels, annotations: {}, vars, env: {} });
const RFC3339_SECONDS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/;

const podList = (...pods: { name: string; phase: string; deleting?: boolean }[]) => ({
  kind: 'PodList',
  apiVersion: 'v1',
  metadata: {},
  items: pods.map((p) => ({
    metadata: { name: p.name, namespace: 'sup', ...(p.deleting ? { deletionTimestamp: '2024-01-01T00:00:00Z' } : {}) },
    status: { phase: p.phase },
  })),
});

/** The Kubernetes variants shipped under rules/examples/kubernetes/, parsed as the loader would. */
function ruleStep(file: string, step: string) {
  const rule = RuleFile.parse(
    parse(readFileSync(new URL(`../../../rules/examples/kubernetes/${file}`, import.meta.url), 'utf8')),
  );
  const found = rule.steps.find((s) => s.name === step);
  if (found?.action?.kind !== 'kubernetes') throw new Error(`${file} has no step ${step} with a kubernetes action`);
  return { rule, spec: KubernetesSpec.parse(found.action.spec) };
}

describe('actions/kubernetes', () => {
  describe('spec, render and describe', () => {
    it('is registered under its kind', () => {
      expect(actionByKind.get('kubernetes')).toBe(kubernetes);
    });

    it.each([
      [{}, 'exactly one of rolloutRestart, deletePod, execInPod or scale'],
      [
        { deletePod: { namespace: 'a', name: 'b' }, scale: { kind: 'Deployment', namespace: 'a', name: 'b', replicas: 1 } },
        'exactly one of',
      ],
      [{ execInPod: { namespace: 'a', command: ['true'] } }, 'exactly one of pod or selector'],
      [{ execInPod: { namespace: 'a', pod: 'p', selector: { app: 'x' }, command: ['true'] } }, 'exactly one of pod or selector'],
      [{ deletePod: { namespace: 'a', name: 'b', extra: 1 } }, 'Unrecognized key'],
      [{ rolloutRestart: { kind: 'ReplicaSet', namespace: 'a', name: 'b' } }, 'Invalid option'],
      [{ scale: { kind: 'DaemonSet', namespace: 'a', name: 'b', replicas: 1 } }, 'Invalid option'],
      [{ deletePod: { namespace: 'A_B', name: 'b' } }, 'expected a Kubernetes name'],
      [{ execInPod: { namespace: 'a', pod: 'p', command: [] } }, 'Too small'],
    ])('rejects %j', (spec, message) => {
      const parsed = KubernetesSpec.safeParse(spec);
      expect(parsed.success).toBe(false);
      expect(parsed.error?.issues.map((i) => i.message).join('; ')).toContain(message);
    });

    it('renders names from alert labels and refuses label values that are not Kubernetes names', () => {
      const spec = KubernetesSpec.parse({ deletePod: { namespace: '{{ labels.namespace }}', name: '{{ labels.pod }}' } });
      expect(kubernetes.render(spec, render({ namespace: 'sup', pod: 'supervisor-0' }))).toEqual({
        deletePod: { namespace: 'sup', name: 'supervisor-0' },
      });
      expect(() => kubernetes.render(spec, render({ namespace: 'sup', pod: 'x/../../nodes' }))).toThrow(TemplateError);
      expect(() => kubernetes.render(spec, render({ namespace: 'Sup', pod: 'p' }))).toThrow(/not a valid Kubernetes name/);
    });

    it('refuses a selector value that would widen the selector, and argv that starts with "-"', () => {
      const spec = KubernetesSpec.parse({
        execInPod: { namespace: 'sup', selector: { app: '{{ labels.app }}' }, command: ['pkill', '-x', '{{ labels.process }}'] },
      });
      expect(() => kubernetes.render(spec, render({ app: 'supervisor,tier!=x', process: 'relay' }))).toThrow(TemplateError);
      expect(() => kubernetes.render(spec, render({ app: 'supervisor', process: '-9' }))).toThrow(TemplateError);
      expect(kubernetes.render(spec, render({ app: 'supervisor', process: 'relay' })).execInPod?.command).toEqual([
        'pkill',
        '-x',
        'relay',
      ]);
    });

    it('splices a list var standing alone in the command, as exec does', () => {
      const spec = KubernetesSpec.parse({ execInPod: { namespace: 'sup', pod: 'p', command: ['{{ vars.kill_relay }}'] } });
      expect(kubernetes.render(spec, render({}, { kill_relay: ['pkill', '-TERM', '-x', 'relay'] })).execInPod?.command).toEqual([
        'pkill',
        '-TERM',
        '-x',
        'relay',
      ]);
    });

    it('refuses a rendered name that is invalid as a whole, before any request', () => {
      const spec = KubernetesSpec.parse({
        rolloutRestart: { kind: 'Deployment', namespace: 'sup', name: '{{ vars.workload }}-' },
      });
      expect(() => kubernetes.render(spec, render({}, { workload: 'supervisor' }))).toThrow(
        /rolloutRestart.name renders to "supervisor-"/,
      );
    });

    it.each([
      [
        { rolloutRestart: { kind: 'StatefulSet', namespace: 'sup', name: 'supervisor' } },
        'kubernetes: rollout restart statefulset sup/supervisor',
      ],
      [
        { deletePod: { namespace: 'sup', name: 'supervisor-0' }, context: 'prod' },
        'kubernetes: delete pod sup/supervisor-0 (context prod)',
      ],
      [{ scale: { kind: 'Deployment', namespace: 'sup', name: 'w', replicas: 0 } }, 'kubernetes: scale deployment sup/w to 0'],
      [
        {
          execInPod: {
            namespace: 'sup',
            selector: { app: 'supervisor' },
            container: 'supervisor',
            command: ['pkill', '-TERM', '-x', 'relay'],
          },
        },
        'kubernetes: exec in first running pod in sup with app=supervisor container supervisor: pkill -TERM -x relay',
      ],
    ])('describes %j in one line', (spec, line) => {
      expect(kubernetes.describe(KubernetesSpec.parse(spec))).toBe(line);
    });

    it('formats restartedAt as kubectl does (RFC 3339, whole seconds)', () => {
      expect(restartedAtNow(new Date('2024-05-06T07:08:09.123Z'))).toBe('2024-05-06T07:08:09Z');
    });

    it.each([
      [{ status: 'Success' }, 0],
      [exitStatus(137), 137],
      [{ status: 'Failure', reason: 'InternalError', message: 'executable file not found' }, undefined],
    ])('reads the exit code from the channel-3 status %j', (status, code) => {
      expect(exitCodeOf(status)).toBe(code);
    });
  });

  describe('against a fake Kubernetes API server (HTTPS and WebSocket on 127.0.0.1)', () => {
    let api: FakeKubeApi;
    const savedKubeconfig = process.env.KUBECONFIG;

    // The client's first import evaluates a large module graph synchronously (about a second on a loaded
    // machine); load it before the abort-latency contract so that measures abort handling, not module loading.
    beforeAll(async () => {
      await import('@kubernetes/client-node');
    });
    beforeAll(async () => {
      api = await startFakeKubeApi();
      process.env.KUBECONFIG = api.writeKubeconfig(['other']);
    });
    afterAll(async () => {
      if (savedKubeconfig === undefined) delete process.env.KUBECONFIG;
      else process.env.KUBECONFIG = savedKubeconfig;
      await api.stop();
    });
    beforeEach(() => api.reset());
    afterEach(() => {
      // Every call the action made was one the test expected: no stray requests.
      expect(api.unmatched).toEqual([]);
    });

    const run = (spec: unknown, signal?: AbortSignal) => kubernetes.run(KubernetesSpec.parse(spec), ctx(signal));
    const execSpec = (command: string[]) =>
      KubernetesSpec.parse({ execInPod: { namespace: 'sup', pod: 'supervisor-0', command } });

    describeActionContract(kubernetes, {
      valid: {
        execInPod: {
          namespace: '{{ labels.namespace }}',
          pod: '{{ labels.pod }}',
          container: 'supervisor',
          command: ['pkill', '-TERM', '-x', 'relay'],
        },
      },
      slow: () => {
        api.onExec({ hang: true });
        return execSpec(['sleep', '3600']);
      },
      started: () => expect.poll(() => api.execs.length).toBe(1),
      bigOutput: () => {
        api.onExec({ stdout: 'x'.repeat(OUTPUT_LIMIT * 3), status: exitStatus(0) });
        return execSpec(['cat', '/big']);
      },
      failing: (secret) => {
        api.onExec({ refuse: 403 });
        return execSpec(['sh-free', `--token=${secret}`]);
      },
    });

    it.each([
      ['Deployment', 'deployments'],
      ['StatefulSet', 'statefulsets'],
      ['DaemonSet', 'daemonsets'],
    ])(
      'rolloutRestart %s: one strategic merge patch of the pod template annotation, as kubectl sends it',
      async (kind, resource) => {
        const path = `/apis/apps/v1/namespaces/sup/${resource}/supervisor`;
        api.on('PATCH', path, {
          status: 200,
          body: { kind, apiVersion: 'apps/v1', metadata: { name: 'supervisor', namespace: 'sup', generation: 7 } },
        });
        const result = await run({ rolloutRestart: { kind, namespace: 'sup', name: 'supervisor' } });

        expect(api.requests).toHaveLength(1);
        const [req] = api.requests;
        expect(req?.method).toBe('PATCH');
        expect(req?.path).toBe(path);
        expect(req?.contentType).toBe('application/strategic-merge-patch+json');
        expect(req?.query.get('fieldManager')).toBe(FIELD_MANAGER);
        expect(req?.authorization).toBe(`Bearer ${TOKEN}`);
        const at = (req?.body as { spec: { template: { metadata: { annotations: Record<string, string> } } } }).spec.template
          .metadata.annotations[RESTARTED_AT];
        expect(req?.body).toEqual({ spec: { template: { metadata: { annotations: { [RESTARTED_AT]: at } } } } });
        expect(at).toMatch(RFC3339_SECONDS);
        expect(result).toMatchObject({
          status: 'succeeded',
          httpStatus: 200,
          output: `${kind.toLowerCase()}.apps/supervisor restarted`,
          detail: { restartedAt: at, generation: 7 },
        });
      },
    );

    it('deletePod: DELETE of the pod', async () => {
      api.on('DELETE', '/api/v1/namespaces/sup/pods/supervisor-0', {
        status: 200,
        body: { kind: 'Pod', apiVersion: 'v1', metadata: { name: 'supervisor-0', uid: 'u-1' } },
      });
      const result = await run({ deletePod: { namespace: 'sup', name: 'supervisor-0' } });
      expect(api.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['DELETE /api/v1/namespaces/sup/pods/supervisor-0']);
      expect(result).toMatchObject({ status: 'succeeded', output: 'pod "supervisor-0" deleted', detail: { uid: 'u-1' } });
    });

    it.each([
      ['Deployment', 'deployments'],
      ['StatefulSet', 'statefulsets'],
    ])('scale %s: a JSON merge patch of the scale subresource, as kubectl scale sends it', async (kind, resource) => {
      const path = `/apis/apps/v1/namespaces/sup/${resource}/worker/scale`;
      api.on('PATCH', path, {
        status: 200,
        body: {
          kind: 'Scale',
          apiVersion: 'autoscaling/v1',
          metadata: { name: 'worker' },
          spec: { replicas: 3 },
          status: { replicas: 1 },
        },
      });
      const result = await run({ scale: { kind, namespace: 'sup', name: 'worker', replicas: 3 } });
      expect(api.requests).toHaveLength(1);
      expect(api.requests[0]).toMatchObject({
        method: 'PATCH',
        path,
        contentType: 'application/merge-patch+json',
        body: { spec: { replicas: 3 } },
      });
      expect(api.requests[0]?.query.get('fieldManager')).toBe(FIELD_MANAGER);
      expect(result).toMatchObject({ status: 'succeeded', detail: { replicas: 3, currentReplicas: 1 } });
    });

    it('execInPod by name: WebSocket upgrade on pods/exec with the argv as command parameters, v4 channels, exit 0', async () => {
      api.onExec({ stdout: 'killed\n', status: exitStatus(0) });
      const result = await run({
        execInPod: { namespace: 'sup', pod: 'supervisor-0', container: 'supervisor', command: ['pkill', '-TERM', '-x', 'relay'] },
      });
      expect(api.requests).toEqual([]);
      expect(api.execs).toHaveLength(1);
      const [exec] = api.execs;
      expect(exec?.path).toBe('/api/v1/namespaces/sup/pods/supervisor-0/exec');
      expect(exec?.query.getAll('command')).toEqual(['pkill', '-TERM', '-x', 'relay']);
      expect(Object.fromEntries([...(exec?.query.entries() ?? [])].filter(([k]) => k !== 'command'))).toEqual({
        container: 'supervisor',
        stdout: 'true',
        stderr: 'true',
        stdin: 'false',
        tty: 'false',
      });
      expect(exec?.offered).toEqual(['v4.channel.k8s.io']);
      expect(exec?.protocol).toBe('v4.channel.k8s.io');
      expect(exec?.authorization).toBe(`Bearer ${TOKEN}`);
      expect(result).toEqual({
        status: 'succeeded',
        exitCode: 0,
        output: 'killed\n',
        detail: { namespace: 'sup', pod: 'supervisor-0', container: 'supervisor' },
      });
    });

    it('execInPod: a non-zero exit is a failed result with the exit code and stderr', async () => {
      api.onExec({ stderr: 'no process found\n', status: exitStatus(1) });
      const result = await run({ execInPod: { namespace: 'sup', pod: 'supervisor-0', command: ['pkill', '-x', 'relay'] } });
      expect(result).toMatchObject({
        status: 'failed',
        exitCode: 1,
        output: 'no process found\n',
        detail: { reason: 'NonZeroExitCode' },
      });
    });

    it('execInPod: a status without an exit code (command not found) fails with its message', async () => {
      api.onExec({
        status: { status: 'Failure', reason: 'InternalError', message: 'exec: "pkill": executable file not found in $PATH' },
      });
      const result = await run({ execInPod: { namespace: 'sup', pod: 'supervisor-0', command: ['pkill', '-x', 'relay'] } });
      expect(result.status).toBe('failed');
      expect(result.exitCode).toBeUndefined();
      expect(result.output).toContain('executable file not found');
    });

    it('execInPod: a stream that closes without a status is failed, not succeeded', async () => {
      api.onExec({ stdout: 'partial' });
      const result = await run({ execInPod: { namespace: 'sup', pod: 'supervisor-0', command: ['true'] } });
      expect(result).toMatchObject({
        status: 'failed',
        output: 'partial',
        detail: { reason: 'the connection closed without an exit status' },
      });
    });

    it('execInPod by selector: lists pods by label, then execs in the first running one', async () => {
      api.on('GET', '/api/v1/namespaces/sup/pods', (req) => {
        expect(req.query.get('labelSelector')).toBe('app.kubernetes.io/name=supervisor,tier=core');
        return {
          status: 200,
          body: podList(
            { name: 'supervisor-b', phase: 'Running' },
            { name: 'supervisor-a', phase: 'Running', deleting: true },
            { name: 'supervisor-0', phase: 'Pending' },
            { name: 'supervisor-c', phase: 'Running' },
          ),
        };
      });
      api.onExec({ status: exitStatus(0) });
      const result = await run({
        execInPod: { namespace: 'sup', selector: { 'app.kubernetes.io/name': 'supervisor', tier: 'core' }, command: ['true'] },
      });
      expect(api.requests.map((r) => `${r.method} ${r.path}`)).toEqual(['GET /api/v1/namespaces/sup/pods']);
      expect(api.execs.map((e) => e.path)).toEqual(['/api/v1/namespaces/sup/pods/supervisor-b/exec']);
      expect(result).toMatchObject({ status: 'succeeded', detail: { pod: 'supervisor-b' } });
    });

    it('execInPod by selector: no running pod is a failed result and no exec', async () => {
      api.on('GET', '/api/v1/namespaces/sup/pods', { status: 200, body: podList({ name: 'supervisor-0', phase: 'Pending' }) });
      const result = await run({ execInPod: { namespace: 'sup', selector: { app: 'supervisor' }, command: ['true'] } });
      expect(result).toMatchObject({ status: 'failed', output: 'no running pod in sup matches app=supervisor' });
      expect(api.execs).toEqual([]);
    });

    it('a 404 is the target answering: a failed result carrying the status and message', async () => {
      api.on('DELETE', '/api/v1/namespaces/sup/pods/gone', {
        status: 404,
        body: statusBody(404, 'NotFound', 'pods "gone" not found'),
      });
      const result = await run({ deletePod: { namespace: 'sup', name: 'gone' } });
      expect(result).toEqual({ status: 'failed', httpStatus: 404, output: 'delete pod sup/gone: pods "gone" not found' });
    });

    it('403 (RBAC) throws a non-retryable ActionError; 503 a retryable one', async () => {
      const path = '/apis/apps/v1/namespaces/sup/deployments/supervisor';
      const spec = { rolloutRestart: { kind: 'Deployment', namespace: 'sup', name: 'supervisor' } };
      api.on('PATCH', path, { status: 403, body: statusBody(403, 'Forbidden', 'deployments.apps "supervisor" is forbidden') });
      const forbidden = await run(spec).catch((e: unknown) => e);
      expect(forbidden).toBeInstanceOf(ActionError);
      expect(forbidden).toMatchObject({ retryable: false });
      expect((forbidden as Error).message).toContain('forbidden (HTTP 403)');
      expect((forbidden as Error).message).not.toContain(TOKEN);

      api.on('PATCH', path, { status: 503, body: statusBody(503, 'ServiceUnavailable', 'etcd is down') });
      await expect(run(spec)).rejects.toMatchObject({ name: 'ActionError', retryable: true });
    });

    it('exec refused at the upgrade (403 on pods/exec) throws a non-retryable ActionError', async () => {
      api.onExec({ refuse: 403 });
      await expect(run({ execInPod: { namespace: 'sup', pod: 'supervisor-0', command: ['true'] } })).rejects.toMatchObject({
        name: 'ActionError',
        retryable: false,
      });
    });

    it('an abort during exec ends the attempt while the exec still hangs', async () => {
      api.onExec({ hang: true });
      const controller = new AbortController();
      const pending = run(
        { execInPod: { namespace: 'sup', pod: 'supervisor-0', command: ['sleep', '3600'] } },
        controller.signal,
      );
      await expect.poll(() => api.execs.length).toBe(1);
      const reason = new Error('step timeout');
      controller.abort(reason);
      // The fake API never answers this exec: only the abort can settle it.
      await expect(pending).rejects.toBe(reason);
    });

    it('uses the kubeconfig context the spec names, and refuses one that does not exist', async () => {
      api.on('DELETE', '/api/v1/namespaces/sup/pods/p', { status: 200, body: { kind: 'Pod', metadata: { name: 'p' } } });
      await expect(run({ context: 'other', deletePod: { namespace: 'sup', name: 'p' } })).resolves.toMatchObject({
        status: 'succeeded',
      });
      await expect(run({ context: 'missing', deletePod: { namespace: 'sup', name: 'p' } })).rejects.toMatchObject({
        name: 'ActionError',
        retryable: false,
      });
    });

    it('no API server listening: a retryable ActionError', async () => {
      const down = new FakeKubeApi();
      await down.start();
      const saved = process.env.KUBECONFIG;
      const kubeconfig = readFileSync(down.writeKubeconfig(), 'utf8');
      await down.stop();
      const dir = mkdtempSync(join(tmpdir(), 'kube-down-'));
      process.env.KUBECONFIG = join(dir, 'kubeconfig');
      writeFileSync(process.env.KUBECONFIG, kubeconfig);
      try {
        await expect(run({ deletePod: { namespace: 'sup', name: 'p' } })).rejects.toMatchObject({
          name: 'ActionError',
          retryable: true,
        });
      } finally {
        process.env.KUBECONFIG = saved;
        rmSync(dir, { recursive: true, force: true });
      }
    });

    describe('the shipped Kubernetes variants of P1-001 and P1-003', () => {
      const alert = { alertname: 'x', namespace: 'sup', pod: 'supervisor-7d9f-abcde' };

      it("P1-003 check-socket: execInPod runs `remediator ipc hello` in the alerting pod's exporter sidecar, as argv", async () => {
        const { rule, spec } = ruleStep('p1-003-dashboard-ipc.yaml', 'check-socket');
        api.onExec({ status: exitStatus(0) });
        const rendered = kubernetes.render(spec, render(alert, rule.vars));
        const result = await kubernetes.run(rendered, ctx());
        expect(api.execs).toHaveLength(1);
        expect(api.execs[0]?.path).toBe('/api/v1/namespaces/sup/pods/supervisor-7d9f-abcde/exec');
        expect(api.execs[0]?.query.getAll('command')).toEqual(['node', 'dist/cli.js', 'ipc', 'hello', '--timeout', '2s']);
        expect(api.execs[0]?.query.get('container')).toBe(rule.vars.exporter_container);
        expect(result).toMatchObject({ status: 'succeeded', exitCode: 0 });
      });

      it('P1-001 restart-supervisor: rolloutRestart patches the supervisor workload exactly as kubectl rollout restart', async () => {
        const { rule, spec } = ruleStep('p1-001-supervisor-crash.yaml', 'restart-supervisor');
        const rendered = kubernetes.render(spec, render(alert, rule.vars));
        const kind = rendered.rolloutRestart!.kind;
        const path = `/apis/apps/v1/namespaces/sup/${kind.toLowerCase()}s/${rule.vars.supervisor_workload}`;
        api.on('PATCH', path, { status: 200, body: { kind, metadata: { name: rule.vars.supervisor_workload } } });
        const result = await kubernetes.run(rendered, ctx());
        expect(api.requests).toHaveLength(1);
        expect(api.requests[0]).toMatchObject({ method: 'PATCH', path, contentType: 'application/strategic-merge-patch+json' });
        expect(
          Object.keys(
            (api.requests[0]?.body as { spec: { template: { metadata: { annotations: object } } } }).spec.template.metadata
              .annotations,
          ),
        ).toEqual([RESTARTED_AT]);
        expect(result.status).toBe('succeeded');
      });
    });
  });
});
