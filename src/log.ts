import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';

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

/** The options of every process's logger (createLogger): level, base fields, redaction, ISO time. */
export function loggerOptions(level: string): LoggerOptions {
  return {
    level,
    base: { service: 'remediator' },
    redact: { paths: [...REDACT_PATHS], censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
}
const REDACT_PATHS = ['req.headers.authorization', '*.authorization', '*.token', 'token'] as const;

/** One JSON line per event (DESIGN.md). Child loggers carry runId, procedure and step. */
export function createLogger(level: string = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino(loggerOptions(level), stdoutPerTurn());
}

const plain = new WeakMap<Logger, Logger>();

/**
 * `log` without the redaction pass, for a line whose fields are all strings and numbers and none is named `token`
 * (the receiver's 'webhook handled' line, once per webhook): the redact paths replace only a top-level `token` or a
 * property of an object, so they change nothing in such a line, yet pino runs every field and the message through
 * them, parsing each path again (issue 13: ~8 KB of garbage and ~3% of the receiver's CPU per 1-alert webhook). The
 * same line otherwise: same destination, level, base fields and time (test/unit/log.test.ts compares them). Never
 * for a line that may carry an object, headers or anything secret.
 */
export function plainLogger(log: Logger): Logger {
  let child = plain.get(log);
  // Made again if the level was changed since (a child keeps the level it was made with).
  if (child === undefined || child.level !== log.level) {
    child = typeof log.child === 'function' ? log.child({}, { redact: [] }) : log;
    plain.set(log, child);
  }
  return child;
}

/** A logger that drops everything: for tests and commands that print their own output. */
export const silentLogger: Logger = pino({ level: 'silent' });
