/**
 * The supervisor simulator: the runbook's system, as a real process named `supervisor`.
 * Usage and fault endpoints: test/sim/README.md.
 *
 *   npx tsx test/sim/supervisor.ts --metrics-port P --admin-port A --socket PATH --dump-dir DIR --journal FILE --children N
 *   npx tsx test/sim/supervisor.ts ... --daemonize   # detach, wait until ready, exit 0 (non-zero if the start failed)
 *   npx tsx test/sim/supervisor.ts ... --restart     # stop the one in --pid-file, then --daemonize
 */
import { parseSupervisorArgs, UsageError } from './args.js';
import { daemonize } from './daemon.js';
import { SocketContentionError } from './ipc.js';
import { Journal } from './journal.js';
import { EXIT, StartFailure, Supervisor } from './runtime.js';

async function main(): Promise<number> {
  let o;
  try {
    o = parseSupervisorArgs(process.argv.slice(2));
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(`supervisor: ${err.message}\nusage: see test/sim/README.md\n`);
      return EXIT.usage;
    }
    throw err;
  }
  if (o.daemonize || o.restart) return daemonize(o);

  process.title = o.processName;
  const sup = new Supervisor(o);
  try {
    await sup.start();
  } catch (err) {
    const journal = new Journal(o.journal, o.processName);
    if (err instanceof SocketContentionError) {
      journal.write(`error: ${err.message}`);
      return EXIT.socketContention;
    }
    if (err instanceof StartFailure) {
      journal.write(`error: ${err.message}`);
      return err.message.startsWith('cannot listen') ? EXIT.listenFailed : EXIT.startFailed;
    }
    journal.write(`error: start failed: ${(err as Error).stack ?? String(err)}`);
    return EXIT.startFailed;
  }
  process.on('SIGTERM', () => void sup.shutdown('SIGTERM'));
  process.on('SIGINT', () => void sup.shutdown('SIGINT'));
  process.on('SIGHUP', () => {});
  return new Promise<number>(() => {});
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`supervisor: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
