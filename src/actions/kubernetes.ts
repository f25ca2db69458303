import { Writable } from 'node:stream';
import { z } from 'zod';
import type * as K8s from '@kubernetes/client-node';
import type { Render } from '../template.js';
import { TemplateError, renderCommand } from '../template.js';
import { ActionError, capOutput, type Action, type ActionContext, type ActionResult } from './types.js';

/**
 * A name or namespace as written in a rule file: literal DNS-1123 characters and `{{ … }}` holes.
 * The holes are checked when rendered (sink `k8s-name`), the whole name after that (`checkName`).
 */
const NameTemplate = z
  .string()
  .regex(
    /^([a-z0-9.-]|\{\{[^{}]*\}\})+$/,
    'expected a Kubernetes name (lower-case letters, digits, - and .) or a {{ template }}',
  );
const LabelKey = z
  .string()
  .regex(
    /^([a-z0-9]([-a-z0-9.]*[a-z0-9])?\/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/,
    'expected a label key such as app.kubernetes.io/name',
  );

const Target = { namespace: NameTemplate, name: NameTemplate };

export const KubernetesSpec = z
  .strictObject({
    /** kubeconfig context to use; default: the current context, or the in-cluster service account. */
    context: z.string().min(1).optional(),
    /** What `kubectl rollout restart` does: a new restartedAt annotation on the pod template. */
    rolloutRestart: z.strictObject({ kind: z.enum(['Deployment', 'StatefulSet', 'DaemonSet']), ...Target }).optional(),
    deletePod: z.strictObject(Target).optional(),
    /** Runs argv in a container (never through a shell); the result carries its exit code and output. */
    execInPod: z
      .strictObject({
        namespace: NameTemplate,
        /** The pod by name… */
        pod: NameTemplate.optional(),
        /** …or by labels: the first running pod (by name) that has them all. */
        selector: z.record(LabelKey, z.string().min(1)).optional(),
        /** Default: the pod's default container. */
        container: NameTemplate.optional(),
        command: z.array(z.string().min(1)).min(1),
      })
      .refine((s) => (s.pod === undefined) !== (s.selector === undefined), {
        message: 'exactly one of pod or selector must be set',
      })
      .optional(),
    scale: z
      .strictObject({ kind: z.enum(['Deployment', 'StatefulSet']), ...Target, replicas: z.number().int().min(0) })
      .optional(),
  })
  .refine((s) => OPERATIONS.filter((op) => s[op] !== undefined).length === 1, {
    message: 'exactly one of rolloutRestart, deletePod, execInPod or scale must be set',
  });
export type KubernetesSpec = z.infer<typeof KubernetesSpec>;

const OPERATIONS = ['rolloutRestart', 'deletePod', 'execInPod', 'scale'] as const;

/** The annotation `kubectl rollout restart` sets; changing it rolls the pods. */
export const RESTARTED_AT = 'kubectl.kubernetes.io/restartedAt';
/** The field manager our writes are recorded under (kubectl uses kubectl-rollout, kubectl-scale…). */
export const FIELD_MANAGER = 'remediator';

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** A rendered name must be a whole valid name, not only its holes: a literal typo fails before any request. */
function checkName(value: string, field: string, label = false): string {
  // A hole still there means a renderer that fills none (plan, docs, tests): nothing to check yet.
  if (value.includes('{{')) return value;
  const ok = label ? DNS1123_LABEL.test(value) : DNS1123_SUBDOMAIN.test(value) && value.length <= 253;
  if (!ok)
    throw new TemplateError(
      `${field} renders to ${JSON.stringify(value)}, not a valid Kubernetes ${label ? 'namespace' : 'name'}`,
    );
  return value;
}

function renderTarget<T extends { namespace: string; name: string }>(t: T, r: Render, at: string): T {
  return {
    ...t,
    namespace: checkName(r(t.namespace, 'k8s-name'), `${at}.namespace`, true),
    name: checkName(r(t.name, 'k8s-name'), `${at}.name`),
  };
}

function render(s: KubernetesSpec, r: Render): KubernetesSpec {
  const out: KubernetesSpec = { ...s };
  if (s.rolloutRestart) out.rolloutRestart = renderTarget(s.rolloutRestart, r, 'rolloutRestart');
  if (s.deletePod) out.deletePod = renderTarget(s.deletePod, r, 'deletePod');
  if (s.scale) out.scale = renderTarget(s.scale, r, 'scale');
  if (s.execInPod) {
    const e = s.execInPod;
    out.execInPod = {
      ...e,
      namespace: checkName(r(e.namespace, 'k8s-name'), 'execInPod.namespace', true),
      ...(e.pod !== undefined ? { pod: checkName(r(e.pod, 'k8s-name'), 'execInPod.pod') } : {}),
      // A label value from an alert must be a plain name: it cannot then add `,other=x` to the selector.
      ...(e.selector !== undefined
        ? { selector: Object.fromEntries(Object.entries(e.selector).map(([k, v]) => [k, r(v, 'k8s-name')])) }
        : {}),
      ...(e.container !== undefined ? { container: checkName(r(e.container, 'k8s-name'), 'execInPod.container', true) } : {}),
      // argv: each element one argument; a list var standing alone splices its elements (operator config).
      command: renderCommand(r, e.command),
    };
  }
  return out;
}

function selectorString(selector: Record<string, string>): string {
  return Object.entries(selector)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');
}

function describe(s: KubernetesSpec): string {
  const ctx = s.context !== undefined ? ` (context ${s.context})` : '';
  if (s.rolloutRestart)
    return `kubernetes: rollout restart ${s.rolloutRestart.kind.toLowerCase()} ${s.rolloutRestart.namespace}/${s.rolloutRestart.name}${ctx}`;
  if (s.deletePod) return `kubernetes: delete pod ${s.deletePod.namespace}/${s.deletePod.name}${ctx}`;
  if (s.scale)
    return `kubernetes: scale ${s.scale.kind.toLowerCase()} ${s.scale.namespace}/${s.scale.name} to ${s.scale.replicas}${ctx}`;
  const e = s.execInPod!;
  const where =
    e.pod !== undefined
      ? `pod ${e.namespace}/${e.pod}`
      : `first running pod in ${e.namespace} with ${selectorString(e.selector!)}`;
  return `kubernetes: exec in ${where}${e.container !== undefined ? ` container ${e.container}` : ''}: ${e.command.join(' ')}${ctx}`;
}

/** Loaded on first use only, so `check`, `plan` and `docs` never pay for the client. */
let client: Promise<typeof K8s> | undefined;
const loadClient = () => (client ??= import('@kubernetes/client-node'));

async function kubeConfig(k8s: typeof K8s, context: string | undefined): Promise<K8s.KubeConfig> {
  const kc = new k8s.KubeConfig();
  try {
    // KUBECONFIG, then ~/.kube/config, then the pod's service account.
    kc.loadFromDefault();
    if (context !== undefined) kc.setCurrentContext(context);
  } catch (err) {
    throw new ActionError(`kubernetes: cannot load the Kubernetes client configuration: ${(err as Error).message}`, false, {
      cause: err,
    });
  }
  if (context !== undefined && kc.getContextObject(context) === null) {
    throw new ActionError(`kubernetes: context "${context}" is not in the kubeconfig`, false);
  }
  return kc;
}

/** Rejects with the abort reason as soon as the step is aborted; the request itself is left to finish. */
function abortable<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

function statusMessage(body: unknown): string | undefined {
  if (typeof body === 'string') {
    try {
      return statusMessage(JSON.parse(body));
    } catch {
      return body.slice(0, 500);
    }
  }
  const message = (body as { message?: unknown } | undefined)?.message;
  return typeof message === 'string' ? message : undefined;
}

/**
 * Decides, at the edge, what an API failure means. Forbidden or unauthorised: the attempt cannot succeed
 * until RBAC changes (not retryable). Throttled, server errors, no connection: try again. Any other 4xx
 * (not found, conflict, invalid) is the target's answer: a failed result that carries the status.
 */
function apiFailure(err: unknown, what: string): ActionResult {
  const code = (err as { code?: unknown }).code;
  if (typeof code === 'number' && code >= 100) {
    const message = statusMessage((err as { body?: unknown }).body) ?? `HTTP ${code}`;
    if (code === 401 || code === 403) {
      throw new ActionError(
        `kubernetes: ${what}: ${code === 401 ? 'unauthorized' : 'forbidden'} (HTTP ${code}): ${message}; check the service account's RBAC`,
        false,
        { cause: err },
      );
    }
    if (code === 429 || code >= 500) throw new ActionError(`kubernetes: ${what}: HTTP ${code}: ${message}`, true, { cause: err });
    return { status: 'failed', httpStatus: code, output: capOutput(`${what}: ${message}`) };
  }
  throw new ActionError(`kubernetes: ${what}: ${(err as Error).message ?? String(err)}`, true, { cause: err });
}

const restartPatch = (at: string) => ({ spec: { template: { metadata: { annotations: { [RESTARTED_AT]: at } } } } });

/** kubectl's format: RFC 3339 in seconds (Go's time.RFC3339), here in UTC. */
export function restartedAtNow(now = new Date()): string {
  return now.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

async function rolloutRestart(
  k8s: typeof K8s,
  kc: K8s.KubeConfig,
  t: NonNullable<KubernetesSpec['rolloutRestart']>,
  ctx: ActionContext,
): Promise<ActionResult> {
  const apps = kc.makeApiClient(k8s.AppsV1Api);
  const restartedAt = restartedAtNow();
  const req = { namespace: t.namespace, name: t.name, body: restartPatch(restartedAt), fieldManager: FIELD_MANAGER };
  // Strategic merge patch, as `kubectl rollout restart` sends it.
  const opts = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.StrategicMergePatch);
  const what = `rollout restart ${t.kind.toLowerCase()} ${t.namespace}/${t.name}`;
  try {
    const patched = await abortable(
      t.kind === 'Deployment'
        ? apps.patchNamespacedDeployment(req, opts)
        : t.kind === 'StatefulSet'
          ? apps.patchNamespacedStatefulSet(req, opts)
          : apps.patchNamespacedDaemonSet(req, opts),
      ctx.signal,
    );
    return {
      status: 'succeeded',
      httpStatus: 200,
      output: `${t.kind.toLowerCase()}.apps/${t.name} restarted`,
      detail: { kind: t.kind, namespace: t.namespace, name: t.name, restartedAt, generation: patched.metadata?.generation },
    };
  } catch (err) {
    if (ctx.signal.aborted) throw err;
    return apiFailure(err, what);
  }
}

async function deletePod(
  k8s: typeof K8s,
  kc: K8s.KubeConfig,
  t: NonNullable<KubernetesSpec['deletePod']>,
  ctx: ActionContext,
): Promise<ActionResult> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  try {
    const pod = await abortable(core.deleteNamespacedPod({ namespace: t.namespace, name: t.name }), ctx.signal);
    return {
      status: 'succeeded',
      httpStatus: 200,
      output: `pod "${t.name}" deleted`,
      detail: { namespace: t.namespace, pod: t.name, uid: pod.metadata?.uid },
    };
  } catch (err) {
    if (ctx.signal.aborted) throw err;
    return apiFailure(err, `delete pod ${t.namespace}/${t.name}`);
  }
}

async function scale(
  k8s: typeof K8s,
  kc: K8s.KubeConfig,
  t: NonNullable<KubernetesSpec['scale']>,
  ctx: ActionContext,
): Promise<ActionResult> {
  const apps = kc.makeApiClient(k8s.AppsV1Api);
  // `kubectl scale` without preconditions: a JSON merge patch of the scale subresource.
  const req = { namespace: t.namespace, name: t.name, body: { spec: { replicas: t.replicas } }, fieldManager: FIELD_MANAGER };
  const opts = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
  try {
    const result = await abortable(
      t.kind === 'Deployment' ? apps.patchNamespacedDeploymentScale(req, opts) : apps.patchNamespacedStatefulSetScale(req, opts),
      ctx.signal,
    );
    return {
      status: 'succeeded',
      httpStatus: 200,
      output: `${t.kind.toLowerCase()}.apps/${t.name} scaled`,
      detail: {
        kind: t.kind,
        namespace: t.namespace,
        name: t.name,
        replicas: result.spec?.replicas ?? t.replicas,
        currentReplicas: result.status?.replicas,
      },
    };
  } catch (err) {
    if (ctx.signal.aborted) throw err;
    return apiFailure(err, `scale ${t.kind.toLowerCase()} ${t.namespace}/${t.name}`);
  }
}

async function findPod(
  k8s: typeof K8s,
  kc: K8s.KubeConfig,
  namespace: string,
  selector: Record<string, string>,
  signal: AbortSignal,
): Promise<string | ActionResult> {
  const labelSelector = selectorString(selector);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  let pods: K8s.V1PodList;
  try {
    pods = await abortable(core.listNamespacedPod({ namespace, labelSelector }), signal);
  } catch (err) {
    if (signal.aborted) throw err;
    return apiFailure(err, `list pods in ${namespace} with ${labelSelector}`);
  }
  const running = pods.items
    .filter((p) => p.status?.phase === 'Running' && p.metadata?.deletionTimestamp === undefined && p.metadata?.name !== undefined)
    .map((p) => p.metadata!.name!)
    .sort();
  if (running.length === 0)
    return {
      status: 'failed',
      output: `no running pod in ${namespace} matches ${labelSelector}`,
      detail: { selector: labelSelector, matched: pods.items.length },
    };
  return running[0]!;
}

/** Collects stdout and stderr in arrival order into one capped text. */
class Collector extends Writable {
  text = '';
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void) {
    if (this.text.length <= 4 * 16 * 1024) this.text += chunk.toString('utf8');
    done();
  }
}

/**
 * Our own WebSocket connector for the client's Exec: it offers only the v4 channel protocol (stdout 1,
 * stderr 2, status 3, a V1Status JSON) and keeps the streams to this call. The client's default handler
 * falls back on process.stdout for v5 close frames, which would end our logger's stream.
 */
function v4Connector(
  kc: K8s.KubeConfig,
  WebSocket: typeof import('ws').WebSocket,
): NonNullable<ConstructorParameters<typeof K8s.Exec>[1]> {
  return {
    async connect(path, _text, binary) {
      const server = kc.getCurrentCluster()?.server;
      if (server === undefined) throw new Error('no cluster in the kubeconfig');
      const opts: import('ws').ClientOptions = {};
      await kc.applyToHTTPSOptions(opts);
      const socket = new WebSocket(`${server.replace(/^http/, 'ws').replace(/\/$/, '')}${path}`, ['v4.channel.k8s.io'], opts);
      return new Promise((resolve, reject) => {
        socket.once('open', () => resolve(socket));
        socket.once('error', (err) => {
          // ws reports a refused upgrade as "Unexpected server response: 403"; keep the status for apiFailure.
          const refused = /Unexpected server response: (\d+)/.exec(err.message);
          reject(
            refused ? Object.assign(new Error(`exec upgrade refused: HTTP ${refused[1]}`), { code: Number(refused[1]) }) : err,
          );
        });
        socket.on('message', (data: Buffer, isBinary) => {
          if (!isBinary || data.length === 0 || binary === null) return;
          if (!binary(data.readUInt8(0), data.subarray(1))) socket.close();
        });
      });
    },
  };
}

/** V1Status from channel 3 → exit code: Success is 0; NonZeroExitCode carries it in details.causes. */
export function exitCodeOf(status: K8s.V1Status): number | undefined {
  if (status.status === 'Success') return 0;
  const cause = status.details?.causes?.find((c) => c.reason === 'ExitCode');
  const code = cause?.message !== undefined ? Number.parseInt(cause.message, 10) : Number.NaN;
  return Number.isInteger(code) ? code : undefined;
}

async function execInPod(
  k8s: typeof K8s,
  kc: K8s.KubeConfig,
  e: NonNullable<KubernetesSpec['execInPod']>,
  ctx: ActionContext,
): Promise<ActionResult> {
  let pod = e.pod;
  if (pod === undefined) {
    const found = await findPod(k8s, kc, e.namespace, e.selector!, ctx.signal);
    if (typeof found !== 'string') return found;
    pod = found;
  }
  const { WebSocket } = await import('ws');
  const out = new Collector();
  const detail = { namespace: e.namespace, pod, ...(e.container !== undefined ? { container: e.container } : {}) };
  const what = `exec in pod ${e.namespace}/${pod}`;
  ctx.signal.throwIfAborted();
  return new Promise<ActionResult>((resolve, reject) => {
    let socket: import('ws').WebSocket | undefined;
    let status: K8s.V1Status | undefined;
    const onAbort = () => {
      socket?.terminate();
      reject(ctx.signal.reason as Error);
    };
    ctx.signal.addEventListener('abort', onAbort, { once: true });
    const finish = () => {
      ctx.signal.removeEventListener('abort', onAbort);
      const output = capOutput(out.text);
      if (status === undefined)
        return resolve({
          status: 'failed',
          output,
          detail: { ...detail, reason: 'the connection closed without an exit status' },
        });
      const exitCode = exitCodeOf(status);
      if (exitCode === 0) return resolve({ status: 'succeeded', exitCode, output, detail });
      const reason = status.message ?? status.reason;
      resolve({
        status: 'failed',
        ...(exitCode !== undefined ? { exitCode } : {}),
        output: exitCode === undefined && reason ? capOutput(`${out.text}${reason}`) : output,
        detail: { ...detail, reason: status.reason },
      });
    };
    // Exec's API: (namespace, pod, container, command, stdout, stderr, stdin, tty, statusCallback).
    new k8s.Exec(kc, v4Connector(kc, WebSocket))
      .exec(e.namespace, pod, e.container as string, e.command, out, out, null, false, (s) => (status = s))
      .then((ws) => {
        socket = ws;
        if (ctx.signal.aborted) return onAbort();
        socket.once('close', finish);
      })
      .catch((err: unknown) => {
        ctx.signal.removeEventListener('abort', onAbort);
        if (ctx.signal.aborted) return;
        try {
          resolve(apiFailure(err, what));
        } catch (thrown) {
          reject(thrown);
        }
      });
  });
}

/** Acts on a cluster through its API: rollout restart, delete a pod, exec in a pod, scale. */
export const kubernetes: Action<KubernetesSpec> = {
  kind: 'kubernetes',
  spec: KubernetesSpec,
  describe,
  render,
  async run(s, ctx) {
    ctx.signal.throwIfAborted();
    const k8s = await abortable(loadClient(), ctx.signal);
    const kc = await kubeConfig(k8s, s.context);
    ctx.log.debug(
      { operation: OPERATIONS.find((op) => s[op] !== undefined), server: kc.getCurrentCluster()?.server },
      'kubernetes action',
    );
    if (s.rolloutRestart) return rolloutRestart(k8s, kc, s.rolloutRestart, ctx);
    if (s.deletePod) return deletePod(k8s, kc, s.deletePod, ctx);
    if (s.scale) return scale(k8s, kc, s.scale, ctx);
    return execInPod(k8s, kc, s.execInPod!, ctx);
  },
};
