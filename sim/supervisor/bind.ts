/**
 * Binding the IPC socket as rust-supervisor does (dashboard/ipc_server.rs:338-428): `create_new` refuses any
 * existing path; `replace_stale` refuses a symlink, a non-socket and a socket someone still answers on, and
 * unlinks a stale one. No chmod: `ipc.permissions` is never applied, so the mode follows the umask.
 * Each refusal is the `DashboardError` Display text (`{code} at {stage}: {message}`).
 */
import { lstatSync, unlinkSync } from 'node:fs';
import { createConnection, type Server } from 'node:net';
import type { IpcSettings } from './config.js';

export class IpcBindError extends Error {
  override readonly name = 'IpcBindError';
}

/** Rust's io::Error Display for the errors a bind can meet, e.g. "Address already in use (os error 98)". */
function ioText(err: NodeJS.ErrnoException): string {
  const known: Record<string, [string, number]> = {
    EADDRINUSE: ['Address already in use', 98],
    EACCES: ['Permission denied', 13],
    ENOENT: ['No such file or directory', 2],
    ENOTDIR: ['Not a directory', 20],
    EPERM: ['Operation not permitted', 1],
  };
  const k = known[err.code ?? ''];
  return k ? `${k[0]} (os error ${k[1]})` : err.message;
}

function liveSocket(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ path });
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

async function preparePath(ipc: IpcSettings): Promise<void> {
  let stat;
  try {
    stat = lstatSync(ipc.path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new IpcBindError(
      `ipc_path_metadata_failed at ipc_bind: failed to inspect IPC path: ${ioText(err as NodeJS.ErrnoException)}`,
    );
  }
  if (ipc.bindMode === 'create_new')
    throw new IpcBindError('validation_failed at ipc_bind: IPC path already exists and bind_mode is create_new');
  if (stat.isSymbolicLink()) throw new IpcBindError('validation_failed at ipc_bind: IPC path must not be a symlink');
  if (!stat.isSocket())
    throw new IpcBindError('validation_failed at ipc_bind: IPC path must be a Unix socket before stale replacement');
  if (await liveSocket(ipc.path)) throw new IpcBindError('validation_failed at ipc_bind: IPC path is served by a live process');
  try {
    unlinkSync(ipc.path);
  } catch (err) {
    throw new IpcBindError(
      `ipc_stale_remove_failed at ipc_bind: failed to remove stale IPC path: ${ioText(err as NodeJS.ErrnoException)}`,
    );
  }
}

export async function bindIpc(server: Server, ipc: IpcSettings): Promise<void> {
  await preparePath(ipc);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(new IpcBindError(`ipc_bind_failed at ipc_bind: failed to bind target IPC socket: ${ioText(err)}`)),
    );
    server.listen(ipc.path, () => resolve());
  });
}

/** DashboardIpcRuntimeGuard::drop (dashboard/runtime.rs:43-59): remove the socket, ignore "not found". */
export function removeSocket(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // NotFound is expected; anything else the real guard only logs through tracing (no subscriber: silent)
  }
}
