/** A small typed client for the simulator's admin API and metrics, for tests. */
import type { ChildRecord, ChildState, CommandResult } from './children.js';
import type { HealthStatus } from './metrics.js';

export interface Health {
  status: HealthStatus;
  dashboard_link: 'connected' | 'disconnected';
  uptime_secs: number;
  control_loop_iterations: number;
  pid: number;
}

export interface State {
  pid: number;
  target_count: number;
  counts: Record<ChildState, number>;
  children: ChildRecord[];
  dashboard: { path: string; link: 'connected' | 'disconnected'; refusing_connections: boolean; refused_connections: number };
  relay: { pid: number | null; up: boolean; starts: number };
}

/** Prometheus text format → Map of `name{labels}` (exactly as exposed) → value. */
export function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

export class SupervisorClient {
  constructor(
    readonly adminUrl: string,
    readonly metricsUrl: string,
  ) {}

  private async json<T>(method: string, path: string): Promise<T> {
    const res = await fetch(`${this.adminUrl}${path}`, { method, signal: AbortSignal.timeout(5000) });
    const body = (await res.json()) as T;
    if (res.status >= 400) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(body)}`);
    return body;
  }

  health(): Promise<Health> {
    return this.json('GET', '/health');
  }

  state(): Promise<State> {
    return this.json('GET', '/state');
  }

  /** POST a control or fault endpoint, e.g. `/children/child-2/remove` or `/faults/ipc/drop?sticky=true`. */
  post<T = CommandResult>(path: string): Promise<T> {
    return this.json('POST', path);
  }

  async metrics(): Promise<Map<string, number>> {
    const res = await fetch(this.metricsUrl, { signal: AbortSignal.timeout(5000) });
    if (!res.ok) throw new Error(`GET ${this.metricsUrl}: ${res.status}`);
    return parseMetrics(await res.text());
  }

  /** One series' value (`supervisor_children{state="failed"}`), undefined when absent. */
  async metric(series: string): Promise<number | undefined> {
    return (await this.metrics()).get(series);
  }
}
