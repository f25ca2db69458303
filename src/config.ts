import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { Duration } from './duration.js';
import { hostList, readSecretFiles, redisSettings, SECRET_FILE_VARIABLES, type RedisSettings } from './redis-settings.js';
import { DEFAULT_ROUTE, NO_ROUTES, parseRouteList, parseRouteTable, RouteTableError, type RouteTable } from './routes.js';

const Flag = z.stringbool({ truthy: ['true', '1', 'yes', 'on'], falsy: ['false', '0', 'no', 'off', ''] });
const Url = z.url({ protocol: /^https?$/ });

/**
 * Every setting remediator reads from the environment, with its default. The one place defaults live.
 * Strict: an unknown REMEDIATOR_* variable is not an error (the environment is shared), but every known one
 * is validated and a bad value stops start-up naming the variable.
 */
export const Config = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(9095),
  HOST: z.string().min(1).default('0.0.0.0'),
  /** One Redis (or a Service that always points at the primary). Alternatives: REDIS_SENTINELS, REDIS_CLUSTER_NODES. */
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, 'expected redis://host:port or rediss://…')
    .default('redis://127.0.0.1:6379'),
  /** Sentinel: the sentinels (`host:port,…`, port 26379 when left out) and the primary's name they monitor. */
  REDIS_SENTINELS: hostList(26379).optional(),
  REDIS_SENTINEL_NAME: z
    .string()
    .regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, _ . - only')
    .optional(),
  REDIS_SENTINEL_USERNAME: z.string().min(1).optional(),
  /** The sentinels' own password (Sentinel `requirepass`); or REDIS_SENTINEL_PASSWORD_FILE. */
  REDIS_SENTINEL_PASSWORD: z.string().min(1).optional(),
  /** Cluster: some of its nodes (`host:port,…`, port 6379 when left out); the rest are discovered. */
  REDIS_CLUSTER_NODES: hostList(6379).optional(),
  /** The data nodes' ACL user and password (Sentinel and Cluster; or in REDIS_URL); or REDIS_PASSWORD_FILE. */
  REDIS_USERNAME: z.string().min(1).optional(),
  REDIS_PASSWORD: z.string().min(1).optional(),
  /** TLS to every Redis node and sentinel (`rediss://` does it for REDIS_URL); REDIS_CA_FILE: a PEM CA bundle to trust. */
  REDIS_TLS: Flag.default(false),
  REDIS_CA_FILE: z.string().min(1).optional(),
  /** Replicas that must confirm the writes (Redis WAIT) before a webhook gets 202 and before each action; 0: off. */
  REDIS_WAIT_REPLICAS: z.coerce.number().int().min(0).max(16).default(0),
  REDIS_WAIT_TIMEOUT: Duration.default(500),
  QUEUE_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, _ . - only (it becomes a Redis hash tag)')
    .default('remediator'),
  PROMETHEUS_URL: Url.default('http://127.0.0.1:9090'),
  /** Optional: silences and RemediationEscalated alerts go here. */
  ALERTMANAGER_URL: Url.optional(),
  /**
   * How often an open RemediationEscalated alert is re-sent to Alertmanager (each send lives 4 intervals), until a
   * later run verifies the target healthy or an operator acknowledges it.
   */
  ESCALATION_RESEND_INTERVAL: Duration.default(60_000),
  /** Optional: escalations are POSTed here as JSON (and are the fallback when Alertmanager is unreachable). */
  ESCALATION_WEBHOOK_URL: Url.optional(),
  RULES_DIR: z.string().min(1).default('./rules'),
  /**
   * The URL people reach remediator's console at (behind a proxy or an Ingress): links in escalations point to
   * <this>/runs/<id>. Default: http://<HOST or 127.0.0.1>:<PORT>. An https URL also marks the session cookie Secure.
   */
  REMEDIATOR_EXTERNAL_URL: Url.optional(),
  /**
   * Required as `Authorization: Bearer` on /webhook, /api/* and /-/reload. Trimmed (a Secret made from a file ends
   * in a newline), then at least 16 visible ASCII characters. serve and receiver refuse to start without it (or
   * WEBHOOK_TOKEN_FILE) unless ALLOW_UNAUTHENTICATED=true.
   */
  WEBHOOK_TOKEN: z.string().optional(),
  /** A file holding the token (a mounted Secret); read once at start, trimmed, validated like WEBHOOK_TOKEN. */
  WEBHOOK_TOKEN_FILE: z.string().min(1).optional(),
  /**
   * Run serve/receiver without a token. Then remediator binds to 127.0.0.1 only (whatever HOST says) and warns on
   * every start: anyone who can reach the port could run procedures and lift the kill switch.
   */
  ALLOW_UNAUTHENTICATED: Flag.default(false),
  WEBHOOK_MAX_BYTES: z.coerce
    .number()
    .int()
    .positive()
    .default(5 * 1024 * 1024),
  /** More alerts than this in one webhook payload is a 400 naming `alerts` (bounded work per request). */
  WEBHOOK_MAX_ALERTS: z.coerce.number().int().min(1).max(10_000).default(1000),
  /**
   * `serve` only: how many receiver processes it forks beside itself (its worker), sharing PORT, so the webhook's
   * event loop never waits behind the worker's and both cores are used. 0: one process, receiver and worker together.
   */
  SERVE_RECEIVERS: z.coerce.number().int().min(0).max(64).default(1),
  // Runs mostly wait (Prometheus within/for, a command, a lease): many at once cost little CPU per worker.
  WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(1000).default(50),
  DRY_RUN: Flag.default(false),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** How often expectations re-query Prometheus while waiting (`within`, `for`). */
  POLL_INTERVAL: Duration.default(1000),
  /** Per-request timeout towards Prometheus and Alertmanager. */
  HTTP_TIMEOUT: Duration.default(5000),
  /** Step action timeout when a rule sets none. */
  STEP_TIMEOUT: Duration.default(60_000),
  /** BullMQ lock: a crashed worker's run is taken over after about LOCK_DURATION + STALLED_INTERVAL. */
  LOCK_DURATION: Duration.default(30_000),
  STALLED_INTERVAL: Duration.default(15_000),
  /** Worker SIGTERM: how long the current step may take to finish before the run is left to another worker. */
  SHUTDOWN_TIMEOUT: Duration.default(25_000),
  /** Start with automation paused (the kill switch); POST /api/resume lifts it. */
  PAUSED: Flag.default(false),
  /** Storm breaker: more distinct targets than this firing within STORM_WINDOW pauses automation and escalates once. */
  STORM_TARGETS: z.coerce.number().int().min(1).default(10),
  STORM_WINDOW: Duration.default(5 * 60_000),
  /** Finished runs stay in the history API (and block re-runs of the same incident) this long. */
  RUN_RETENTION: Duration.default(7 * 24 * 3_600_000),
  /**
   * A firing incident that started longer ago than this is refused (recorded in the webhook's answer, not run): a
   * replay, or an alert remediator was not there for. Must be below RUN_RETENTION, so that every incident taken is
   * still remembered (and not run twice) when it comes again. Default: RUN_RETENTION less an hour.
   */
  MAX_INCIDENT_AGE: Duration.optional(),
  /**
   * Names of remediator's environment variables exec children inherit besides the fixed allow-list
   * (actions/exec.ts INHERITED_ENV: PATH, HOME, locale…), comma-separated. Read by the exec action at spawn.
   */
  /**
   * Routing by target (docs/supervisor.md, "Where the actions run"): a YAML file mapping route names to the targets
   * whose jobs go to that route's own queue. Read by receivers (where a job goes) and checked by workers.
   */
  ROUTES_FILE: z.string().min(1).optional(),
  /** The routes this worker takes jobs from, comma-separated (`default` is the queue of every unrouted target). */
  WORKER_ROUTES: z.string().default(DEFAULT_ROUTE),
  EXEC_ENV_ALLOW: z
    .string()
    .regex(/^\s*([A-Za-z_][A-Za-z0-9_]*\s*(,\s*[A-Za-z_][A-Za-z0-9_]*\s*)*)?$/, 'expected variable names, comma-separated')
    .default(''),
});
/** The validated environment, plus the Redis connection settings resolved from its REDIS_* variables. */
export type Config = Omit<z.infer<typeof Config>, 'WORKER_ROUTES'> & {
  redis: RedisSettings;
  /** ROUTES_FILE parsed; no file: every target on the `default` route. */
  routes: RouteTable;
  /** WORKER_ROUTES parsed. */
  WORKER_ROUTES: string[];
};

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Visible ASCII only: what an `Authorization` header carries unaltered, and what Alertmanager sends as written. */
const TOKEN_CHARS = /^[\x21-\x7e]+$/;
export const MIN_TOKEN_LENGTH = 16;

/** The token as configured, trimmed; a problem in words (never quoting the token) when it cannot be used. */
export function checkToken(raw: string): { token: string } | { problem: string } {
  const token = raw.trim();
  if (token === '') return { problem: 'is empty (after trimming spaces and line breaks)' };
  if (!TOKEN_CHARS.test(token))
    return { problem: 'may hold only visible ASCII characters (no spaces, control or non-ASCII characters inside)' };
  if (token.length < MIN_TOKEN_LENGTH)
    return { problem: `use at least ${MIN_TOKEN_LENGTH} characters (got ${token.length}), e.g. openssl rand -hex 24` };
  return { token };
}

/** WEBHOOK_TOKEN or the contents of WEBHOOK_TOKEN_FILE, trimmed and checked; problems name the variable. */
function resolveToken(
  config: { WEBHOOK_TOKEN?: string | undefined; WEBHOOK_TOKEN_FILE?: string | undefined },
  problems: string[],
  readFile: (path: string) => string,
): string | undefined {
  if (config.WEBHOOK_TOKEN !== undefined && config.WEBHOOK_TOKEN_FILE !== undefined) {
    problems.push('  WEBHOOK_TOKEN_FILE: set either WEBHOOK_TOKEN or WEBHOOK_TOKEN_FILE, not both');
    return undefined;
  }
  let raw = config.WEBHOOK_TOKEN;
  let name = 'WEBHOOK_TOKEN';
  if (config.WEBHOOK_TOKEN_FILE !== undefined) {
    name = 'WEBHOOK_TOKEN_FILE';
    try {
      raw = readFile(config.WEBHOOK_TOKEN_FILE);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code ?? 'error';
      problems.push(`  WEBHOOK_TOKEN_FILE: cannot read ${config.WEBHOOK_TOKEN_FILE} (${code})`);
      return undefined;
    }
  }
  if (raw === undefined) return undefined;
  const checked = checkToken(raw);
  if ('problem' in checked) {
    problems.push(`  ${name}: the token ${checked.problem}`);
    return undefined;
  }
  return checked.token;
}

/** Loopback addresses: what an unauthenticated remediator may bind to. */
export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** Every variable loadConfig reads: the schema's, and the `*_FILE` variants of secrets. */
const KNOWN = [...Object.keys(Config.shape), ...SECRET_FILE_VARIABLES.map((n) => `${n}_FILE`)];

/**
 * Parses the environment once; a bad value throws ConfigError naming every variable at fault. Reads the files that
 * `*_FILE` variables and REDIS_CA_FILE name.
 */
export function loadConfig(
  env: NodeJS.ProcessEnv = process.env,
  readFile: (path: string) => string = (path) => readFileSync(path, 'utf8'),
): Config {
  const given = Object.fromEntries(KNOWN.flatMap((k) => (env[k] === undefined ? [] : [[k, env[k]]])));
  const secrets = readSecretFiles(given, readFile);
  const lines = secrets.issues.map((i) => `  ${i.variable}: ${i.message}`);
  const parsed = Config.safeParse(secrets.env);
  if (!parsed.success) lines.push(...parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`));
  const redis = parsed.success ? redisSettings(parsed.data, new Set(Object.keys(given)), readFile) : undefined;
  if (redis) lines.push(...redis.issues.map((i) => `  ${i.variable}: ${i.message}`));
  const token = parsed.success ? resolveToken(parsed.data, lines, readFile) : undefined;
  if (parsed.success && parsed.data.MAX_INCIDENT_AGE !== undefined && parsed.data.MAX_INCIDENT_AGE >= parsed.data.RUN_RETENTION)
    lines.push('  MAX_INCIDENT_AGE: must be below RUN_RETENTION (an incident must be remembered as long as it may be taken)');
  const routing = parsed.success ? routingSettings(parsed.data, lines, readFile) : undefined;
  if (lines.length > 0 || !parsed.success || redis?.settings === undefined || routing === undefined)
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  const retention = parsed.data.RUN_RETENTION;
  const config: Config = {
    ...parsed.data,
    ...routing,
    MAX_INCIDENT_AGE: parsed.data.MAX_INCIDENT_AGE ?? Math.max(retention - 3_600_000, Math.floor(retention / 2)),
    redis: redis.settings,
  };
  // From here on WEBHOOK_TOKEN is the token in use, whichever variable gave it.
  if (token === undefined) delete config.WEBHOOK_TOKEN;
  else config.WEBHOOK_TOKEN = token;
  return config;
}

/** ROUTES_FILE and WORKER_ROUTES, read and cross-checked; each problem names its variable. */
function routingSettings(
  config: { ROUTES_FILE?: string | undefined; WORKER_ROUTES: string },
  problems: string[],
  readFile: (path: string) => string,
): { routes: RouteTable; WORKER_ROUTES: string[] } | undefined {
  let routes = NO_ROUTES;
  const before = problems.length;
  if (config.ROUTES_FILE !== undefined) {
    try {
      routes = parseRouteTable(readFile(config.ROUTES_FILE));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      problems.push(
        err instanceof RouteTableError
          ? `  ROUTES_FILE: ${config.ROUTES_FILE}: ${err.message}`
          : `  ROUTES_FILE: cannot read ${config.ROUTES_FILE} (${code ?? (err as Error).message})`,
      );
    }
  }
  const list = parseRouteList(config.WORKER_ROUTES);
  if ('problem' in list) problems.push(`  WORKER_ROUTES: ${list.problem}`);
  else if (config.ROUTES_FILE !== undefined && problems.length === before) {
    // With the table at hand, a typo in a worker's routes would leave its queue unserved: refuse it.
    const unknown = list.routes.filter((r) => !routes.routes.includes(r));
    if (unknown.length > 0)
      problems.push(`  WORKER_ROUTES: ${unknown.join(', ')} not declared in ROUTES_FILE (declared: ${routes.routes.join(', ')})`);
  }
  if (problems.length > before || 'problem' in list) return undefined;
  return { routes, WORKER_ROUTES: list.routes };
}

/**
 * The secure defaults of a process that serves the webhook and the API: a token, or the explicit opt-out, which
 * then binds loopback only. Returns the host to bind and the warning to log on every start; throws ConfigError.
 */
export function authSettings(
  config: Config,
  role: { receiver: boolean },
): { host: string; allowUnauthenticated: boolean; warning?: string } {
  if (config.WEBHOOK_TOKEN !== undefined) return { host: config.HOST, allowUnauthenticated: false };
  if (!config.ALLOW_UNAUTHENTICATED) {
    if (!role.receiver) return { host: config.HOST, allowUnauthenticated: false }; // a worker serves probes and metrics only
    throw new ConfigError(
      'invalid configuration:\n  WEBHOOK_TOKEN: required to serve /webhook and /api (anyone who reaches the port could run ' +
        'procedures and lift the kill switch). Set WEBHOOK_TOKEN (16+ characters, e.g. `openssl rand -hex 24`) or ' +
        'WEBHOOK_TOKEN_FILE; or, for a local trial only, ALLOW_UNAUTHENTICATED=true (binds 127.0.0.1)',
    );
  }
  const host = isLoopback(config.HOST) ? config.HOST : '127.0.0.1';
  return {
    host,
    allowUnauthenticated: true,
    warning:
      `ALLOW_UNAUTHENTICATED=true: no token is required on /webhook, /api and /-/reload; bound to ${host} only` +
      (host !== config.HOST ? ` (HOST=${config.HOST} ignored)` : '') +
      '. Any local process can run procedures and lift the kill switch. Set WEBHOOK_TOKEN for anything but a trial.',
  };
}

/**
 * `remediator exporter`: the Prometheus exporter for one rust-tokio-supervisor (docs/supervisor.md). Its own
 * entry point, so none of the service's settings apply to it and SUPERVISOR_IPC_PATH is required only here.
 */
export const ExporterConfig = z.object({
  /** The supervisor's `ipc.path` (its dashboard IPC Unix socket). Required. */
  SUPERVISOR_IPC_PATH: z.string().startsWith('/', 'expected the absolute path of the supervisor ipc.path socket'),
  EXPORTER_PORT: z.coerce.number().int().min(0).max(65535).default(9466),
  EXPORTER_HOST: z.string().min(1).default('0.0.0.0'),
  /** The host binary's name as /proc/<pid>/comm shows it (15 characters at most). Unset: supervisor_process_up is not exported. */
  SUPERVISOR_PROCESS: z.string().min(1).max(15, 'Linux shows at most 15 characters of a process name (comm)').optional(),
  /** A regular expression over the relay's command line (as `pgrep -f`). Empty: the relay's process is not looked for. */
  RELAY_PROCESS_PATTERN: z
    .string()
    .refine((p) => {
      try {
        new RegExp(p);
        return true;
      } catch {
        return false;
      }
    }, 'expected a JavaScript regular expression')
    .default('rust-supervisor-relay'),
  /** The relay's registration socket: only ever stat()ed, never connected to. Unset: not looked at. */
  RELAY_REGISTRATION_PATH: z.string().startsWith('/', 'expected an absolute path').optional(),
  /** No scrape waits longer than this for any one IPC call (hello, state). */
  IPC_TIMEOUT: Duration.refine((ms) => ms >= 1, 'must be positive').default(2000),
  /** The supervisor's `ipc.target_id`. Unset: learned from the hello (or state) answer and remembered. */
  SUPERVISOR_TARGET_ID: z.string().min(1).optional(),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});
export type ExporterConfig = z.infer<typeof ExporterConfig>;

/** Parses the exporter's settings from the environment; a bad or missing value throws ConfigError naming it. */
export function loadExporterConfig(env: NodeJS.ProcessEnv = process.env): ExporterConfig {
  const known = Object.fromEntries(
    Object.keys(ExporterConfig.shape).flatMap((k) =>
      env[k] === undefined || (env[k] === '' && k !== 'RELAY_PROCESS_PATTERN') ? [] : [[k, env[k]]],
    ),
  );
  const parsed = ExporterConfig.safeParse(known);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid exporter configuration:\n${lines.join('\n')}`);
  }
  return parsed.data;
}
