import { Counter, Gauge, Registry } from 'prom-client';
import { CHILD_STATES, type Children } from './children.js';

export const HEALTH_STATUSES = ['starting', 'ready', 'degraded', 'shutting_down'] as const;
export type HealthStatus = (typeof HEALTH_STATUSES)[number];

/** What the metrics read at scrape time. */
export interface MetricsSource {
  up(): boolean;
  status(): HealthStatus;
  linkConnected(): boolean;
  uptimeSeconds(): number;
  relayUp(): boolean;
  children: Children;
}

/**
 * Exactly the series of DESIGN.md's "supervisor the shipped rules act on" table, in their own registry
 * (no default process metrics).
 */
export class SupervisorMetrics {
  readonly registry = new Registry();
  readonly iterations: Counter;
  readonly restarts: Counter<'child'>;
  readonly tokens: Gauge<'child'>;

  constructor(src: MetricsSource) {
    const registers = [this.registry];
    new Gauge({
      name: 'supervisor_up',
      help: 'Supervisor process up (1), 0 while shutting down.',
      registers,
      collect() {
        this.set(src.up() ? 1 : 0);
      },
    });
    new Gauge({
      name: 'supervisor_health_status',
      help: 'health.status, one-hot.',
      labelNames: ['status'],
      registers,
      collect() {
        const s = src.status();
        for (const st of HEALTH_STATUSES) this.set({ status: st }, st === s ? 1 : 0);
      },
    });
    new Gauge({
      name: 'supervisor_dashboard_link_connected',
      help: 'health.dashboard_link: 1 connected, 0 disconnected.',
      registers,
      collect() {
        this.set(src.linkConnected() ? 1 : 0);
      },
    });
    new Gauge({
      name: 'supervisor_uptime_seconds',
      help: 'health.uptime_secs.',
      registers,
      collect() {
        this.set(src.uptimeSeconds());
      },
    });
    this.iterations = new Counter({
      name: 'supervisor_control_loop_iterations_total',
      help: 'health.control_loop_iterations: completed control loop iterations.',
      registers,
    });
    new Gauge({
      name: 'supervisor_children',
      help: 'Children by state (running, failed, quarantined).',
      labelNames: ['state'],
      registers,
      collect() {
        const c = src.children.counts();
        for (const st of CHILD_STATES) this.set({ state: st }, c[st]);
      },
    });
    new Gauge({
      name: 'supervisor_children_target',
      help: 'target_count: child specs the supervisor holds.',
      registers,
      collect() {
        this.set(src.children.target);
      },
    });
    this.restarts = new Counter({
      name: 'supervisor_child_restarts_total',
      help: 'child_runtime_records[].restart_count.',
      labelNames: ['child'],
      registers,
      collect() {
        // Mirrors the children: a removed child loses its series.
        this.reset();
        for (const r of src.children.records()) this.inc({ child: r.id }, r.restart_count);
      },
    });
    this.tokens = new Gauge({
      name: 'supervisor_restart_budget_tokens',
      help: 'restart_budget.tokens per child.',
      labelNames: ['child'],
      registers,
      collect() {
        this.reset();
        for (const r of src.children.records()) this.set({ child: r.id }, r.restart_budget.tokens);
      },
    });
    new Gauge({
      name: 'supervisor_relay_up',
      help: 'The relay child process is alive (1) or not (0).',
      registers,
      collect() {
        this.set(src.relayUp() ? 1 : 0);
      },
    });
  }
}
