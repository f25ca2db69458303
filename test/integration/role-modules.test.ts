/**
 * What each role's process loads (issue 13, idle RSS): a receiver never loads the worker's side (the engine, BullMQ's
 * Worker), axios, cockatiel or the Kubernetes client; a worker never loads Express or the console (its probes are on
 * plain node:http), and axios only once it has a run; the Kubernetes client only where a procedure has a kubernetes
 * action. Read from the real processes: each built remediator process runs with a module loader hook
 * (NODE_OPTIONS=--import) that appends every module it loads to a file of its own, and the test reads those files.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { webhookPayload } from '../helpers/payload.js';
import { cleanupPrefix, REDIS_URL, requireRedis, testPrefix } from '../helpers/redis.js';
import { startRemediator, type RemediatorProcess } from '../helpers/remediator.js';
import { waitFor } from '../helpers/wait.js';

const TOKEN = 'role-modules-token-0123456789abc';
const EXEC_RULE = `id: RM-001
title: exec probe
match: ['alertname="RoleModules"']
target: "{{ labels.instance }}"
steps:
  - name: act
    action: { exec: { command: ["/bin/true"] } }
`;
const KUBERNETES_RULE = `id: RM-002
title: kubernetes probe
match: ['alertname="RoleModulesK8s"']
target: "{{ labels.instance }}"
steps:
  - name: restart
    action:
      kubernetes:
        rolloutRestart: { kind: Deployment, namespace: default, name: "{{ labels.instance }}" }
`;

/** A loader hook, in files of its own (the process under test runs plain node on dist/, not the test's TypeScript). */
function writeHook(dir: string, logDir: string): string {
  const loader = join(dir, 'loader.mjs');
  writeFileSync(
    loader,
    `import { appendFileSync } from 'node:fs';\n` +
      `export async function load(url, context, next) {\n` +
      `  appendFileSync(${JSON.stringify(logDir)} + '/' + process.pid + '.txt', url + '\\n');\n` +
      `  return next(url, context);\n}\n`,
  );
  const hook = join(dir, 'hook.mjs');
  writeFileSync(hook, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(loader).href)});\n`);
  return pathToFileURL(hook).href;
}

/** Every module URL the process with this pid has loaded so far. */
function loaded(logDir: string, pid: number): string[] {
  try {
    return readFileSync(join(logDir, `${pid}.txt`), 'utf8')
      .split('\n')
      .filter(Boolean);
  } catch {
    return [];
  }
}

const has = (modules: string[], part: string) => modules.some((m) => m.includes(part));
/** Each of `parts` is in none of the loaded modules (each failure names its part). */
function expectNoneLoaded(modules: string[], parts: readonly string[]): void {
  for (const never of parts) expect({ never, loaded: has(modules, never) }).toEqual({ never, loaded: false });
}

describe('integration: each role loads only its own modules (real processes)', () => {
  const prefixes = [testPrefix('role-modules-r'), testPrefix('role-modules-w'), testPrefix('role-modules-k')];
  const base = mkdtempSync(join(tmpdir(), 'remediator-role-modules-'));
  const rulesDir = join(base, 'rules');
  const k8sRulesDir = join(base, 'rules-k8s');
  const logDir = join(base, 'log');
  const hook = writeHook(base, logDir);
  const started: RemediatorProcess[] = [];
  const env = (prefix: string, rules: string, extra: Record<string, string> = {}) => ({
    REDIS_URL,
    QUEUE_PREFIX: prefix,
    RULES_DIR: rules,
    WEBHOOK_TOKEN: TOKEN,
    PROMETHEUS_URL: 'http://127.0.0.1:9',
    NODE_OPTIONS: `--max-semi-space-size=2 --import=${hook}`,
    ...extra,
  });
  const ready = async (r: RemediatorProcess) =>
    waitFor(
      `${r.process.name} /readyz`,
      async () => ((await fetch(`${r.url}/readyz`).catch(() => undefined))?.ok ? true : undefined),
      {
        timeoutMs: 20_000,
        processes: [r.process],
      },
    );
  const webhook = async (r: RemediatorProcess, alertname: string, instance: string) =>
    fetch(`${r.url}/webhook`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify(webhookPayload({ alertname, instance })),
    });

  beforeAll(async () => {
    await requireRedis();
    for (const d of [rulesDir, k8sRulesDir, logDir]) mkdirSync(d);
    writeFileSync(join(rulesDir, 'exec.yaml'), EXEC_RULE);
    writeFileSync(join(k8sRulesDir, 'exec.yaml'), EXEC_RULE);
    writeFileSync(join(k8sRulesDir, 'k8s.yaml'), KUBERNETES_RULE);
  });
  afterAll(async () => {
    await Promise.all(started.map((r) => r.stop()));
    for (const p of prefixes) await cleanupPrefix(p);
    rmSync(base, { recursive: true, force: true });
  });

  it('a receiver: no engine, no BullMQ Worker or index, no axios, cockatiel or Kubernetes client, before and after a webhook', async () => {
    // Its rules have a kubernetes action too: what a receiver loads does not depend on the rules' actions.
    const r = await startRemediator(env(prefixes[0]!, k8sRulesDir), 'receiver', 'rm-receiver');
    started.push(r);
    expect((await webhook(r, 'RoleModules', 'rm-1')).status).toBe(202);
    expect((await webhook(r, 'RoleModulesK8s', 'rm-2')).status).toBe(202);
    const modules = loaded(logDir, r.process.pid);
    // The log works: the receiver's own modules are in it.
    expect(has(modules, '/dist/receiver/webhook.js')).toBe(true);
    expect(has(modules, '/node_modules/bullmq/dist/cjs/classes/queue.js')).toBe(true);
    expectNoneLoaded(modules, [
      '/dist/engine/step.js',
      '/dist/engine/admission.js',
      '/dist/queue/worker.js',
      '/node_modules/bullmq/dist/cjs/index.js',
      '/node_modules/bullmq/dist/cjs/classes/worker.js',
      '/node_modules/axios/',
      '/node_modules/cockatiel/',
      '/node_modules/@kubernetes/client-node/',
    ]);
  });

  it('a worker: no Express or console, axios only with its first run; the Kubernetes client only with a kubernetes action', async () => {
    const worker = await startRemediator(env(prefixes[1]!, rulesDir), 'worker', 'rm-worker');
    started.push(worker);
    await ready(worker);
    const idle = loaded(logDir, worker.process.pid);
    // The log works: the worker's own modules are in it.
    expect(has(idle, '/dist/engine/step.js')).toBe(true);
    expectNoneLoaded(idle, [
      // Its probes and /metrics are on plain node:http (receiver/probes.ts): no Express, no receiver app.
      '/node_modules/express/',
      '/dist/receiver/app.js',
      '/dist/receiver/webhook.js',
      '/dist/console/',
      '/dist/prometheus/range.js',
      '/node_modules/axios/',
      '/node_modules/@kubernetes/client-node/',
    ]);

    // Its first run starts loading axios (serve.ts: the import overlaps the run, not its first Prometheus query).
    const receiver = await startRemediator(env(prefixes[1]!, rulesDir), 'receiver', 'rm-receiver-w');
    started.push(receiver);
    expect((await webhook(receiver, 'RoleModules', 'rm-3')).status).toBe(202);
    await waitFor(
      'axios loaded with the first run',
      () => (has(loaded(logDir, worker.process.pid), '/node_modules/axios/') ? true : undefined),
      {
        timeoutMs: 20_000,
        processes: [worker.process],
      },
    );

    // serve.ts preloads the Kubernetes client where a procedure has a kubernetes action (its first import blocks).
    const k8s = await startRemediator(env(prefixes[2]!, k8sRulesDir), 'worker', 'rm-worker-k8s');
    started.push(k8s);
    await ready(k8s);
    await waitFor(
      'the Kubernetes client loaded',
      () => (has(loaded(logDir, k8s.process.pid), '/node_modules/@kubernetes/client-node/') ? true : undefined),
      { timeoutMs: 20_000, processes: [k8s.process] },
    );
  });
});
