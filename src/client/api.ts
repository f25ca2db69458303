/**
 * The CLI's side of a running remediator's HTTP API: where it is (REMEDIATOR_URL), the token (REMEDIATOR_TOKEN or
 * WEBHOOK_TOKEN, or a file: REMEDIATOR_TOKEN_FILE / --token-file, so it stays out of `ps` and shell history) and who
 * acts (--as, else $USER@host), sent as X-Remediator-User and recorded with every action.
 */
import { readFileSync } from 'node:fs';
import { hostname, userInfo } from 'node:os';

export interface ClientOptions {
  url?: string;
  tokenFile?: string;
  as?: string;
}

export class ApiError extends Error {
  override readonly name = 'ApiError';
  constructor(
    message: string,
    readonly status?: number,
  ) {
    super(message);
  }
}

export interface ApiClient {
  readonly url: string;
  get<T>(path: string): Promise<T>;
  post<T>(path: string, body?: unknown): Promise<{ status: number; body: T }>;
  /** Server-sent events from `path`: calls onEvent for each, resolves when the server ends the stream. */
  events(path: string, onEvent: (event: string, data: unknown) => void, signal?: AbortSignal): Promise<void>;
}

function defaultUser(): string {
  try {
    return `${userInfo().username}@${hostname()}`;
  } catch {
    return `${process.env.USER ?? 'cli'}@${hostname()}`;
  }
}

export function createClient(opts: ClientOptions, env: NodeJS.ProcessEnv = process.env): ApiClient {
  const url = (opts.url ?? env.REMEDIATOR_URL ?? 'http://127.0.0.1:9095').replace(/\/+$/, '');
  const tokenFile = opts.tokenFile ?? env.REMEDIATOR_TOKEN_FILE;
  let token = env.REMEDIATOR_TOKEN ?? env.WEBHOOK_TOKEN;
  if (tokenFile) {
    try {
      token = readFileSync(tokenFile, 'utf8').trim();
    } catch (err) {
      throw new ApiError(
        `cannot read the token file ${tokenFile}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`,
      );
    }
  }
  const headers: Record<string, string> = {
    'x-remediator-user': opts.as ?? defaultUser(),
    ...(token ? { authorization: `Bearer ${token}` } : {}),
  };
  const call = async (method: string, path: string, body?: unknown, signal?: AbortSignal) => {
    try {
      return await fetch(`${url}${path}`, {
        method,
        headers: {
          ...headers,
          ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
          accept: 'application/json',
        },
        ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
        ...(signal ? { signal } : {}),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code;
      throw new ApiError(`cannot reach remediator at ${url} (${cause ?? (err as Error).message}); set REMEDIATOR_URL`);
    }
  };
  const failure = async (res: Response) => {
    const text = await res.text();
    let message = text;
    try {
      message = (JSON.parse(text) as { error?: string }).error ?? text;
    } catch {
      /* plain text */
    }
    if (res.status === 401)
      message += ' (set REMEDIATOR_TOKEN, or REMEDIATOR_TOKEN_FILE / --token-file, to the WEBHOOK_TOKEN of the instance)';
    return new ApiError(`HTTP ${res.status}: ${message.trim()}`, res.status);
  };
  return {
    url,
    async get<T>(path: string) {
      const res = await call('GET', path);
      if (!res.ok) throw await failure(res);
      return (await res.json()) as T;
    },
    async post<T>(path: string, body?: unknown) {
      const res = await call('POST', path, body ?? {});
      if (res.status >= 400 && res.status !== 409) throw await failure(res);
      return { status: res.status, body: (await res.json()) as T };
    },
    async events(path, onEvent, signal) {
      const res = await call('GET', path, undefined, signal);
      if (!res.ok || res.body === null) throw await failure(res);
      const decoder = new TextDecoder();
      let buffer = '';
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let end;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          let event = 'message';
          const data: string[] = [];
          for (const line of block.split('\n')) {
            if (line.startsWith('event:')) event = line.slice(6).trim();
            else if (line.startsWith('data:')) data.push(line.slice(5).trimStart());
          }
          if (data.length > 0) onEvent(event, JSON.parse(data.join('\n')) as unknown);
        }
      }
    },
  };
}
