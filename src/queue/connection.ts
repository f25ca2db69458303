import calculateSlot from 'cluster-key-slot';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import type { RedisSettings } from '../redis-settings.js';

/**
 * The one place remediator connects to Redis, for every topology (one URL, Sentinel, Cluster) and every process
 * (serve, receiver, worker, and any command that talks to Redis). Callers say what the connection is for; this
 * module picks the options that make each role behave right while the primary is away.
 */
export type RedisClient = Redis | Cluster;

/**
 * - `producer` (the receiver): fails fast while no primary answers (no offline queue, one retry), so a webhook gets
 *   503 at once and Alertmanager retries; it keeps reconnecting in the background.
 * - `worker`: waits for Redis as long as it takes (BullMQ requires `maxRetriesPerRequest: null`), riding out a
 *   failover: commands queue while the primary is away and go to the new one.
 * - `tool`: a short-lived client (CLI, tests, bench): a few retries, then an error.
 */
export type ConnectionRole = 'producer' | 'worker' | 'tool';

function roleOptions(role: ConnectionRole): RedisOptions {
  switch (role) {
    case 'producer':
      return {
        enableOfflineQueue: false,
        maxRetriesPerRequest: 1,
        connectTimeout: 2000,
        // Keep trying to come back; each webhook meanwhile gets a fast 503.
        retryStrategy: (times) => Math.min(times * 200, 2000),
        // The commands of concurrent webhooks issued in one event-loop turn go out in one socket write (issue 13:
        // one write per command was a large share of the receiver's CPU). Only while connected: with Redis away a
        // command still fails at once. Each command keeps its own reply; no code here relies on the order of
        // commands it did not await one after another.
        enableAutoPipelining: true,
        // queue/records.ts CREATE_RUNS_COMMAND: Producer.ingest sends the payloads that arrived meanwhile in one call
        // itself, at once, without an auto-pipeline around it.
        autoPipeliningIgnoredCommands: ['remediatorCreateRuns'],
      };
    case 'worker':
      return { maxRetriesPerRequest: null, retryStrategy: (times) => Math.min(times * 200, 2000) };
    case 'tool':
      return { maxRetriesPerRequest: 3, connectTimeout: 2000 };
  }
}

/**
 * After a failover the old primary may come back as a replica while a client still talks to it: every write then
 * answers READONLY. Reconnecting finds the new primary (Sentinel asks again; Cluster refreshes its slots); a
 * worker's command is sent again once there (nothing was written: a replica refuses every write).
 */
function onReadonly(role: ConnectionRole): RedisOptions['reconnectOnError'] {
  return (err) => (err.message.startsWith('READONLY') ? (role === 'worker' ? 2 : true) : false);
}

function tlsOptions(settings: RedisSettings): RedisOptions['tls'] | undefined {
  if (settings.tls === undefined) return undefined;
  return settings.tls.ca !== undefined ? { ca: settings.tls.ca } : {};
}

/** A new client for `role`; the caller closes it (`disconnect()`/`quit()`). `name` shows in CLIENT LIST. */
export function connectRedis(settings: RedisSettings, role: ConnectionRole, name = `remediator:${role}`): RedisClient {
  const t = settings.topology;
  const tls = tlsOptions(settings);
  const auth: RedisOptions = {
    ...(settings.username !== undefined ? { username: settings.username } : {}),
    ...(settings.password !== undefined ? { password: settings.password } : {}),
  };
  const base: RedisOptions = {
    ...roleOptions(role),
    ...auth,
    ...(tls !== undefined ? { tls } : {}),
    connectionName: name,
    reconnectOnError: onReadonly(role),
  };
  if (t.kind === 'single') return connected(new Redis(t.url, base), role);
  if (t.kind === 'sentinel') {
    return connected(
      new Redis({
        ...base,
        sentinels: t.sentinels,
        name: t.name,
        role: 'master',
        ...(settings.sentinelUsername !== undefined ? { sentinelUsername: settings.sentinelUsername } : {}),
        ...(settings.sentinelPassword !== undefined ? { sentinelPassword: settings.sentinelPassword } : {}),
        ...(tls !== undefined ? { enableTLSForSentinelMode: true, sentinelTLS: tls } : {}),
        // Not ioredis's failoverDetector: its disconnect on +switch-master can race a reconnect that is still asking
        // the sentinels and leave the client ended for good (seen here with ioredis 5.11). A demoted primary that
        // stays reachable answers READONLY, and reconnectOnError moves to the new primary.
        sentinelRetryStrategy: (times) => Math.min(times * 200, 2000),
      }),
      role,
    );
  }
  const { retryStrategy: _nodeRetry, enableOfflineQueue, ...nodeOptions } = base;
  const producer = role === 'producer';
  const options: ClusterOptions = {
    redisOptions: nodeOptions,
    enableOfflineQueue: enableOfflineQueue ?? true,
    ...(nodeOptions.enableAutoPipelining === true
      ? { enableAutoPipelining: true, autoPipeliningIgnoredCommands: nodeOptions.autoPipeliningIgnoredCommands ?? [] }
      : {}),
    clusterRetryStrategy: (times) => Math.min(times * 200, 2000),
    // While a slot's primary is down, a command is retried every retryDelayOnFailover ms (slots refreshed each time)
    // until a replica has taken over or maxRedirections is spent: a worker rides out ~30 s, the receiver ~0.5 s.
    retryDelayOnFailover: producer ? 100 : 200,
    retryDelayOnClusterDown: producer ? 100 : 200,
    retryDelayOnTryAgain: producer ? 100 : 200,
    maxRedirections: producer ? 5 : 150,
    slotsRefreshTimeout: 2000,
    // With TLS, connect to the names the cluster announces as they are, so certificates issued for them verify.
    ...(tls !== undefined
      ? { dnsLookup: (address: string, callback: (err: null, address: string) => void) => callback(null, address) }
      : {}),
  };
  return new Cluster(t.nodes, options);
}

function connected(client: Redis, role: ConnectionRole): Redis {
  if (role === 'worker') writesPerTurn(client);
  return client;
}

/**
 * The commands a connection sends in one event-loop turn leave in one socket write (writev), not one system call
 * each (issue 13: a write per command was the largest share of a worker's CPU after GC: its checkpoints, record
 * reads and lease scripts, BullMQ's calls, for every run in flight). Nothing else changes: each command is written
 * when it is sent, in the order it is sent, into the socket's buffer (corked), and the buffer leaves by the end of
 * the turn (process.nextTick, after the promise callbacks that sent more); replies, retries, the offline queue and
 * reconnection are ioredis's as before. Unlike ioredis's auto-pipelining no command is deferred or regrouped, so
 * BullMQ's calls (issues with auto-pipelining were reported) and WAIT see the same order as without it. The worker's
 * connection only, not a Cluster's (its commands go to each node's connection).
 */
export function writesPerTurn(client: Redis): void {
  const send = client.sendCommand.bind(client);
  let corked: Redis['stream'] | undefined;
  const flush = () => {
    const stream = corked;
    corked = undefined;
    stream?.uncork();
  };
  client.sendCommand = (command, stream) => {
    const socket = client.stream as Redis['stream'] | undefined;
    if (corked === undefined && client.status === 'ready' && socket?.writable === true) {
      corked = socket;
      socket.cork();
      process.nextTick(flush);
    }
    return send(command, stream);
  };
}

/** A client that is not a Cluster talks to one primary. */
export function isCluster(client: RedisClient): client is Cluster {
  return client instanceof Cluster;
}

/**
 * Redis WAIT on the connection that made the writes: how many replicas have them. On a Cluster the writes of one
 * hash tag all went to the primary that owns the tag's slot, so WAIT goes to that primary's connection.
 */
export async function waitForReplicas(
  client: RedisClient,
  hashTag: string,
  replicas: number,
  timeoutMs: number,
): Promise<number> {
  if (!isCluster(client)) return client.wait(replicas, timeoutMs);
  const owner = client.slots[calculateSlot(hashTag)]?.[0];
  const node = client.nodes('master').find((n) => `${n.options.host}:${n.options.port}` === owner);
  if (node === undefined)
    throw new Error(`no connection to the primary of hash slot ${calculateSlot(hashTag)} (${owner ?? 'unknown'})`);
  return node.wait(replicas, timeoutMs);
}

export interface ReplicationShortfall {
  acked: number;
  wanted: number;
  timeoutMs: number;
  error?: string;
}

/**
 * The worker's side of REDIS_WAIT_REPLICAS: after each checkpoint, wait until replicas hold it (and every write
 * before it on this connection: the job taken, the lease, the budget). A replica that does not confirm in time, or a
 * WAIT that fails, does not stop the remediation: the primary has the checkpoint, and only its loss in that same
 * moment would matter. `report` hears of a shortfall once when it starts (and `undefined` once it is over), not on
 * every checkpoint. Undefined when REDIS_WAIT_REPLICAS is 0.
 */
export function checkpointReplication(
  client: RedisClient,
  settings: RedisSettings,
  hashTag: string,
  report: (shortfall: ReplicationShortfall | undefined) => void,
): (() => Promise<void>) | undefined {
  const { waitReplicas: wanted, waitTimeoutMs: timeoutMs } = settings;
  if (wanted === 0) return undefined;
  let short = false;
  return async () => {
    let shortfall: ReplicationShortfall | undefined;
    try {
      const acked = await waitForReplicas(client, hashTag, wanted, timeoutMs);
      if (acked < wanted) shortfall = { acked, wanted, timeoutMs };
    } catch (err) {
      shortfall = { acked: 0, wanted, timeoutMs, error: (err as Error).message };
    }
    if ((shortfall !== undefined) !== short) report(shortfall);
    short = shortfall !== undefined;
  };
}
