import axios, { type AxiosInstance } from 'axios';

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
  private readonly http: AxiosInstance;

  constructor(
    readonly baseUrl: string,
    timeoutMs: number,
  ) {
    this.http = axios.create({
      baseURL: baseUrl.replace(/\/+$/, ''),
      timeout: timeoutMs,
      validateStatus: () => true,
      proxy: false,
    });
  }

  private async call<T>(method: 'get' | 'post' | 'delete', path: string, body?: unknown): Promise<T> {
    let res;
    try {
      res = await this.http.request<T>({ method, url: path, data: body });
    } catch (err) {
      throw new AlertmanagerError(`Alertmanager ${method.toUpperCase()} ${path}: ${(err as Error).message}`, true);
    }
    if (res.status >= 200 && res.status < 300) return res.data;
    const detail = typeof res.data === 'string' ? res.data : JSON.stringify(res.data);
    throw new AlertmanagerError(
      `Alertmanager ${method.toUpperCase()} ${path}: HTTP ${res.status}: ${detail.slice(0, 300)}`,
      res.status >= 500 || res.status === 429,
      res.status,
    );
  }

  async postAlerts(alerts: PostableAlert[]): Promise<void> {
    await this.call('post', '/api/v2/alerts', alerts);
  }

  async createSilence(matchers: SilenceMatcher[], endsAt: Date, comment: string): Promise<string> {
    const body = { matchers, startsAt: new Date().toISOString(), endsAt: endsAt.toISOString(), createdBy: 'remediator', comment };
    const data = await this.call<{ silenceID: string }>('post', '/api/v2/silences', body);
    return data.silenceID;
  }

  /** Expires a silence; an unknown one counts as already gone (0.25 answers 500 "silence not found", 0.26+ 404). */
  async expireSilence(id: string): Promise<void> {
    try {
      await this.call('delete', `/api/v2/silence/${encodeURIComponent(id)}`);
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
      const res = await this.http.get('/-/ready');
      return res.status === 200;
    } catch {
      return false;
    }
  }
}
