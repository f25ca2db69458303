import { pino, type Logger } from 'pino';

export type { Logger };

/** One JSON line per event (DESIGN.md). Child loggers carry runId, procedure and step. */
export function createLogger(level: string = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino({
    level,
    base: { service: 'remediator' },
    redact: { paths: ['req.headers.authorization', '*.authorization', '*.token', 'token'], censor: '[redacted]' },
    timestamp: pino.stdTimeFunctions.isoTime,
  });
}

/** A logger that drops everything: for tests and commands that print their own output. */
export const silentLogger: Logger = pino({ level: 'silent' });
