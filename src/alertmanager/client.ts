import { createHttpClient, type HttpClient, type HttpError, type HttpMethod } from '../http/client.js';
import { scrubUrlSecrets } from '../http/redact.js';
import { isRetryable } from '../http/retryable.js';

/** An alert as Alertmanager's API v2 takes it (`POST /api/v2/alerts`). */
export interface PostableAlert {
  labels: Record<string, string>;
  annotations?: Record<string, string>;
  startsAt?: string;
  endsAt?: string;
  generatorURL?: string;
}

export interface SilenceMatcher {
  name: string;
  value: string;
  isRegex: boolean;
  isEqual?: boolean;
}

export class AlertmanagerError extends Error {
  override readonly name = 'AlertmanagerError';
  constructor(
    message: string,
    readonly retryable: boolean,
    readonly httpStatus?: number,
  ) {
    super(message);
  }
}

/** Alertmanager API v2: escalation alerts and silences. One attempt per call; callers decide on retries. */
export class AlertmanagerClient {
  private readonly http: HttpClient;

  constructor(
    readonly baseUrl: string,
    timeoutMs: number,
  ) {
    this.http = createHttpClient({ baseUrl, timeoutMs });
  }

  private async call<T>(method: HttpMethod, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    let res;
    try {
      res = await this.http.request({
        method,
        url: path,
        ...(body !== undefined ? { json: body } : {}),
        ...(signal ? { signal } : {}),
      });
    } catch (err) {
      const e = err as HttpError;
      throw new AlertmanagerError(`Alertmanager ${method} ${path}: ${e.details.detail ?? e.message}`, e.retryable);
    }
    if (res.status >= 200 && res.status < 300) return parseJson(res.text) as T;
    throw new AlertmanagerError(
      `Alertmanager ${method} ${path}: HTTP ${res.status}: ${scrubUrlSecrets(res.text, this.baseUrl).slice(0, 300)}`,
      isRetryable(res.status),
      res.status,
    );
  }

  async postAlerts(alerts: PostableAlert[], signal?: AbortSignal): Promise<void> {
    await this.call('POST', '/api/v2/alerts', alerts, signal);
  }

  async createSilence(matchers: SilenceMatcher[], endsAt: Date, comment: string): Promise<string> {
    const body = { matchers, startsAt: new Date().toISOString(), endsAt: endsAt.toISOString(), createdBy: 'remediator', comment };
    const data = await this.call<{ silenceID: string }>('POST', '/api/v2/silences', body);
    return data.silenceID;
  }

  /** Expires a silence; an unknown one counts as already gone (0.25 answers 500 "silence not found", 0.26+ 404). */
  async expireSilence(id: string): Promise<void> {
    try {
      await this.call('DELETE', `/api/v2/silence/${encodeURIComponent(id)}`);
    } catch (err) {
      if (
        err instanceof AlertmanagerError &&
        (err.httpStatus === 404 || (err.httpStatus === 500 && /silence not found/.test(err.message)))
      )
        return;
      throw err;
    }
  }

  async ready(): Promise<boolean> {
    try {
      const res = await this.http.request({ method: 'GET', url: '/-/ready' });
      return res.status === 200;
    } catch {
      return false;
    }
  }
}

/** JSON when it is JSON (silence ids), else the text as it came (POST /api/v2/alerts answers with an empty body). */
function parseJson(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}
