import { spawn } from 'node:child_process';
import { dirname } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { parse } from 'yaml';
import { KubernetesSpec, kubernetes } from '../../../src/actions/kubernetes.js';
import { RuleFile } from '../../../src/rules/schema.js';
import { createIpcClient } from '../../../src/supervisor/ipc-client.js';
import { createRender } from '../../../src/template.js';
import { startSupervisor, type SupervisorProcess } from '../../../sim/launch.js';
import { startFakeKubeApi, TOKEN, type FakeKubeApi } from '../../helpers/fake-kube-api.js';
import { REPO_ROOT } from '../../helpers/remediator.js';

/**
 * Where the actions run, (b): the supervisor in a Kubernetes pod. remediator cannot reach the pod's socket, so an IPC
 * step runs as `remediator ipc …` inside the exporter sidecar, through the kubernetes action's execInPod.
 *
 * The API server here is a local HTTP/WebSocket server (test/helpers/fake-kube-api.ts) that speaks exactly the calls
 * the action makes: GET /api/v1/namespaces/NS/pods?labelSelector=… and the pods/exec WebSocket upgrade with
 * v4.channel.k8s.io (stdout 1, stderr 2, V1Status 3). Its "sidecar container" runs the requested argv for real, in
 * this checkout (the image's /app), with the sidecar's environment (SUPERVISOR_IPC_PATH), against the simulated
 * supervisor's socket. So the request the supervisor gets, its answer and the exit code are all real; only the
 * kubelet is stood in for.
 */
const RULE = `
id: K8S-IPC
title: IPC through the exporter sidecar
match: ['alertname="RuntimeStarvation"', 'namespace=~".+"']
target: "{{ labels.namespace }}/{{ labels.pod }}"
vars:
  sidecar: supervisor-exporter
steps:
  - name: review
    action:
      kubernetes:
        execInPod:
          namespace: "{{ labels.namespace }}"
          selector: { app.kubernetes.io/name: payments-worker }
          container: "{{ vars.sidecar }}"
          command: [node, dist/cli.js, ipc, state, --timeout, 2s]
    expect: { exitCode: 0 }
  - name: quarantine
    action:
      kubernetes:
        execInPod:
          namespace: "{{ labels.namespace }}"
          selector: { app.kubernetes.io/name: payments-worker }
          container: "{{ vars.sidecar }}"
          command: [node, dist/cli.js, ipc, quarantine_child, --child, "{{ labels.child_id }}", --reason, "P1-004 step 3"]
    expect: { exitCode: 0 }
  - name: remove-unconfirmed
    action:
      kubernetes:
        execInPod:
          namespace: "{{ labels.namespace }}"
          selector: { app.kubernetes.io/name: payments-worker }
          container: "{{ vars.sidecar }}"
          command: [node, dist/cli.js, ipc, remove_child, --child, "{{ labels.child_id }}"]
`;

const log = pino({ level: 'silent' });

describe('placement (b): IPC steps through execInPod into the exporter sidecar, against a local HTTP/WebSocket server speaking the Kubernetes pods list and pods/exec (v4.channel.k8s.io) calls', () => {
  let api: FakeKubeApi;
  let sup: SupervisorProcess;
  const saved = process.env.KUBECONFIG;
  const steps = RuleFile.parse(parse(RULE)).steps;
  const labels = { alertname: 'RuntimeStarvation', namespace: 'payments', pod: 'payments-worker-0', child_id: 'ledger_sync' };
  const run = async (name: string) => {
    const step = steps.find((s) => s.name === name)!;
    const spec = KubernetesSpec.parse(step.action!.spec);
    const rendered = kubernetes.render(
      spec,
      createRender({ labels, annotations: {}, vars: { sidecar: 'supervisor-exporter' }, env: {} }),
    );
    return kubernetes.run(rendered, { signal: AbortSignal.timeout(60_000), log });
  };

  beforeAll(async () => {
    sup = await startSupervisor({ config: { children: [{ name: 'payment_loop' }, { name: 'ledger_sync' }] } });
    api = await startFakeKubeApi();
    process.env.KUBECONFIG = api.writeKubeconfig();
    api.on('GET', '/api/v1/namespaces/payments/pods', {
      status: 200,
      body: {
        kind: 'PodList',
        apiVersion: 'v1',
        metadata: {},
        items: [{ metadata: { name: 'payments-worker-0', namespace: 'payments' }, status: { phase: 'Running' } }],
      },
    });
    // The sidecar: remediator's image with the exporter's environment (the ConfigMap supervisor-exporter).
    api.onExec({
      run: ({ command }) =>
        new Promise((resolve) => {
          const child = spawn(command[0]!, command.slice(1), {
            cwd: REPO_ROOT,
            env: {
              PATH: `${dirname(process.execPath)}:/usr/bin:/bin`,
              SUPERVISOR_IPC_PATH: sup.ipcPath,
              // Without registration, hello does not say the target id: the sidecar's ConfigMap does.
              SUPERVISOR_TARGET_ID: sup.targetId,
            },
          });
          let stdout = '';
          let stderr = '';
          child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
          child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
          child.on('close', (code) => resolve({ stdout, stderr, exitCode: code ?? 128 }));
        }),
    });
  });

  afterAll(async () => {
    if (saved === undefined) delete process.env.KUBECONFIG;
    else process.env.KUBECONFIG = saved;
    await api?.stop();
    await sup?.stop();
  });

  it('state: the pod is found by its labels, the sidecar asks the socket, the answer comes back with exit code 0', async () => {
    const result = await run('review');
    expect(result).toMatchObject({ status: 'succeeded', exitCode: 0 });
    const answer = JSON.parse(result.output!) as {
      ok: boolean;
      result: { state: { child_runtime_records: { child_id: string }[] } };
    };
    expect(answer.ok).toBe(true);
    expect(answer.result.state.child_runtime_records.map((r) => r.child_id).sort()).toEqual(['ledger_sync', 'payment_loop']);
    expect(api.requests.map((r) => `${r.method} ${r.path}?${r.query.toString()}`)).toContain(
      'GET /api/v1/namespaces/payments/pods?labelSelector=app.kubernetes.io%2Fname%3Dpayments-worker',
    );
    const exec = api.execs.at(-1)!;
    expect(exec.path).toBe('/api/v1/namespaces/payments/pods/payments-worker-0/exec');
    expect(exec.query.get('container')).toBe('supervisor-exporter');
    expect(exec.query.getAll('command')).toEqual(['node', 'dist/cli.js', 'ipc', 'state', '--timeout', '2s']);
    expect(exec.protocol).toBe('v4.channel.k8s.io');
    expect(exec.authorization).toBe(`Bearer ${TOKEN}`);
    expect(api.unmatched).toEqual([]);
  });

  it('a command: the child is quarantined in the supervisor (read back over its own socket), exit code 0', async () => {
    const result = await run('quarantine');
    expect(result).toMatchObject({ status: 'succeeded', exitCode: 0 });
    const answer = JSON.parse(result.output!) as {
      result: { result: { accepted: boolean; command_id: string; state_delta: { outcome: { operation_after: string } } } };
    };
    expect(answer.result.result.accepted).toBe(true);
    expect(answer.result.result.state_delta.outcome.operation_after).toBe('quarantined');
    const state = await createIpcClient({ path: sup.ipcPath }).call('state', { target_id: sup.targetId }, { timeoutMs: 5000 });
    expect(state.status).toBe('answered');
    const records = (
      state as { response: { result: { state: { child_runtime_records: { child_id: string; operation: string }[] } } } }
    ).response.result.state.child_runtime_records;
    expect(records.find((r) => r.child_id === 'ledger_sync')?.operation).toBe('quarantined');
    expect(api.execs.at(-1)!.query.getAll('command')).toEqual([
      'node',
      'dist/cli.js',
      'ipc',
      'quarantine_child',
      '--child',
      'ledger_sync',
      '--reason',
      'P1-004 step 3',
    ]);
  });

  it('a dangerous command without --confirmed is refused in the sidecar before anything is sent: exit code 64', async () => {
    const result = await run('remove-unconfirmed');
    expect(result).toMatchObject({ status: 'failed', exitCode: 64 });
    expect(result.output).toContain('confirmed');
    const state = await createIpcClient({ path: sup.ipcPath }).call('state', { target_id: sup.targetId }, { timeoutMs: 5000 });
    const records = (
      state as { response: { result: { state: { child_runtime_records: { child_id: string; operation: string }[] } } } }
    ).response.result.state.child_runtime_records;
    expect(records.find((r) => r.child_id === 'ledger_sync')?.operation).not.toBe('removed');
  });

  it('a starved control loop: state gets no answer, exit code 2 (the timeout a rule branches on)', async () => {
    await sup.fault('stall');
    try {
      const result = await run('review');
      expect(result).toMatchObject({ status: 'failed', exitCode: 2 });
      expect(result.output).toContain('"timedOut":true');
    } finally {
      await sup.fault('unstall');
    }
  });
});
