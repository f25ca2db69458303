/**
 * Prometheus HTTP API client: instant queries only (`/api/v1/query`) and readiness (`/-/ready`).
 *
 * Facts it is built on (Prometheus' HTTP API documentation): the query goes as a form-encoded POST
 * body (a JSON body reads as an empty query); sample values are strings, with `+Inf`, `-Inf` and `NaN`; an empty
 * vector means "no data", not an error; errors are 400 bad_data, 422 execution, 503 timeout/canceled, 500
 * internal; and before Prometheus is ready every `/api/v1/*` call gets a plain-text 503.
 */
import { createHttpClient, probeStatus, type HttpError } from '../http/client.js';
import { redactUrl } from '../http/redact.js';
import { isRetryable } from '../http/retryable.js';
import { QueryResponse, parsePromValue } from './schema.js';

export interface Sample {
  labels: Record<string, string>;
  /** +Inf, -Inf and NaN are mapped to the JS numbers; never Number("+Inf") (that is NaN). */
  value: number;
  /** ISO time of the evaluation (Prometheus instant-vector timestamps are evaluation times). */
  at: string;
}

/** An instant query's result, normalised: vectors and scalars become samples; strings keep their text. */
export type QueryResult =
  | { resultType: 'vector'; samples: Sample[] }
  | { resultType: 'scalar'; samples: [Sample] }
  | { resultType: 'string'; text: string; at: string };

export interface PrometheusClient {
  /** Throws PrometheusQueryError; `retryable` tells an outage (5xx, network) from a bad query (400/422). */
  query(promql: string, signal?: AbortSignal): Promise<QueryResult>;
  /** GET /-/ready; false when not reachable. */
  ready(signal?: AbortSignal): Promise<boolean>;
}

export class PrometheusQueryError extends Error {
  override readonly name = 'PrometheusQueryError';
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly httpStatus?: number,
    readonly errorType?: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }
}

export interface PrometheusClientOptions {
  /** Base URL, e.g. `http://127.0.0.1:9090` or `https://host/prometheus` (a path prefix is kept). */
  url: string;
  /** Per-request timeout (default 5000, as HTTP_TIMEOUT). */
  timeoutMs?: number;
}

/** Error types that mean the query itself is wrong: asking again gives the same answer. */
const QUERY_FAULTS: ReadonlySet<string> = new Set(['bad_data', 'execution', 'not_found']);
const MAX_RESPONSE_BYTES = 64 * 1024 * 1024;

export function createPrometheusClient({ url, timeoutMs = 5000 }: PrometheusClientOptions): PrometheusClient {
  const where = redactUrl(url);
  // Every status is an answer to interpret here, and the body is parsed here too (it may not be JSON).
  const http = createHttpClient({ baseUrl: url, timeoutMs, maxBytes: MAX_RESPONSE_BYTES });

  return {
    async query(promql, signal) {
      const named = `Prometheus query ${quote(promql)}`;
      let status: number;
      let text: string;
      try {
        const res = await http.request({
          method: 'POST',
          url: '/api/v1/query',
          body: new URLSearchParams({ query: promql }),
          ...(signal ? { signal } : {}),
        });
        status = res.status;
        text = res.text;
      } catch (err) {
        throw transportError(named, where, timeoutMs, err as HttpError);
      }

      let json: unknown;
      try {
        json = JSON.parse(text);
      } catch {
        // Not JSON: the plain-text 503 before Prometheus is ready, a proxy's error page, 404/405 text.
        throw new PrometheusQueryError(
          `${named} failed: HTTP ${status} ${firstLine(text)}`.trimEnd(),
          status >= 200 && status < 300 ? false : isRetryable(status),
          status,
        );
      }
      const parsed = QueryResponse.safeParse(json);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        const at = issue ? `${issue.path.join('.') || '(root)'}: ${issue.message}` : 'invalid';
        throw new PrometheusQueryError(
          `${named}: unexpected response (HTTP ${status}): ${at}`,
          status >= 300 && isRetryable(status),
          status,
        );
      }
      const body = parsed.data;
      if (body.status === 'error') {
        const errorType = body.errorType ?? 'unknown';
        const retryable = !QUERY_FAULTS.has(errorType) && isRetryable(status);
        throw new PrometheusQueryError(
          `${named} failed: ${errorType}: ${body.error ?? 'no error message'} (HTTP ${status})`,
          retryable,
          status,
          errorType,
        );
      }
      if (status < 200 || status >= 300) {
        throw new PrometheusQueryError(`${named} failed: HTTP ${status} with a success body`, isRetryable(status), status);
      }

      const data = body.data;
      switch (data.resultType) {
        case 'vector':
          return {
            resultType: 'vector',
            samples: data.result.map((s) => ({ labels: s.metric, value: parsePromValue(s.value[1]), at: isoTime(s.value[0]) })),
          };
        case 'scalar':
          return {
            resultType: 'scalar',
            samples: [{ labels: {}, value: parsePromValue(data.result[1]), at: isoTime(data.result[0]) }],
          };
        case 'string':
          return { resultType: 'string', text: data.result[1], at: isoTime(data.result[0]) };
        case 'matrix':
          throw new PrometheusQueryError(
            `${named} returned a range vector (matrix); an expectation needs an instant vector or a scalar`,
            false,
            status,
          );
      }
    },

    // Asked on every /readyz, in a receiver too: plain node:http, not the query client (axios loads on the first query).
    async ready(signal) {
      return (await probeStatus(`${url.replace(/\/+$/, '')}/-/ready`, timeoutMs, signal)) === 200;
    },
  };
}

/** The shared client's HttpError in the words of a query: what was asked, and where (without credentials). */
function transportError(named: string, where: string, timeoutMs: number, err: HttpError): PrometheusQueryError {
  const cause = err.cause;
  const options = cause !== undefined ? { cause } : {};
  if (err.failure === 'aborted') return new PrometheusQueryError(`${named} aborted`, false, undefined, undefined, options);
  if (err.failure === 'timeout') {
    return new PrometheusQueryError(`${named} timed out after ${timeoutMs} ms (${where})`, true, undefined, undefined, options);
  }
  const message = err.details.detail ?? err.message;
  return new PrometheusQueryError(`${named} failed: ${message} (${where})`, err.retryable, undefined, undefined, options);
}

/** Prometheus timestamps are Unix seconds with millisecond decimals. */
function isoTime(seconds: number): string {
  return new Date(Math.round(seconds * 1000)).toISOString();
}

function quote(promql: string): string {
  return JSON.stringify(promql.length > 200 ? `${promql.slice(0, 200)}…` : promql);
}

function firstLine(text: string): string {
  const line = text.trim().split('\n', 1)[0] ?? '';
  return line.length > 200 ? `${line.slice(0, 200)}…` : line;
}
