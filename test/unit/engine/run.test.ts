import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { createMetrics } from '../../../src/metrics.js';
import { newRunRecord, type RunRecord } from '../../../src/engine/record.js';
import { runProcedure, type EngineDeps } from '../../../src/engine/run.js';
import { createPrometheusClient } from '../../../src/prometheus/client.js';
import { RuleFile, type EscalationWhen, type Procedure } from '../../../src/rules/schema.js';
import { silentLogger } from '../../../src/log.js';
import { startFakePrometheus, vector, notReady, type FakePrometheus } from '../../helpers/fake-prometheus.js';

function procedure(yaml: string): Procedure {
  return { ...RuleFile.parse(parse(yaml)), file: 'test.yaml' };
}

function record(labels: Record<string, string> = { alertname: 'A', instance: 'i-1' }): RunRecord {
  const run = newRunRecord({
    id: 'inc-test',
    procedure: 'T',
    title: 'T',
    target: 'i-1',
    alert: { labels, annotations: {}, fingerprint: '0123456789abcdef', startsAt: new Date().toISOString(), status: 'firing' },
    trigger: { source: 'alertmanager', receivedAt: new Date().toISOString() },
    dryRun: false,
  });
  return { ...run, epoch: 1 };
}

describe('engine/run', () => {
  let prom: FakePrometheus;
  let saves: RunRecord[];
  let escalations: EscalationWhen[];
  const deps = (over: Partial<EngineDeps> = {}): EngineDeps => ({
    prometheus: createPrometheusClient({ url: prom.url, timeoutMs: 1000 }),
    save: async (r) => void saves.push(structuredClone(r)),
    escalate: async (r, _p, when) => {
      escalations.push(when);
      r.escalations.push({ when, to: 'webhook', status: 'sent', at: new Date().toISOString(), message: 'm' });
    },
    resolvedAt: async () => undefined,
    metrics: createMetrics(),
    log: silentLogger,
    settings: { dryRun: false, pollIntervalMs: 20, stepTimeoutMs: 5000 },
    env: {},
    ...over,
  });

  beforeAll(async () => {
    prom = await startFakePrometheus();
  });
  afterAll(async () => prom.close());
  beforeEach(() => {
    saves = [];
    escalations = [];
  });

  const branching = procedure(`
id: T
title: branching
match: ['alertname="A"']
target: "{{ labels.instance }}"
steps:
  - name: probe
    action: { exec: { command: [node, -e, "process.exit(1)"] } }
    expect: { exitCode: [0, 1] }
  - name: when-running
    when: { step: probe, exitCode: 0 }
    action: { wait: { duration: 1ms } }
  - name: when-not-running
    when: { step: probe, exitCode: 1 }
    action: { wait: { duration: 1ms } }
    expect: { promql: 'up{instance="{{ labels.instance }}"}', op: "==", value: 1, within: 1s }
escalation:
  - { when: failed, to: [webhook], message: m }
`);

  it('takes the branch whose condition holds, records the other as skipped with the reason, and succeeds on a confirmed value', async () => {
    prom.script('up{instance="i-1"}', vector([{ instance: 'i-1' }, '0']), vector([{ instance: 'i-1' }, '1']));
    const r = await runProcedure(branching, record(), deps(), new AbortController().signal);
    expect(r.state).toBe('succeeded');
    expect(r.steps.map((s) => s.status)).toEqual(['passed', 'skipped', 'passed']);
    expect(r.steps[1]!.reason).toMatch(/^condition not met: .*exitCode/);
    expect(r.steps[0]!.result).toMatchObject({ status: 'failed', exitCode: 1 });
    expect(r.steps[2]!.observed).toEqual([{ labels: { instance: 'i-1' }, value: 1, at: expect.any(String) }]);
    expect(r.steps[2]!.expect?.attempts).toBeGreaterThanOrEqual(2);
    expect(escalations).toEqual([]);
    expect(r.sla.slaMs).toBe(15 * 60_000);
    expect(r.sla.actualMs).toBeGreaterThanOrEqual(0);
  });

  it('a Prometheus that cannot answer makes the verification unknown, escalates, and never reports success', async () => {
    prom.script('up{instance="i-1"}', notReady());
    const r = await runProcedure(branching, record(), deps(), new AbortController().signal);
    expect(r.steps[2]!.status).toBe('unknown');
    expect(r.steps[2]!.reason).toMatch(/verification unknown/);
    expect(escalations).toEqual(['unknown']);
    expect(r.state).toBe('escalated');
  });

  it('retries a failing step as many times as the rule says, then escalates', async () => {
    const p = procedure(`
id: T
title: retry
match: ['alertname="A"']
target: x
steps:
  - name: restart
    action: { exec: { command: [node, -e, "console.log('restarting')"] } }
    expect: { promql: 'healthy', op: "==", value: 1, within: 100ms }
    onFailure: retry
    retries: 1
escalation:
  - { when: failed, to: [webhook], message: m }
`);
    prom.script('healthy', vector([{}, '0']));
    const r = await runProcedure(p, record(), deps(), new AbortController().signal);
    expect(r.steps[0]!.attempts).toBe(2);
    expect(r.steps[0]!.status).toBe('failed');
    expect(r.steps[0]!.reason).toMatch(/after 2 attempts/);
    expect(escalations).toEqual(['failed']);
  });

  it('continues past a failed step when told, and a later verified step decides', async () => {
    const p = procedure(`
id: T
title: continue
match: ['alertname="A"']
target: x
steps:
  - name: first
    expect: { promql: 'a', op: "==", value: 1 }
    onFailure: continue
  - name: second
    when: { step: first, status: failed }
    expect: { promql: 'b', op: "==", value: 1 }
`);
    prom.script('a', vector([{}, '0']));
    prom.script('b', vector([{}, '1']));
    const r = await runProcedure(p, record(), deps(), new AbortController().signal);
    expect(r.steps.map((s) => s.status)).toEqual(['failed', 'passed']);
    expect(r.state).toBe('succeeded');
  });

  it('refuses a hostile label as a command argument: the step fails and nothing runs', async () => {
    const p = procedure(`
id: T
title: hostile
match: ['alertname="A"']
target: x
steps:
  - name: run
    action: { exec: { command: [node, -e, "require('fs').writeFileSync(process.argv[1], 'ran')", "{{ labels.instance }}"] } }
`);
    const r = await runProcedure(
      p,
      record({ alertname: 'A', instance: '--inspect=0.0.0.0' }),
      deps(),
      new AbortController().signal,
    );
    expect(r.steps[0]!.status).toBe('failed');
    expect(r.steps[0]!.reason).toMatch(/^not run: labels.instance starts with "-"/);
    expect(r.steps[0]!.result).toBeUndefined();
  });

  it('dry run records the plan and executes nothing', async () => {
    const r = await runProcedure(
      branching,
      record(),
      deps({ settings: { dryRun: true, pollIntervalMs: 20, stepTimeoutMs: 1000 } }),
      new AbortController().signal,
    );
    expect(r.state).toBe('skipped');
    expect(r.steps[0]!.result?.output).toMatch(/^dry run: would /);
    expect(r.steps[0]!.result?.exitCode).toBeUndefined();
  });

  it('a takeover in the action phase verifies first and does not repeat an action that already worked', async () => {
    const p = procedure(`
id: T
title: takeover
match: ['alertname="A"']
target: x
steps:
  - name: fix
    action: { exec: { command: [node, -e, "process.exit(3)"] } }
    expect: { promql: 'fixed', op: "==", value: 1, within: 1s }
`);
    prom.script('fixed', vector([{}, '1']));
    const left = record();
    left.steps = [{ name: 'fix', status: 'unknown', observed: [], attempts: 1, startedAt: new Date().toISOString() }];
    left.checkpoint = { index: 0, phase: 'action', attempt: 1, at: new Date().toISOString() };
    const r = await runProcedure(p, left, deps(), new AbortController().signal);
    expect(r.takeovers).toBe(1);
    expect(r.steps[0]!.status).toBe('passed');
    expect(r.steps[0]!.reason).toMatch(/not repeated/);
    expect(r.steps[0]!.result).toBeUndefined(); // exec would have recorded exitCode 3
    expect(r.state).toBe('succeeded');
  });

  it('once the alert resolved, takes no further action but still verifies', async () => {
    const p = procedure(`
id: T
title: resolve
match: ['alertname="A"']
target: x
steps:
  - name: one
    action: { wait: { duration: 1ms } }
  - name: two
    action: { wait: { duration: 1ms } }
  - name: verify
    expect: { promql: 'ok', op: "==", value: 1 }
`);
    prom.script('ok', vector([{}, '1']));
    const r = await runProcedure(
      p,
      record(),
      deps({ resolvedAt: async () => '2026-11-28T10:00:00Z' }),
      new AbortController().signal,
    );
    expect(r.steps.map((s) => s.status)).toEqual(['passed', 'skipped', 'passed']);
    expect(r.steps[1]!.reason).toMatch(/alert resolved at 2026-11-28T10:00:00Z: no further action/);
    // Nothing was verified before the alert resolved: the later verification cannot make it the run's fix.
    expect(r.state).toBe('resolved');
    expect(r.reason).toBe(
      'alert resolved at 2026-11-28T10:00:00Z before anything was verified (actions had run); not counted as a success',
    );
  });

  describe('outcome honesty: a run claims success only for what it verified', () => {
    const honest = (steps: string) =>
      procedure(`
id: H
title: honesty
match: ['alertname="A"']
target: x
sla: 15m
steps:
${steps}
escalation:
  - { when: failed, to: [webhook], message: m }
`);
    const metricsText = async (d: EngineDeps) => d.metrics.registry.metrics();

    it('resolved before anything was verified: `resolved`, no escalation, not a success in metrics or SLA figures', async () => {
      prom.script('ok', vector([{}, '1']));
      const d = deps({ resolvedAt: async () => '2026-11-28T10:00:00Z' });
      const r = await runProcedure(
        honest(`  - name: restart
    action: { wait: { duration: 1ms } }
  - name: verify
    expect: { promql: 'ok', op: "==", value: 1 }`),
        record(),
        d,
        new AbortController().signal,
      );
      expect(r.state).toBe('resolved');
      expect(r.steps.map((s) => s.status)).toEqual(['passed', 'passed']);
      expect(escalations).toEqual([]);
      expect(r.sla.withinSla).toBeUndefined();
      expect(r.sla.withinEstimate).toBeUndefined();
      const text = await metricsText(d);
      expect(text).toMatch(/remediator_runs_total\{procedure="H",outcome="resolved"\} 1/);
      expect(text).not.toMatch(/remediator_runs_total\{procedure="H",outcome="succeeded"\} [1-9]/);
      expect(text).not.toMatch(/remediator_run_sla_ratio_count\{procedure="H"\} [1-9]/);
    });

    it('verified before the alert resolved (its own fix resolved it): succeeded, counted in the SLA figures', async () => {
      prom.script('ok', vector([{}, '1']));
      let asked = 0;
      const d = deps({ resolvedAt: async () => (++asked >= 1 ? '2026-11-28T10:00:00Z' : undefined) });
      const r = await runProcedure(
        honest(`  - name: restart
    action: { wait: { duration: 1ms } }
    expect: { promql: 'ok', op: "==", value: 1 }
  - name: verify
    expect: { promql: 'ok', op: "==", value: 1 }`),
        record(),
        d,
        new AbortController().signal,
      );
      expect(r.resolvedAt).toBe('2026-11-28T10:00:00Z');
      expect(r.state).toBe('succeeded');
      expect(r.sla.withinSla).toBe(true);
      expect(await metricsText(d)).toMatch(/remediator_run_sla_ratio_count\{procedure="H"\} 1/);
    });

    it('the last step that ran only diagnoses (verifies: false): not a success, escalated as unknown', async () => {
      const r = await runProcedure(
        honest(`  - name: check-process
    action: { exec: { command: [node, -e, "process.exit(0)"] } }
    expect: { exitCode: [0, 1] }
    verifies: false
  - name: restart
    when: { step: check-process, exitCode: 1 }
    action: { wait: { duration: 1ms } }
    expect: { promql: 'ok', op: "==", value: 1 }`),
        record(),
        deps(),
        new AbortController().signal,
      );
      expect(r.steps.map((s) => s.status)).toEqual(['passed', 'skipped']);
      expect(r.reason).toBe('nothing verified: the last step that ran, check-process, only diagnoses (verifies: false)');
      expect(escalations).toEqual(['unknown']);
      expect(r.state).toBe('escalated');
    });

    it('a step without an expectation verifies nothing: a run of such steps is not a success', async () => {
      const d = deps();
      const r = await runProcedure(
        honest(`  - name: restart
    action: { wait: { duration: 1ms } }`),
        record(),
        d,
        new AbortController().signal,
      );
      expect(r.reason).toBe('nothing verified: the last step that ran, restart, has no expectation');
      expect(r.state).toBe('escalated');
      expect(await metricsText(d)).not.toMatch(/remediator_verifications_total\{procedure="H",result="holds"\} [1-9]/);
    });

    it('a diagnosis is not counted as a verification in remediator_verifications_total', async () => {
      prom.script('ok', vector([{}, '1']));
      const d = deps();
      const r = await runProcedure(
        honest(`  - name: look
    expect: { promql: 'ok', op: "==", value: 1 }
    verifies: false
  - name: verify
    expect: { promql: 'ok', op: "==", value: 1 }`),
        record(),
        d,
        new AbortController().signal,
      );
      expect(r.state).toBe('succeeded');
      expect(await metricsText(d)).toMatch(/remediator_verifications_total\{procedure="H",result="holds"\} 1\n/);
    });
  });

  it('verifies a failed action once instead of waiting out within', async () => {
    const p = procedure(`
id: T
title: failed action
match: ['alertname="A"']
target: x
steps:
  - name: restart
    action: { exec: { command: [node, -e, "console.error('start failed'); process.exit(2)"] } }
    expect: { promql: 'ready', op: "==", value: 1, within: 30s }
`);
    prom.script('ready', vector([{}, '0']));
    const r = await runProcedure(p, record(), deps(), new AbortController().signal);
    // One evaluation, not a poll until within's 30 s.
    expect(r.steps[0]!.expect?.attempts).toBe(1);
    expect(r.steps[0]!.reason).toMatch(/the action failed: start failed; verified once without waiting/);
  });

  it('forEach acts once per matching element of an earlier JSON result, with the element escaped into the URL', async () => {
    const { createServer } = await import('node:http');
    const hits: string[] = [];
    const api = createServer((req, res) => {
      hits.push(`${req.method} ${req.url}`);
      const body =
        req.url === '/jobs'
          ? {
              jobs: [
                { id: 'ok-1', state: 'running' },
                { id: 'blk/../2', state: 'stuck' },
                { id: 'ign-3', state: 'hung' },
              ],
            }
          : { result: 'paused' };
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(body));
    });
    await new Promise<void>((r) => api.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(api.address() as { port: number }).port}`;
    const p = procedure(`
id: T
title: forEach
match: ['alertname="A"']
target: x
vars: { api: "${url}" }
steps:
  - name: list
    action: { http: { method: GET, url: "{{ vars.api }}/jobs" } }
  - name: pause
    forEach: { step: list, path: jobs, where: { state: [stuck, hung] } }
    action: { http: { method: POST, url: "{{ vars.api }}/jobs/{{ item.id }}/pause" } }
    expect: { json: { path: "1.result", value: paused } }
`);
    const r = await runProcedure(p, record(), deps(), new AbortController().signal);
    api.close();
    expect(hits).toEqual(['GET /jobs', 'POST /jobs/blk%2F..%2F2/pause', 'POST /jobs/ign-3/pause']);
    expect(r.steps[1]!.status).toBe('passed');
    expect(r.steps[1]!.result?.detail).toEqual({ items: 2 });
    expect(r.state).toBe('succeeded');
  });

  it('ipc: checks the child exists, quarantines each stale child by forEach, names the run in command_id, verifies through the socket', async () => {
    const { goldenAnswer, startFakeSupervisor } = await import('../../helpers/golden-supervisor.js');
    // Before: "stuck" active and heartbeat-stale; after the quarantine, state shows it quarantined.
    const before = goldenAnswer('state-stuck-cancelling', 2)
      .replace('"operation":"quarantined"', '"operation":"active"')
      .replace('"heartbeat_stale":false', '"heartbeat_stale":true');
    const sup = await startFakeSupervisor({
      hello: goldenAnswer('hello'),
      state: before,
      'command.quarantine_child': goldenAnswer('quarantine-child'),
    });
    const p = procedure(`
id: T
title: ipc
match: ['alertname="A"']
target: x
vars: { ipc_path: "${sup.path}", target_id: payments-worker-a }
steps:
  - name: review
    when:
      ipc: { path: "{{ vars.ipc_path }}", method: state }
      json: { path: result.state.child_runtime_records, where: { child_id: "{{ labels.child_id }}" }, count: 1 }
    action: { ipc: { path: "{{ vars.ipc_path }}", method: state, target_id: "{{ vars.target_id }}" } }
    expect: { json: { path: result.state.child_runtime_records, where: { "liveness.heartbeat_stale": true }, count: 1, op: ">=" } }
  - name: quarantine
    forEach: { step: review, path: result.state.child_runtime_records, where: { "liveness.heartbeat_stale": true } }
    action: { ipc: { path: "{{ vars.ipc_path }}", method: command.quarantine_child, target_id: "{{ vars.target_id }}", child: "{{ item.child_id }}" } }
    expect:
      ipc: { path: "{{ vars.ipc_path }}", method: state }
      json: { path: result.state.child_runtime_records, where: { child_id: "{{ labels.child_id }}" }, field: operation, value: quarantined }
      within: 2s
`);
    const running = runProcedure(p, record({ alertname: 'A', child_id: 'stuck' }), deps(), new AbortController().signal);
    // The supervisor answers the quarantined state once the command arrived.
    for (let i = 0; !sup.requests().some((r) => r.method === 'command.quarantine_child'); i++) {
      if (i > 1000) break;
      await new Promise((r) => setTimeout(r, 5));
    }
    sup.answers.set('state', goldenAnswer('state-stuck-cancelling', 2));
    const r = await running;
    await sup.close();
    expect(r.steps.map((s) => [s.name, s.status, s.reason]).join('\n')).not.toMatch(/failed|skipped/);
    expect(r.state).toBe('succeeded');
    const command = sup.requests().find((q) => q.method === 'command.quarantine_child')!;
    expect(command.params).toMatchObject({
      command_id: 'T-inc-test-quarantine-stuck',
      reason: 'T step quarantine',
      target: { child_path: '/stuck' },
      target_id: 'payments-worker-a',
    });
  });

  it('a procedure timeout aborts the step in progress and escalates as timeout', async () => {
    const p = procedure(`
id: T
title: timeout
match: ['alertname="A"']
target: x
timeout: 300ms
steps:
  - name: slow
    action: { wait: { duration: 10s } }
  - name: never
    action: { wait: { duration: 1ms } }
escalation:
  - { when: timeout, to: [webhook], message: took too long }
`);
    const r = await runProcedure(p, record(), deps(), new AbortController().signal);
    // The 10 s wait did not run to its end (it would have passed): the timeout aborted it.
    expect(r.steps).toHaveLength(1);
    expect(r.steps[0]!.status).toBe('failed');
    expect(escalations).toEqual(['timeout']);
    expect(r.state).toBe('escalated');
  });

  it('escalation if/unless pick the entry whose step-result condition holds', async () => {
    const { createEscalator } = await import('../../../src/engine/escalate.js');
    const { createServer } = await import('node:http');
    const got: { message: string }[] = [];
    const sink = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        got.push(JSON.parse(body) as { message: string });
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
    const p = procedure(`
id: T
title: conditional escalation
match: ['alertname="A"']
target: x
steps:
  - name: restart
    action: { exec: { command: [node, -e, "console.error('error: field_path=\\"dashboard.path\\" socket in use'); process.exit(1)"] } }
escalation:
  - when: failed
    to: [webhook]
    if: { step: restart, output: 'field_path="dashboard.path"' }
    message: socket path contention
  - when: failed
    to: [webhook]
    unless: { step: restart, output: 'field_path="dashboard.path"' }
    message: still disconnected
`);
    const { configureTargets } = await import('../../../src/escalation/index.js');
    const escalate = createEscalator({
      targets: configureTargets({ ESCALATION_WEBHOOK_URL: `http://127.0.0.1:${(sink.address() as { port: number }).port}/` }),
      timeoutMs: 2000,
      metrics: createMetrics(),
      log: silentLogger,
    });
    const r = await runProcedure(p, record(), deps({ escalate }), new AbortController().signal);
    sink.close();
    expect(r.steps[0]!.result?.output).toMatch(/field_path="dashboard.path"/);
    expect(got.map((g) => g.message)).toEqual(['socket path contention']);
    expect(r.state).toBe('escalated');
  });

  describe('step policy: the action verdict decides retries', () => {
    const server = async (handle: (req: IncomingMessage, res: ServerResponse) => void) => {
      const { createServer } = await import('node:http');
      const s = createServer(handle);
      await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
      return { url: `http://127.0.0.1:${(s.address() as { port: number }).port}`, close: () => new Promise((r) => s.close(r)) };
    };
    const fast = { dryRun: false, pollIntervalMs: 20, stepTimeoutMs: 5000, retryDelayMs: 5 };
    const withAction = (url: string, extra = '') =>
      procedure(`
id: T
title: policy
match: ['alertname="A"']
target: x
steps:
  - name: call
    action: { http: { method: POST, url: "${url}" } }
${extra}
`);

    it('a permanent failure (HTTP 403) is not retried, even with onFailure: retry', async () => {
      let calls = 0;
      const s = await server((_req, res) => void (calls++, res.writeHead(403).end('forbidden')));
      const r = await runProcedure(
        withAction(s.url, '    onFailure: retry\n    retries: 3'),
        record(),
        deps({ settings: fast }),
        new AbortController().signal,
      );
      await s.close();
      expect(calls).toBe(1);
      expect(r.steps[0]).toMatchObject({ status: 'failed', attempts: 1, result: { httpStatus: 403, retryable: false } });
      expect(r.steps[0]!.reason).toMatch(/not retried: the action says another attempt cannot help/);
    });

    it('a call that could not be made (connection reset) is tried again with backoff, also without onFailure: retry', async () => {
      let calls = 0;
      const s = await server((req) => void (calls++, req.socket.destroy()));
      const r = await runProcedure(withAction(s.url), record(), deps({ settings: fast }), new AbortController().signal);
      await s.close();
      expect(calls).toBe(3);
      expect(r.steps[0]).toMatchObject({
        status: 'failed',
        attempts: 1,
        result: { status: 'failed', detail: { error: 'retryable' } },
      });
    });

    it('a transient failure that clears is a success on the same attempt', async () => {
      let calls = 0;
      const s = await server((req, res) => void (++calls < 3 ? req.socket.destroy() : res.writeHead(200).end('ok')));
      const r = await runProcedure(withAction(s.url), record(), deps({ settings: fast }), new AbortController().signal);
      await s.close();
      expect(calls).toBe(3);
      expect(r.steps[0]).toMatchObject({ status: 'passed', attempts: 1, result: { httpStatus: 200 } });
    });

    it('a retryable failure (HTTP 503) with onFailure: retry uses its attempts', async () => {
      let calls = 0;
      const s = await server((_req, res) => void (calls++, res.writeHead(503).end('busy')));
      const r = await runProcedure(
        withAction(s.url, '    onFailure: retry\n    retries: 2'),
        record(),
        deps({ settings: fast }),
        new AbortController().signal,
      );
      await s.close();
      expect(calls).toBe(3);
      expect(r.steps[0]).toMatchObject({ status: 'failed', attempts: 3 });
    });
  });
});
