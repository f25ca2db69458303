/**
 * The ceiling of starting processes from Node here: a minimal child_process.spawn loop of /bin/true, `IN_FLIGHT` at
 * a time, nothing else in the process. Run as its own process by bench/ceilings.ts; prints spawns/s as JSON.
 */
import { spawn } from 'node:child_process';

const total = Number(process.argv[2] ?? 2000);
const inFlight = Number(process.argv[3] ?? 16);
const program = process.argv[4] ?? '/bin/true';

function once(): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, [], { stdio: 'ignore' });
    child.once('error', reject);
    child.once('exit', () => resolve());
  });
}

let started = 0;
const t0 = performance.now();
await Promise.all(
  Array.from({ length: inFlight }, async () => {
    while (started < total) {
      started++;
      await once();
    }
  }),
);
const seconds = (performance.now() - t0) / 1000;
process.stdout.write(`${JSON.stringify({ spawnsPerSec: total / seconds, seconds })}\n`);
