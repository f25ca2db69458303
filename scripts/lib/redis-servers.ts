/**
 * Real Redis topologies for tests, from Debian's redis-server and redis-cli, on free loopback ports in temp dirs:
 * a Sentinel group (one primary, one replica, three sentinels; Sentinel is `redis-server --sentinel`, the very
 * program Debian's redis-sentinel package links to) and a Redis Cluster (`--cluster-enabled yes`,
 * `redis-cli --cluster create`). Nothing persists; stop() kills every process and removes the dirs.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import calculateSlot from 'cluster-key-slot';
import { freePort } from './ports.js';
import { runCommand, spawnProcess, type ManagedProcess } from './processes.js';
import { waitFor } from './wait.js';
import { ephemeralRedisArgs, REDIS_SERVER } from './redis-server.js';

export { REDIS_SERVER };
export const REDIS_CLI = '/usr/bin/redis-cli';
const INSTALL_HINT = 'install with `apt-get install -y --no-install-recommends redis-server redis-tools` (.ci/run does it)';

/** Fails with the install command when Debian's Redis programs are missing. */
export function requireRedisBinaries(): void {
  const missing = [REDIS_SERVER, REDIS_CLI].filter((b) => !existsSync(b));
  if (missing.length > 0) throw new Error(`${missing.join(' and ')} not found: ${INSTALL_HINT}`);
}

/** Passwords of the servers started here that require one, by port (redisCli authenticates with them). */
const passwords = new Map<number, string>();

/** One redis-cli command against 127.0.0.1:port; its stdout, or an error with stderr. */
export async function redisCli(port: number, ...args: string[]): Promise<string> {
  const pw = passwords.get(port);
  const auth = pw === undefined ? [] : ['-a', pw, '--no-auth-warning'];
  const r = await runCommand(REDIS_CLI, ['-h', '127.0.0.1', '-p', String(port), ...auth, ...args], { timeoutMs: 10_000 });
  if (r.code !== 0 || /^(ERR|WRONGTYPE|NOAUTH)/.test(r.stdout))
    throw new Error(`redis-cli -p ${port} ${args.join(' ')}: ${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** `INFO <section>` as a map. */
export async function info(port: number, section: string): Promise<Record<string, string>> {
  const text = await redisCli(port, 'INFO', section);
  return Object.fromEntries(
    text
      .split(/\r?\n/)
      .filter((l) => l.includes(':') && !l.startsWith('#'))
      .map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1)]),
  );
}

export interface RedisNode {
  readonly port: number;
  /** The running process (a new one after restart()). */
  readonly process: ManagedProcess;
  kill(): Promise<void>;
  /** Starts it again with its arguments plus `extraArgs`, as an orchestrator restarts a pod; resolves once it answers. */
  restart(extraArgs?: string[]): Promise<void>;
}

async function startNode(name: string, dir: string, port: number, args: string[]): Promise<RedisNode> {
  const spawnAndWait = async (all: string[]) => {
    const proc = spawnProcess(name, REDIS_SERVER, all, { logFile: join(dir, `${name}.log`) });
    await waitFor(`${name} on 127.0.0.1:${port}`, async () => (await redisCli(port, 'PING')).trim() === 'PONG', {
      processes: [proc],
      timeoutMs: 10_000,
    });
    return proc;
  };
  let proc = await spawnAndWait(args);
  return {
    port,
    get process() {
      return proc;
    },
    kill: async () => void (await proc.stop({ signal: 'SIGKILL' })),
    async restart(extraArgs = []) {
      await proc.stop({ signal: 'SIGKILL' });
      proc = await spawnAndWait([...args, ...extraArgs]);
    },
  };
}

/**
 * Arguments every data node shares: loopback only, no persistence, in its own dir; a replica (re)joining gets its
 * full sync at once (by default the primary waits 5 s for more replicas to share it).
 */
function dataArgs(port: number, dir: string): string[] {
  return [...ephemeralRedisArgs(port, dir), '--repl-diskless-sync-delay', '0', '--maxmemory-policy', 'noeviction'];
}

export interface SentinelGroup {
  readonly name: string;
  readonly sentinelPorts: number[];
  /** The data nodes by port; the primary is whichever the sentinels say now. */
  readonly nodes: Map<number, RedisNode>;
  /** REDIS_* variables for remediator. */
  readonly env: Record<string, string>;
  primaryPort(): Promise<number>;
  /** SIGKILL the current primary; resolves with its port. */
  killPrimary(): Promise<number>;
  /** Resolves with the new primary's port once the sentinels have promoted another node. */
  waitForFailover(oldPrimary: number, timeoutMs?: number): Promise<number>;
  /**
   * Starts a killed node again as a replica of the current primary (what Bitnami's start script does: it asks the
   * sentinels for the primary first) and resolves once it is in sync.
   */
  restartAsReplica(port: number): Promise<void>;
  stop(): Promise<void>;
}

/**
 * One primary, one replica and three sentinels (quorum 2), failing over 1 s after the primary stops answering.
 * `password` protects the data nodes (requirepass, masterauth), `sentinelPassword` the sentinels (as Bitnami's
 * chart does with auth.password and auth.sentinel); `env` carries both.
 */
export async function startSentinelGroup(
  opts: { name?: string; downAfterMs?: number; password?: string; sentinelPassword?: string } = {},
): Promise<SentinelGroup> {
  requireRedisBinaries();
  const name = opts.name ?? 'mymaster';
  const auth = opts.password === undefined ? [] : ['--requirepass', opts.password, '--masterauth', opts.password];
  const dir = mkdtempSync(join(tmpdir(), 'redis-sentinel-'));
  const started: RedisNode[] = [];
  const nodes = new Map<number, RedisNode>();
  const stop = async () => {
    for (const n of started.reverse()) await n.kill();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const [primaryPort, replicaPort] = [await freePort(), await freePort()];
    if (opts.password !== undefined) for (const p of [primaryPort, replicaPort]) passwords.set(p, opts.password);
    const primary = await startNode('redis-primary', dir, primaryPort, [...dataArgs(primaryPort, dir), ...auth]);
    started.push(primary);
    nodes.set(primaryPort, primary);
    const replicaDir = join(dir, 'replica');
    mkdirSync(replicaDir);
    const replica = await startNode('redis-replica', dir, replicaPort, [
      ...dataArgs(replicaPort, replicaDir),
      ...auth,
      '--replicaof',
      '127.0.0.1',
      String(primaryPort),
    ]);
    started.push(replica);
    nodes.set(replicaPort, replica);
    await waitFor('the replica in sync', async () => (await info(replicaPort, 'replication')).master_link_status === 'up', {
      timeoutMs: 15_000,
      processes: [primary.process, replica.process],
    });

    const sentinelPorts: number[] = [];
    for (let i = 0; i < 3; i++) {
      const port = await freePort();
      if (opts.sentinelPassword !== undefined) passwords.set(port, opts.sentinelPassword);
      const conf = join(dir, `sentinel-${i}.conf`);
      // Sentinel rewrites its config file (what it learned), so each gets its own writable one.
      writeFileSync(
        conf,
        [
          `port ${port}`,
          'bind 127.0.0.1',
          `dir ${dir}`,
          `sentinel monitor ${name} 127.0.0.1 ${primaryPort} 2`,
          `sentinel down-after-milliseconds ${name} ${opts.downAfterMs ?? 1000}`,
          `sentinel failover-timeout ${name} 10000`,
          `sentinel parallel-syncs ${name} 1`,
          ...(opts.password !== undefined ? [`sentinel auth-pass ${name} ${opts.password}`] : []),
          ...(opts.sentinelPassword !== undefined ? [`requirepass ${opts.sentinelPassword}`] : []),
          '',
        ].join('\n'),
      );
      started.push(await startNode(`redis-sentinel-${i}`, dir, port, [conf, '--sentinel']));
      sentinelPorts.push(port);
    }
    // Ready for a failover once every sentinel knows the replica and the two other sentinels (hello every 2 s).
    await waitFor(
      'every sentinel to know the replica and the other sentinels',
      async () => {
        for (const port of sentinelPorts) {
          const fields = (await redisCli(port, 'SENTINEL', 'MASTER', name)).trim().split(/\r?\n/);
          const m = Object.fromEntries(fields.flatMap((_, i) => (i % 2 === 0 ? [[fields[i], fields[i + 1]]] : [])));
          if (m['num-slaves'] !== '1' || m['num-other-sentinels'] !== '2') return false;
        }
        return true;
      },
      { timeoutMs: 20_000, processes: started.map((n) => n.process) },
    );

    const primaryNow = async () => {
      for (const port of sentinelPorts) {
        try {
          const [, p] = (await redisCli(port, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME', name)).trim().split(/\r?\n/);
          if (p) return Number(p);
        } catch {
          /* try the next sentinel */
        }
      }
      throw new Error('no sentinel answers');
    };
    return {
      name,
      sentinelPorts,
      nodes,
      env: {
        REDIS_SENTINELS: sentinelPorts.map((p) => `127.0.0.1:${p}`).join(','),
        REDIS_SENTINEL_NAME: name,
        ...(opts.password !== undefined ? { REDIS_PASSWORD: opts.password } : {}),
        ...(opts.sentinelPassword !== undefined ? { REDIS_SENTINEL_PASSWORD: opts.sentinelPassword } : {}),
      },
      primaryPort: primaryNow,
      async killPrimary() {
        const port = await primaryNow();
        await nodes.get(port)!.kill();
        return port;
      },
      async waitForFailover(oldPrimary, timeoutMs = 30_000) {
        return waitFor(
          'the sentinels to promote the replica',
          async () => {
            const port = await primaryNow();
            if (port === oldPrimary) return undefined;
            return (await info(port, 'replication')).role === 'master' ? port : undefined;
          },
          { timeoutMs },
        );
      },
      async restartAsReplica(port) {
        const primary = await primaryNow();
        await nodes.get(port)!.restart(['--replicaof', '127.0.0.1', String(primary)]);
        await waitFor('the restarted node in sync', async () => (await info(port, 'replication')).master_link_status === 'up', {
          timeoutMs: 15_000,
        });
      },
      stop,
    };
  } catch (err) {
    const logs = started.map((n) => `--- ${n.process.name}:\n${n.process.logTail(15)}`).join('\n');
    await stop();
    throw new Error(`startSentinelGroup failed: ${(err as Error).message}\n${logs}`, { cause: err });
  }
}

export interface ReplicatedRedis {
  readonly primaryPort: number;
  readonly replicaPort: number;
  /** REDIS_URL of the primary. */
  readonly env: Record<string, string>;
  stop(): Promise<void>;
}

/** One primary and one replica in sync, no Sentinel (the bench's "single Redis", replicated as in production). */
export async function startPrimaryWithReplica(): Promise<ReplicatedRedis> {
  requireRedisBinaries();
  const dir = mkdtempSync(join(tmpdir(), 'redis-replicated-'));
  const started: RedisNode[] = [];
  const stop = async () => {
    for (const n of started.reverse()) await n.kill();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const [primaryPort, replicaPort] = [await freePort(), await freePort()];
    started.push(await startNode('redis-primary', dir, primaryPort, dataArgs(primaryPort, dir)));
    mkdirSync(join(dir, 'replica'));
    started.push(
      await startNode('redis-replica', dir, replicaPort, [
        ...dataArgs(replicaPort, join(dir, 'replica')),
        '--replicaof',
        '127.0.0.1',
        String(primaryPort),
      ]),
    );
    await waitFor('the replica in sync', async () => (await info(replicaPort, 'replication')).master_link_status === 'up', {
      timeoutMs: 15_000,
    });
    return { primaryPort, replicaPort, env: { REDIS_URL: `redis://127.0.0.1:${primaryPort}` }, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

export interface RedisClusterSetup {
  /** Every node's client port (primaries first, as created). */
  readonly ports: number[];
  readonly nodes: Map<number, RedisNode>;
  /** REDIS_* variables for remediator: two seed nodes are enough, the rest is discovered. */
  readonly env: Record<string, string>;
  /** The port of the primary that serves `hashTag`'s slot now. */
  ownerOf(hashTag: string): Promise<number>;
  /** SIGKILL the primary serving `hashTag`; resolves with its port. */
  killOwnerOf(hashTag: string): Promise<number>;
  /** Resolves with the new owner's port once a replica has taken the slot over and the cluster is ok again. */
  waitForFailover(hashTag: string, oldOwner: number, timeoutMs?: number): Promise<number>;
  /** Starts a killed node again (its nodes.conf kept): it rejoins as a replica of whoever took its slots; resolves once in sync. */
  restartAsReplica(port: number): Promise<void>;
  stop(): Promise<void>;
}

interface ClusterNodeLine {
  port: number;
  flags: string[];
  slots: [number, number][];
}

function parseClusterNodes(text: string): ClusterNodeLine[] {
  return text
    .trim()
    .split(/\r?\n/)
    .map((line) => {
      const f = line.split(' ');
      const port = Number(/:(\d+)@/.exec(f[1] ?? '')?.[1]);
      const slots = f.slice(8).flatMap((s): [number, number][] => {
        if (s.startsWith('[')) return []; // a slot being migrated
        const [a, b] = s.split('-').map(Number);
        return [[a!, b ?? a!]];
      });
      return { port, flags: (f[2] ?? '').split(','), slots };
    });
}

/**
 * A Redis Cluster of `primaries` primaries, each with `replicas` replicas, on loopback. `--cluster-port` gives
 * each node's cluster bus a free port of its own (the default, port + 10000, may be taken). `nodeTimeoutMs` is
 * how long a primary may be silent before its replica takes over.
 */
export async function startRedisCluster(
  opts: { primaries?: number; replicas?: number; nodeTimeoutMs?: number } = {},
): Promise<RedisClusterSetup> {
  requireRedisBinaries();
  const primaries = opts.primaries ?? 3;
  const replicas = opts.replicas ?? 0;
  const count = primaries * (1 + replicas);
  const dir = mkdtempSync(join(tmpdir(), 'redis-cluster-'));
  const nodes = new Map<number, RedisNode>();
  const stop = async () => {
    for (const n of [...nodes.values()].reverse()) await n.kill();
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    const ports: number[] = [];
    await Promise.all(
      Array.from({ length: count }, async (_, i) => {
        const [port, bus] = [await freePort(), await freePort()];
        const nodeDir = join(dir, `node-${i}`);
        mkdirSync(nodeDir);
        const node = await startNode(`redis-cluster-${i}`, dir, port, [
          ...dataArgs(port, nodeDir),
          '--cluster-enabled',
          'yes',
          '--cluster-config-file',
          join(nodeDir, 'nodes.conf'),
          '--cluster-port',
          String(bus),
          '--cluster-node-timeout',
          String(opts.nodeTimeoutMs ?? 1000),
        ]);
        nodes.set(port, node);
        ports[i] = port;
      }),
    );
    const create = await runCommand(
      REDIS_CLI,
      ['--cluster', 'create', ...ports.map((p) => `127.0.0.1:${p}`), '--cluster-replicas', String(replicas), '--cluster-yes'],
      { timeoutMs: 30_000 },
    );
    if (create.code !== 0 || !/All 16384 slots covered/.test(create.stdout))
      throw new Error(`redis-cli --cluster create failed (${create.code}):\n${create.stdout}${create.stderr}`);
    await waitFor(
      'every node to see the cluster ok, replicas in sync',
      async () => {
        for (const port of ports) {
          // eslint-disable-next-line @typescript-eslint/no-unnecessary-type-assertion -- without it `{}` widens the union
          const ci = await info(port, 'cluster').catch(() => ({}) as Record<string, string>);
          if (ci.cluster_enabled !== '1') return false;
          const state = await redisCli(port, 'CLUSTER', 'INFO');
          if (!/cluster_state:ok/.test(state) || !new RegExp(`cluster_known_nodes:${count}\\b`).test(state)) return false;
          const repl = await info(port, 'replication');
          if (repl.role === 'slave' && repl.master_link_status !== 'up') return false;
        }
        return true;
      },
      { timeoutMs: 30_000, processes: [...nodes.values()].map((n) => n.process) },
    );
    const ownerOf = async (hashTag: string): Promise<number> => {
      const slot = calculateSlot(hashTag);
      for (const port of ports) {
        if (nodes.get(port)?.process.exitInfo() !== null) continue; // killed
        try {
          const lines = parseClusterNodes(await redisCli(port, 'CLUSTER', 'NODES'));
          const owner = lines.find(
            (l) => l.flags.includes('master') && !l.flags.includes('fail') && l.slots.some(([a, b]) => slot >= a && slot <= b),
          );
          if (owner) return owner.port;
        } catch {
          /* a dead node: ask the next */
        }
      }
      throw new Error(`no live node knows the owner of slot ${slot}`);
    };
    return {
      ports,
      nodes,
      env: {
        REDIS_CLUSTER_NODES: ports
          .slice(0, 2)
          .map((p) => `127.0.0.1:${p}`)
          .join(','),
      },
      ownerOf,
      async killOwnerOf(hashTag) {
        const port = await ownerOf(hashTag);
        await nodes.get(port)!.kill();
        return port;
      },
      async waitForFailover(hashTag, oldOwner, timeoutMs = 30_000) {
        return waitFor(
          `a replica to take over the slot of ${hashTag}`,
          async () => {
            const port = await ownerOf(hashTag);
            if (port === oldOwner) return undefined;
            return /cluster_state:ok/.test(await redisCli(port, 'CLUSTER', 'INFO')) ? port : undefined;
          },
          { timeoutMs },
        );
      },
      async restartAsReplica(port) {
        await nodes.get(port)!.restart();
        await waitFor(
          'the restarted node to rejoin as a replica in sync',
          async () => {
            const repl = await info(port, 'replication');
            return repl.role === 'slave' && repl.master_link_status === 'up';
          },
          { timeoutMs: 20_000 },
        );
      },
      stop,
    };
  } catch (err) {
    const logs = [...nodes.values()].map((n) => `--- ${n.process.name}:\n${n.process.logTail(10)}`).join('\n');
    await stop();
    throw new Error(`startRedisCluster failed: ${(err as Error).message}\n${logs}`, { cause: err });
  }
}
