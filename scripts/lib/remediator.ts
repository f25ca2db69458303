import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { freePort } from './ports.js';
import { spawnProcess, type ManagedProcess } from './processes.js';
import { waitFor } from './wait.js';

export const REPO_ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = fileURLToPath(new URL('../../dist/cli.js', import.meta.url));

export interface RemediatorProcess {
  url: string;
  port: number;
  process: ManagedProcess;
  stop(): Promise<void>;
}

/**
 * Starts the built remediator (`node dist/cli.js <command>`) as a real process and waits until /readyz says
 * ready (or, for a worker, a short moment after start). `npm test` builds first; a missing build fails clearly.
 */
export async function startRemediator(
  env: Record<string, string | undefined>,
  command: 'serve' | 'receiver' | 'worker' = 'serve',
  name = 'remediator',
): Promise<RemediatorProcess> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npm run build\` first (npm test does it)`);
  const port = env.PORT !== undefined ? Number(env.PORT) : await freePort();
  const proc = spawnProcess(name, process.execPath, ['--enable-source-maps', CLI, command], {
    cwd: REPO_ROOT,
    // Test fixtures carry fixed dates: unless a test says otherwise, no incident is too old (MAX_INCIDENT_AGE).
    env: { HOST: '127.0.0.1', LOG_LEVEL: 'info', RUN_RETENTION: '3650d', MAX_INCIDENT_AGE: '3649d', ...env, PORT: String(port) },
  });
  const url = `http://127.0.0.1:${port}`;
  if (command !== 'worker') {
    await waitFor(
      `${name} /readyz`,
      async () => {
        const exit = proc.exitInfo();
        if (exit) throw new Error(`${name} exited early (${JSON.stringify(exit)}):\n${proc.logTail(30)}`);
        const res = await fetch(`${url}/readyz`).catch(() => undefined);
        return res?.status === 200 ? true : undefined;
      },
      20_000,
    ).catch((err: Error) => {
      void proc.stop();
      throw new Error(`${err.message}\n${proc.logTail(30)}`);
    });
  }
  return { url, port, process: proc, stop: async () => void (await proc.stop({ graceMs: 10_000 })) };
}
