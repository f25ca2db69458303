import { exec } from './exec.js';
import { http } from './http.js';
import { ipc } from './ipc.js';
import { kubernetes } from './kubernetes.js';
import { signal } from './signal.js';
import { staleSocket } from './stale-socket.js';
import { tailFile } from './tail-file.js';
import { wait } from './wait.js';
import type { AnyAction } from './types.js';

/** The only list of action kinds. A new action: one file, one line here. */
export const actions: readonly AnyAction[] = [exec, signal, http, wait, kubernetes, ipc, staleSocket, tailFile];
export const actionByKind: ReadonlyMap<string, AnyAction> = new Map(actions.map((a) => [a.kind, a]));
