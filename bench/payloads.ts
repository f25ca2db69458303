/**
 * Alertmanager v4 webhook payloads for the bench, shaped like the v0.25 capture in the fixtures (five labels, two
 * annotations, a generator URL): `alerts` distinct incidents per payload, each its own target so no run waits for
 * another's lease. `alertname` picks the bench procedure (bench/rules.ts).
 */
import { randomBytes } from 'node:crypto';

let batch = 0;
/** Distinct per bench process, so incidents never repeat across runs on one Redis. */
const run = randomBytes(2).toString('hex');

export interface Payload {
  body: string;
  /** The alerts' instance labels (= targets), in order. */
  instances: string[];
}

export function payload(alerts: number, alertname: string): Payload {
  const b = batch++;
  const instances = Array.from({ length: alerts }, (_, i) => `bench-${run}-${b}-${i}:9100`);
  const startsAt = new Date(Date.UTC(2026, 10, 28, 7, 17, 26, 321)).toISOString();
  const body = JSON.stringify({
    receiver: 'remediator',
    status: 'firing',
    alerts: instances.map((instance, i) => ({
      status: 'firing',
      labels: { alertname, instance, job: 'supervisor', service: 'bench', severity: 'page' },
      annotations: {
        runbook: 'BENCH: exec /bin/true',
        summary: `Bench incident ${b}/${i} on ${instance}`,
      },
      startsAt,
      endsAt: '0001-01-01T00:00:00Z',
      generatorURL: 'http://127.0.0.1:9090/graph?g0.expr=up+%3D%3D+0&g0.tab=1',
      fingerprint: `${run}${(b * 1000 + i).toString(16).padStart(12, '0')}`,
    })),
    groupLabels: { alertname },
    commonLabels: { alertname, job: 'supervisor', service: 'bench', severity: 'page' },
    commonAnnotations: { runbook: 'BENCH: exec /bin/true' },
    externalURL: 'http://127.0.0.1:9093',
    version: '4',
    groupKey: `{}:{alertname="${alertname}"}`,
    truncatedAlerts: 0,
  });
  return { body, instances };
}

export function payloads(count: number, alerts: number, alertname: string): string[] {
  return Array.from({ length: count }, () => payload(alerts, alertname).body);
}
