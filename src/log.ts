import { pino, type DestinationStream, type Logger } from 'pino';

export type { Logger };

/**
 * stdout with one write per event-loop turn: the lines logged while one batch of I/O is handled (e.g. the
 * 'webhook handled' lines of every webhook Redis answered in one read) leave in one write, not one system call
 * each (issue 13: a synchronous write per webhook was a tenth of the receiver's CPU). The lines and their order
 * are unchanged; each is written by the end of the turn that logged it (setImmediate), and whatever is pending when
 * the process exits (process.exit, a crash) is written synchronously first. The writes are pino's own synchronous
 * destination (it retries a full pipe).
 */
function stdoutPerTurn(): DestinationStream & { flushSync(): void } {
  const out = pino.destination({ dest: 1, sync: true });
  let pending = '';
  let scheduled = false;
  const flushSync = () => {
    scheduled = false;
    if (pending === '') return;
    const text = pending;
    pending = '';
    out.write(text);
  };
  process.on('exit', flushSync);
  return {
    write(line: string) {
      pending += line;
      if (!scheduled) {
        scheduled = true;
        setImmediate(flushSync);
      }
    },
    flushSync,
  };
}

/** One JSON line per event (DESIGN.md). Child loggers carry runId, procedure and step. */
export function createLogger(level: string = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino(
    {
      level,
      base: { service: 'remediator' },
      redact: { paths: ['req.headers.authorization', '*.authorization', '*.token', 'token'], censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    stdoutPerTurn(),
  );
}

/** A logger that drops everything: for tests and commands that print their own output. */
export const silentLogger: Logger = pino({ level: 'silent' });
