/**
 * Where remediator's Redis is and how to reach it, from the environment: one URL, a Sentinel group or a Cluster,
 * with passwords (or files holding them) and TLS. Pure data and validation; `queue/connection.ts` makes the clients.
 * Every problem names the variable at fault, so a bad deployment stops at start-up with a message, not a hang.
 */
import { z } from 'zod';

export interface HostPort {
  host: string;
  port: number;
}

export type RedisTopology =
  | { kind: 'single'; url: string }
  | { kind: 'sentinel'; sentinels: HostPort[]; name: string }
  | { kind: 'cluster'; nodes: HostPort[] };

export interface RedisSettings {
  topology: RedisTopology;
  /** ACL user and password of the data nodes (a URL's own credentials stay in the URL). */
  username?: string;
  password?: string;
  /** Sentinel's own credentials (Sentinel `requirepass`), distinct from the data nodes'. */
  sentinelUsername?: string;
  sentinelPassword?: string;
  /** Present when TLS is on (`rediss://` or REDIS_TLS=true); `ca` is the PEM text of REDIS_CA_FILE. */
  tls?: { ca?: string };
  /** Replicas that must confirm the writes before a webhook gets 202 and before an action runs (0: off). */
  waitReplicas: number;
  waitTimeoutMs: number;
}

/** The raw variables, as config.ts validated them one by one. */
export interface RedisEnv {
  REDIS_URL: string;
  REDIS_SENTINELS?: HostPort[] | undefined;
  REDIS_SENTINEL_NAME?: string | undefined;
  REDIS_SENTINEL_USERNAME?: string | undefined;
  REDIS_SENTINEL_PASSWORD?: string | undefined;
  REDIS_CLUSTER_NODES?: HostPort[] | undefined;
  REDIS_USERNAME?: string | undefined;
  REDIS_PASSWORD?: string | undefined;
  REDIS_TLS: boolean;
  REDIS_CA_FILE?: string | undefined;
  REDIS_WAIT_REPLICAS: number;
  REDIS_WAIT_TIMEOUT: number;
}

export interface SettingIssue {
  variable: string;
  message: string;
}

/** Secrets that may come from a file instead (`<NAME>_FILE`, as Kubernetes Secrets are mounted). */
export const SECRET_FILE_VARIABLES = ['REDIS_PASSWORD', 'REDIS_SENTINEL_PASSWORD'] as const;

const HOST_PORT = /^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9_.-]+))(?::(\d{1,5}))?$/;

/** `host:port,host:port` (IPv6 as `[::1]:port`); a missing port is `defaultPort`. */
export function hostList(defaultPort: number) {
  return z.string().transform((text, ctx) => {
    const entries = text
      .split(',')
      .map((e) => e.trim())
      .filter((e) => e !== '');
    if (entries.length === 0) {
      ctx.addIssue({ code: 'custom', message: 'expected host:port[,host:port…]' });
      return z.NEVER;
    }
    const out: HostPort[] = [];
    for (const [i, entry] of entries.entries()) {
      const m = HOST_PORT.exec(entry);
      const port = m?.[3] === undefined ? defaultPort : Number(m[3]);
      if (m === null || port < 1 || port > 65535) {
        ctx.addIssue({ code: 'custom', message: `entry ${i + 1} ${JSON.stringify(entry)}: expected host:port` });
        return z.NEVER;
      }
      out.push({ host: m[1] ?? m[2]!, port });
    }
    return out;
  });
}

/**
 * Reads `<NAME>_FILE` into `<NAME>` for every secret that allows it. A trailing newline (as `echo` and most
 * editors leave it) is not part of the secret. Returns the environment to validate, and the problems found.
 */
export function readSecretFiles(
  env: Record<string, string>,
  readFile: (path: string) => string,
): { env: Record<string, string>; issues: SettingIssue[] } {
  const out = { ...env };
  const issues: SettingIssue[] = [];
  for (const name of SECRET_FILE_VARIABLES) {
    const file = env[`${name}_FILE`];
    if (file === undefined) continue;
    if (env[name] !== undefined) {
      issues.push({ variable: `${name}_FILE`, message: `set either ${name} or ${name}_FILE, not both` });
      continue;
    }
    try {
      const value = readFile(file).replace(/\r?\n$/, '');
      if (value === '') issues.push({ variable: `${name}_FILE`, message: `${file} is empty` });
      else out[name] = value;
    } catch (err) {
      issues.push({
        variable: `${name}_FILE`,
        message: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      });
    }
  }
  return { env: out, issues };
}

/**
 * The topology and its options from the validated variables. `given` names the variables the environment set
 * (to tell REDIS_URL's default from a REDIS_URL set beside REDIS_SENTINELS). Reads REDIS_CA_FILE.
 */
export function redisSettings(
  env: RedisEnv,
  given: ReadonlySet<string>,
  readFile: (path: string) => string,
): { settings?: RedisSettings; issues: SettingIssue[] } {
  const issues: SettingIssue[] = [];
  const issue = (variable: string, message: string) => issues.push({ variable, message });
  const sentinel = env.REDIS_SENTINELS !== undefined;
  const cluster = env.REDIS_CLUSTER_NODES !== undefined;
  const only = 'set only one of REDIS_URL, REDIS_SENTINELS or REDIS_CLUSTER_NODES';
  if (sentinel && cluster) issue('REDIS_CLUSTER_NODES', only);
  if ((sentinel || cluster) && given.has('REDIS_URL')) issue('REDIS_URL', only);
  if (sentinel && env.REDIS_SENTINEL_NAME === undefined)
    issue('REDIS_SENTINEL_NAME', 'required with REDIS_SENTINELS: the name of the monitored primary (Bitnami: mymaster)');
  if (!sentinel)
    for (const name of ['REDIS_SENTINEL_NAME', 'REDIS_SENTINEL_USERNAME', 'REDIS_SENTINEL_PASSWORD'] as const)
      if (env[name] !== undefined) issue(given.has(name) ? name : `${name}_FILE`, 'only used with REDIS_SENTINELS');

  let urlHasPassword = false;
  let urlTls = false;
  if (!sentinel && !cluster) {
    try {
      const url = new URL(env.REDIS_URL);
      urlHasPassword = url.password !== '';
      urlTls = url.protocol === 'rediss:';
      if (urlHasPassword && env.REDIS_PASSWORD !== undefined)
        issue(
          given.has('REDIS_PASSWORD') ? 'REDIS_PASSWORD' : 'REDIS_PASSWORD_FILE',
          'REDIS_URL carries a password already; set it in one place',
        );
    } catch {
      issue('REDIS_URL', 'not a URL: expected redis://[user:password@]host:port[/db] or rediss://…');
    }
  }

  const tlsOn = env.REDIS_TLS || urlTls;
  let ca: string | undefined;
  if (env.REDIS_CA_FILE !== undefined) {
    if (!tlsOn) issue('REDIS_CA_FILE', 'set, but TLS is off: use rediss:// in REDIS_URL, or REDIS_TLS=true');
    try {
      ca = readFile(env.REDIS_CA_FILE);
      if (!ca.includes('-----BEGIN CERTIFICATE-----')) issue('REDIS_CA_FILE', `${env.REDIS_CA_FILE} holds no PEM certificate`);
    } catch (err) {
      issue(
        'REDIS_CA_FILE',
        `cannot read ${env.REDIS_CA_FILE}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
    }
  }
  if (issues.length > 0) return { issues };

  const topology: RedisTopology = sentinel
    ? { kind: 'sentinel', sentinels: env.REDIS_SENTINELS!, name: env.REDIS_SENTINEL_NAME! }
    : cluster
      ? { kind: 'cluster', nodes: env.REDIS_CLUSTER_NODES! }
      : { kind: 'single', url: env.REDIS_URL };
  const settings: RedisSettings = {
    topology,
    ...(env.REDIS_USERNAME !== undefined ? { username: env.REDIS_USERNAME } : {}),
    ...(env.REDIS_PASSWORD !== undefined ? { password: env.REDIS_PASSWORD } : {}),
    ...(env.REDIS_SENTINEL_USERNAME !== undefined ? { sentinelUsername: env.REDIS_SENTINEL_USERNAME } : {}),
    ...(env.REDIS_SENTINEL_PASSWORD !== undefined ? { sentinelPassword: env.REDIS_SENTINEL_PASSWORD } : {}),
    ...(tlsOn ? { tls: ca !== undefined ? { ca } : {} } : {}),
    waitReplicas: env.REDIS_WAIT_REPLICAS,
    waitTimeoutMs: env.REDIS_WAIT_TIMEOUT,
  };
  return { settings, issues };
}

/** One line for logs and `check`: where Redis is, never a password. */
export function describeRedis(settings: RedisSettings): string {
  const t = settings.topology;
  const list = (hs: HostPort[]) => hs.map((h) => `${h.host.includes(':') ? `[${h.host}]` : h.host}:${h.port}`).join(',');
  const where =
    t.kind === 'single'
      ? redactUrl(t.url)
      : t.kind === 'sentinel'
        ? `sentinel ${t.name} via ${list(t.sentinels)}`
        : `cluster via ${list(t.nodes)}`;
  const extras = [
    settings.tls ? `tls${settings.tls.ca ? ' (own CA)' : ''}` : '',
    settings.waitReplicas > 0 ? `wait for ${settings.waitReplicas} replica(s) ≤ ${settings.waitTimeoutMs} ms` : '',
  ].filter((e) => e !== '');
  return extras.length > 0 ? `${where}; ${extras.join('; ')}` : where;
}

function redactUrl(text: string): string {
  try {
    const url = new URL(text);
    if (url.password !== '') url.password = '***';
    return url.toString();
  } catch {
    return '(invalid URL)';
  }
}
