/**
 * Prometheus HTTP API client: instant queries only (`/api/v1/query`).
 * INTERFACE ONLY for now — implementation in progress.
 */

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
