/**
 * The receiver's ceiling: a bare node:http server that reads the body, parses the JSON and answers 202 with a small
 * JSON body, nothing else. Run as its own process by bench/ceilings.ts: `bare-http.ts PORT`.
 */
import { createServer } from 'node:http';

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c: Buffer) => chunks.push(c));
  req.on('end', () => {
    const parsed = JSON.parse(Buffer.concat(chunks).toString('utf8')) as { alerts: unknown[] };
    const body = JSON.stringify({ enqueued: parsed.alerts.length });
    res.writeHead(202, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }).end(body);
  });
});
server.listen(Number(process.argv[2]), '127.0.0.1');
process.on('SIGTERM', () => process.exit(0));
