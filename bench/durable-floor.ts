/**
 * A floor for durable ingest, not remediator: the least a receiver can do and still answer 202 only after every
 * alert of the payload is stored. node:http reads and parses the body; one EVALSHA per payload stores each alert's
 * JSON under its fingerprint (SET NX, the dedup) and appends it to a stream (XADD, the queued work). No validation,
 * no rules, no routes, no run record, no logging. Run as its own process: `durable-floor.ts PORT REDIS_PORT`.
 */
import { createServer } from 'node:http';
import { Redis } from 'ioredis';

const STORE = `
local out = 0
for i = 1, #ARGV, 2 do
  if redis.call('SET', 'floor:a:' .. ARGV[i], ARGV[i + 1], 'NX') then
    redis.call('XADD', 'floor:s', '*', 'a', ARGV[i])
    out = out + 1
  end
end
return out`;

const redis = new Redis({ port: Number(process.argv[3]), host: '127.0.0.1', enableAutoPipelining: true });
redis.defineCommand('floorStore', { numberOfKeys: 0, lua: STORE });
const store = (redis as unknown as { floorStore(...args: string[]): Promise<number> }).floorStore.bind(redis);

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { alerts: { fingerprint: string }[] };
    const args: string[] = [];
    for (const a of parsed.alerts) args.push(a.fingerprint, JSON.stringify(a));
    store(...args).then(
      (stored) => {
        const body = JSON.stringify({ enqueued: stored });
        res.writeHead(202, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
      },
      () => res.writeHead(503).end(),
    );
  });
});
server.listen(Number(process.argv[2]), '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
