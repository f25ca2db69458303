/**
 * Rust's default panic output (std's panic hook): `thread '<name>' panicked at <file>:<line>:<col>:`, the
 * message, and — for the first panic of the process only — the `RUST_BACKTRACE` note, all on stderr.
 * A panic in `main` then unwinds (destructors run: the IPC socket guard removes the socket file) and the
 * process exits with status 101. No core file: unwinding is not a fatal signal.
 */
let notePrinted = false;

export function printPanic(thread: string, location: string, message: string): void {
  let text = `thread '${thread}' panicked at ${location}:\n${message}\n`;
  if (!notePrinted) {
    text += 'note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n';
    notePrinted = true;
  }
  process.stderr.write(text);
}

/** Exit as a Rust binary whose `main` panicked. `cleanup` stands for the destructors that unwinding runs. */
export function panicMain(location: string, message: string, cleanup: () => void): never {
  printPanic('main', location, message);
  try {
    cleanup();
  } finally {
    process.exit(101);
  }
}

/** `main() -> Result<_, SupervisorError>` returning Err: `Termination` prints `Error: {:?}` and exits 1. */
export function fatalConfigExit(message: string): never {
  process.stderr.write(`Error: FatalConfig { message: ${rustDebugString(message)} }\n`);
  process.exit(1);
}

/** A Rust `{:?}` string: quoted, with `"` `\\` and control characters escaped. */
export function rustDebugString(s: string): string {
  return `"${s.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n').replace(/\r/g, '\\r').replace(/\t/g, '\\t')}"`;
}
