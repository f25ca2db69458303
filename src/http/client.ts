/**
 * Every outgoing HTTP request goes through here (Prometheus, Alertmanager, the http action, escalation
 * targets): one place for the timeout, abort, the response cap, no redirects and no proxy from the
 * environment, and one mapping of what can go wrong to HttpError: what failed, whether trying again could help
 * (http/retryable.ts), and a message that names the method and the URL's origin only. Every response, whatever
 * its status, is an answer for the caller to read; `expectOk` turns a non-2xx one into an HttpError.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AxiosInstance, AxiosStatic } from 'axios';
import { redactUrl, scrubUrlSecrets } from './redact.js';
import { isRetryable } from './retryable.js';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'HEAD';

/** What went wrong: no answer (and why), or an answer with a status the caller did not want. */
export type HttpFailure = 'aborted' | 'timeout' | 'too-large' | 'invalid-url' | 'network' | 'status';

export class HttpError extends Error {
  override readonly name = 'HttpError';
  constructor(
    message: string,
    readonly failure: HttpFailure,
    readonly retryable: boolean,
    readonly details: {
      /** The transport's error code (ECONNREFUSED…), when there was no answer. */
      code?: string;
      /** The transport's own words ("connect ECONNREFUSED 127.0.0.1:9"): never the URL or a header. */
      detail?: string;
      httpStatus?: number;
      /** The answer's body, cut to 300 characters, for a `status` failure. */
      body?: string;
    } = {},
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
  get httpStatus(): number | undefined {
    return this.details.httpStatus;
  }
}

export interface HttpRequest {
  method: HttpMethod;
  /** Absolute, or a path under the client's baseUrl. */
  url: string;
  headers?: Record<string, string>;
  /** Sent as it is (a form, a text). */
  body?: string | URLSearchParams;
  /** Sent as JSON (with Content-Type: application/json unless a header sets one). */
  json?: unknown;
  signal?: AbortSignal;
  /** This request's timeout; default the client's. 0: none (the signal bounds it). */
  timeoutMs?: number;
}

export interface HttpResponse {
  status: number;
  statusText: string;
  /** Header names in lower case. */
  headers: Record<string, string>;
  text: string;
}

export interface HttpClientOptions {
  /** Requests with a relative url go under it (a path prefix is kept). */
  baseUrl?: string;
  /** Per-request timeout (default none: the signal bounds it). */
  timeoutMs?: number;
  /** A response body larger than this fails the request (default 10 MiB). */
  maxBytes?: number;
}

export interface HttpClient {
  /** One attempt. Resolves with any answer; throws HttpError when there is none. */
  request(req: HttpRequest): Promise<HttpResponse>;
}

const DEFAULT_MAX_BYTES = 10 * 1024 * 1024;

let axiosModule: Promise<AxiosStatic> | undefined;
/**
 * axios (with form-data, mime-db, follow-redirects: ~10 MiB resident) is loaded by the first request of the process,
 * not at start: a receiver makes none, a worker only once a step or an escalation calls out. One dynamic import, then
 * the same module for every client.
 */
export function loadAxios(): Promise<AxiosStatic> {
  axiosModule ??= import('axios').then((m) => m.default);
  return axiosModule;
}

export function createHttpClient(opts: HttpClientOptions = {}): HttpClient {
  const maxBytes = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  let instance: AxiosInstance | undefined;
  const client = async (): Promise<{ axios: AxiosStatic; http: AxiosInstance }> => {
    const axios = await loadAxios();
    instance ??= axios.create({
      ...(opts.baseUrl !== undefined ? { baseURL: opts.baseUrl.replace(/\/+$/, '') } : {}),
      // Every status is an answer to interpret; bodies are read as text and parsed by whoever knows their format.
      validateStatus: () => true,
      responseType: 'text',
      transformResponse: [(data: unknown) => data],
      maxContentLength: maxBytes,
      maxRedirects: 0,
      proxy: false,
    });
    return { axios, http: instance };
  };

  return {
    async request(req) {
      const timeoutMs = req.timeoutMs ?? opts.timeoutMs ?? 0;
      const full =
        opts.baseUrl !== undefined && !/^[a-z]+:/i.test(req.url) ? `${opts.baseUrl.replace(/\/+$/, '')}${req.url}` : req.url;
      const where = `${req.method} ${redactUrl(full, 'origin')}`;
      req.signal?.throwIfAborted();
      const jsonHeader =
        req.json !== undefined && !Object.keys(req.headers ?? {}).some((k) => k.toLowerCase() === 'content-type')
          ? { 'Content-Type': 'application/json' }
          : {};
      const { axios, http } = await client();
      try {
        const res = await http.request<string>({
          method: req.method,
          url: req.url,
          headers: { ...jsonHeader, ...req.headers },
          ...(req.json !== undefined ? { data: JSON.stringify(req.json) } : req.body !== undefined ? { data: req.body } : {}),
          timeout: timeoutMs,
          ...(req.signal ? { signal: req.signal } : {}),
        });
        const headers = Object.fromEntries(
          Object.entries(res.headers).flatMap(([k, v]) => (v === undefined || v === null ? [] : [[k.toLowerCase(), String(v)]])),
        );
        return {
          status: res.status,
          statusText: res.statusText ?? '',
          headers,
          text: typeof res.data === 'string' ? res.data : String(res.data ?? ''),
        };
      } catch (err) {
        throw transportError(axios, where, timeoutMs, maxBytes, err, req.signal);
      }
    },
  };
}

/**
 * The status of a GET to `url`, its body read and dropped; undefined when there is no answer (refused, timed out after
 * `timeoutMs`, aborted, not a valid http(s) URL). For readiness probes (Prometheus' /-/ready, asked on every /readyz):
 * plain node:http, so a process that only answers probes never loads axios. As the client: no redirects followed,
 * no proxy from the environment, credentials in the URL sent as Basic authorization.
 */
export function probeStatus(url: string, timeoutMs: number, signal?: AbortSignal): Promise<number | undefined> {
  return new Promise((resolve) => {
    let target: URL;
    try {
      target = new URL(url);
    } catch {
      resolve(undefined);
      return;
    }
    const send = target.protocol === 'http:' ? httpRequest : target.protocol === 'https:' ? httpsRequest : undefined;
    if (send === undefined || signal?.aborted) {
      resolve(undefined);
      return;
    }
    const req = send(target, { method: 'GET', ...(timeoutMs > 0 ? { timeout: timeoutMs } : {}), ...(signal ? { signal } : {}) });
    req.on('response', (res: IncomingMessage) => {
      res.on('error', () => resolve(undefined));
      res.on('end', () => resolve(res.statusCode));
      res.resume();
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(undefined));
    req.end();
  });
}

/**
 * A non-2xx answer as an HttpError (retryable for 5xx and 429), naming the status; the start of the body is
 * kept in `details.body`, with anything of the request URL that may be a secret cut out.
 */
export function expectOk(res: HttpResponse, where: string, url: string): HttpResponse {
  if (res.status >= 200 && res.status < 300) return res;
  const text = scrubUrlSecrets(res.text, url);
  const body = text.length > 300 ? `${text.slice(0, 300)}…` : text;
  throw new HttpError(`${where} answered HTTP ${res.status}`, 'status', isRetryable(res.status), {
    httpStatus: res.status,
    body,
  });
}

function transportError(
  axios: AxiosStatic,
  where: string,
  timeoutMs: number,
  maxBytes: number,
  err: unknown,
  signal?: AbortSignal,
): HttpError {
  const code = typeof (err as { code?: unknown }).code === 'string' ? (err as { code: string }).code : undefined;
  const detail = err instanceof Error && !(err instanceof TypeError) ? err.message : (code ?? 'request failed');
  // A plain cause: axios errors carry the request config, headers and URL (and any credentials in them).
  const cause = Object.assign(new Error(detail), code !== undefined ? { code } : {});
  const details = { ...(code !== undefined ? { code } : {}), detail };
  if (signal?.aborted || axios.isCancel(err))
    return new HttpError(`${where} aborted`, 'aborted', false, details, { cause: signal?.reason ?? cause });
  if (code === 'ECONNABORTED' || code === 'ETIMEDOUT')
    return new HttpError(`${where} timed out after ${timeoutMs} ms`, 'timeout', true, details, { cause });
  if (code === 'ERR_FR_MAX_BODY_LENGTH_EXCEEDED' || code === 'ERR_BAD_RESPONSE')
    return new HttpError(`${where}: response body over ${maxBytes} bytes`, 'too-large', false, details, { cause });
  if (err instanceof TypeError || code === 'ERR_INVALID_URL')
    return new HttpError(`${where}: not a valid URL`, 'invalid-url', false, details, { cause });
  return new HttpError(`${where} failed: ${code ?? 'no response'}`, 'network', isRetryable(err), details, { cause });
}
