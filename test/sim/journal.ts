import { appendFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * A journald-like log: one line per event, `<ISO time> <name>[<pid>]: <message>`, appended synchronously so
 * the last line survives a crash. A clean shutdown's last line ends with `ShutdownPhase::Completed`, a
 * crash's with `Panic`.
 */
export class Journal {
  constructor(
    readonly file: string,
    private readonly name: string,
  ) {
    mkdirSync(dirname(file), { recursive: true });
  }

  write(message: string): void {
    const line = `${new Date().toISOString()} ${this.name}[${process.pid}]: ${message}\n`;
    appendFileSync(this.file, line);
    process.stderr.write(line);
  }
}
