/**
 * Why a `dashboard-ipc.v1` exchange produced no answer. An answer with `ok: false` is not one of these: it is
 * an answer, with the server's own `error.retryable` (see `./results.ts`).
 *
 * Retryability is decided here, where the failure is seen:
 * - no socket file (ENOENT) or nobody listening (ECONNREFUSED): yes, the supervisor may be restarting;
 * - a timeout: yes (for `state` it is also the starvation signal, so callers usually branch on it first);
 * - the connection closed before a full line (the process died mid-request): yes;
 * - permission denied, not a socket, an oversized or unparseable answer: no, the same request fails again.
 */
export type IpcFailureKind = 'connect' | 'timeout' | 'closed' | 'too_large' | 'invalid_response' | 'io';

const RETRYABLE_CONNECT_CODES: ReadonlySet<string> = new Set(['ENOENT', 'ECONNREFUSED', 'EAGAIN', 'ECONNRESET', 'EPIPE']);

export class IpcError extends Error {
  override readonly name: string = 'IpcError';
  constructor(
    message: string,
    readonly kind: IpcFailureKind,
    readonly retryable: boolean,
    /** The socket path and method, so a log line says what was asked of whom. */
    readonly path: string,
    readonly method: string,
    options?: ErrorOptions & { code?: string },
  ) {
    super(message, options);
    this.code = options?.code;
  }
  /** The system error code, for connect and I/O failures (ENOENT, ECONNREFUSED, EACCES…). */
  readonly code: string | undefined;
}

/** No full answer within the time allowed. `stage` says whether the connection itself was still pending. */
export class IpcTimeoutError extends IpcError {
  override readonly name = 'IpcTimeoutError';
  readonly timedOut = true;
  constructor(
    path: string,
    method: string,
    readonly timeoutMs: number,
    readonly stage: 'connect' | 'response',
  ) {
    super(`${method} on ${path}: no answer within ${timeoutMs} ms (${stage})`, 'timeout', true, path, method);
  }
}

export function connectError(path: string, method: string, cause: NodeJS.ErrnoException): IpcError {
  const code = cause.code ?? 'EUNKNOWN';
  const what =
    code === 'ENOENT'
      ? 'no socket at this path'
      : code === 'ECONNREFUSED'
        ? 'nobody is listening on this socket'
        : code === 'EACCES'
          ? 'permission denied (the socket mode follows the supervisor umask)'
          : cause.message;
  return new IpcError(
    `${method} on ${path}: cannot connect: ${what} (${code})`,
    'connect',
    RETRYABLE_CONNECT_CODES.has(code),
    path,
    method,
    {
      cause,
      code,
    },
  );
}

export function ioError(path: string, method: string, cause: NodeJS.ErrnoException): IpcError {
  const code = cause.code ?? 'EUNKNOWN';
  return new IpcError(`${method} on ${path}: ${cause.message}`, 'io', RETRYABLE_CONNECT_CODES.has(code), path, method, {
    cause,
    code,
  });
}

export function closedError(path: string, method: string, partialBytes: number): IpcError {
  const detail = partialBytes === 0 ? 'before any answer' : `after ${partialBytes} bytes without a newline`;
  return new IpcError(`${method} on ${path}: connection closed ${detail}`, 'closed', true, path, method);
}

export function tooLargeError(path: string, method: string, maxLineBytes: number): IpcError {
  return new IpcError(
    `${method} on ${path}: answer line longer than ${maxLineBytes} bytes (maxLineBytes); not read further`,
    'too_large',
    false,
    path,
    method,
  );
}

export function invalidResponseError(path: string, method: string, why: string, cause?: unknown): IpcError {
  return new IpcError(`${method} on ${path}: invalid answer: ${why}`, 'invalid_response', false, path, method, { cause });
}
