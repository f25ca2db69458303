/**
 * The bench's HTTP load generator: node:http with keep-alive sockets, bodies built before the clock starts, so the
 * same (cheap) client drives remediator and the bare node:http ceiling alike. Loopback only.
 */
import { Agent, request } from 'node:http';

export const BENCH_TOKEN = 'bench-token-0123456789';

export interface Reply {
  status: number;
  body: string;
}

const agents = new Map<number, Agent>();
function agentFor(inFlight: number): Agent {
  let agent = agents.get(inFlight);
  if (agent === undefined) {
    agent = new Agent({ keepAlive: true, maxSockets: inFlight, maxFreeSockets: inFlight });
    agents.set(inFlight, agent);
  }
  return agent;
}

/** One POST of a JSON body; resolves with status and body text (never rejects on an HTTP status). */
export function post(url: string, body: string, inFlight = 1): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        method: 'POST',
        agent: agentFor(inFlight),
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(body),
          authorization: `Bearer ${BENCH_TOKEN}`,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

export interface LoadResult {
  seconds: number;
  /** Per request, ms. */
  latencies: number[];
  /** Per body, in order. */
  replies: Reply[];
  /** Per body, performance.now() when its POST started. */
  sentAt: number[];
}

/** Closed loop: `inFlight` requests outstanding at all times until every body is sent. Throws on a status ≠ `expect`. */
export async function closedLoop(url: string, bodies: readonly string[], inFlight: number, expect = 202): Promise<LoadResult> {
  const latencies: number[] = [];
  const replies: Reply[] = [];
  const sentAt: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: Math.min(inFlight, bodies.length) }, async () => {
      while (next < bodies.length) {
        const i = next++;
        sentAt[i] = performance.now();
        const reply = await post(url, bodies[i]!, inFlight);
        latencies.push(performance.now() - sentAt[i]);
        if (reply.status !== expect) throw new Error(`${url} answered ${reply.status}: ${reply.body.slice(0, 300)}`);
        replies[i] = reply;
      }
    }),
  );
  return { seconds: (performance.now() - started) / 1000, latencies, replies, sentAt };
}

/**
 * Open loop: body i is sent at start + i / rate seconds whether or not earlier ones were answered (what Alertmanager
 * does), so a server slower than the rate shows as growing latency, not as a slower sender.
 */
export async function openLoop(url: string, bodies: readonly string[], ratePerSec: number, expect = 202): Promise<LoadResult> {
  const latencies: number[] = [];
  const replies: Reply[] = [];
  const sentAt: number[] = [];
  const started = performance.now();
  const pending: Promise<void>[] = [];
  for (let i = 0; i < bodies.length; i++) {
    const due = started + (i * 1000) / ratePerSec;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    sentAt[i] = performance.now();
    pending.push(
      post(url, bodies[i]!, 64).then((reply) => {
        latencies.push(performance.now() - sentAt[i]!);
        if (reply.status !== expect) throw new Error(`${url} answered ${reply.status}: ${reply.body.slice(0, 300)}`);
        replies[i] = reply;
      }),
    );
  }
  await Promise.all(pending);
  return { seconds: (performance.now() - started) / 1000, latencies, replies, sentAt };
}

/** Frees the keep-alive sockets (so the bench process can exit). */
export function closeAgents(): void {
  for (const a of agents.values()) a.destroy();
  agents.clear();
}
