/**
 * One IPC exchange for a command line (`remediator ipc …`, e.g. inside the exporter sidecar where
 * `execInPod` runs it): ask, and print the answer line exactly as the server wrote it, so every digit of the
 * `*_unix_nanos` values survives.
 *
 * Exit codes: 0 answered `ok: true` (and, for a command, `accepted: true`); 1 answered otherwise (`ok: false`
 * or `accepted: false`); 2 no answer in time (a `state` timeout is the starvation signal); 3 no answer at all
 * (no socket, refused, closed, too large, invalid). For 2 and 3, stdout carries one JSON line
 * `{"error":{kind,message,retryable,code?,timedOut?}}` so a caller can still parse it.
 */
import { createIpcClient, type IpcClientOptions } from './ipc-client.js';
import { stringifyWireJson } from './json.js';
import { isAccepted } from './results.js';
import { commandKindOf } from './protocol.js';

export interface IpcQuery extends IpcClientOptions {
  method: string;
  params?: unknown;
  signal?: AbortSignal;
}

export interface IpcQueryResult {
  exitCode: 0 | 1 | 2 | 3;
  /** One line, without a trailing newline. */
  output: string;
}

export async function runIpcQuery(query: IpcQuery): Promise<IpcQueryResult> {
  const client = createIpcClient(query);
  const outcome = await client.call(query.method, query.params ?? {}, { signal: query.signal });
  if (outcome.status === 'answered') {
    const { response } = outcome;
    const good = response.ok && (commandKindOf(query.method) === undefined || isAccepted(response));
    return { exitCode: good ? 0 : 1, output: outcome.line };
  }
  const { error } = outcome;
  const body = {
    error: {
      kind: error.kind,
      message: error.message,
      retryable: error.retryable,
      ...(error.code !== undefined ? { code: error.code } : {}),
      ...(outcome.status === 'timed_out' ? { timedOut: true } : {}),
    },
  };
  return { exitCode: outcome.status === 'timed_out' ? 2 : 3, output: stringifyWireJson(body) };
}
