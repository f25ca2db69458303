/**
 * `sim/bin/alert ALERTNAME [label=value …] [--resolved]`: posts one alert to remediator's webhook as Alertmanager
 * would (a v4 payload, the fingerprint Alertmanager computes, startsAt = now), for trying a procedure by hand
 * without Prometheus and Alertmanager. remediator's URL from $REMEDIATOR_URL (default http://127.0.0.1:9095), the
 * token from $WEBHOOK_TOKEN. Prints remediator's answer (which procedure, which run id); exit 0 on 202.
 * The same alert (same labels) sent again within a run is the same incident only with the same startsAt:
 * --starts-at TIME repeats one.
 */
import { parseArgs } from 'node:util';
import { alertFingerprint } from '../../src/alertmanager/payload.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: { resolved: { type: 'boolean' }, 'starts-at': { type: 'string' }, severity: { type: 'string', default: 'page' } },
});
const [alertname, ...pairs] = positionals;
if (alertname === undefined || pairs.some((p) => !/^[A-Za-z_][A-Za-z0-9_]*=/.test(p))) {
  process.stderr.write('usage: sim/bin/alert ALERTNAME [label=value …] [--resolved] [--starts-at RFC3339]\n');
  process.exit(64);
}
const labels: Record<string, string> = { alertname, severity: values.severity };
for (const p of pairs) labels[p.slice(0, p.indexOf('='))] = p.slice(p.indexOf('=') + 1);
const now = new Date().toISOString();
const status = values.resolved ? 'resolved' : 'firing';
const payload = {
  version: '4',
  groupKey: `{}:{alertname="${alertname}"}`,
  truncatedAlerts: 0,
  status,
  receiver: 'remediator',
  groupLabels: { alertname },
  commonLabels: labels,
  commonAnnotations: {},
  externalURL: 'http://127.0.0.1:9093',
  alerts: [
    {
      status,
      labels,
      annotations: { summary: `${alertname} (sent by sim/bin/alert)` },
      startsAt: values['starts-at'] ?? now,
      endsAt: values.resolved ? now : '0001-01-01T00:00:00Z',
      generatorURL: 'http://127.0.0.1:9090/graph',
      fingerprint: alertFingerprint(labels),
    },
  ],
};
const url = `${(process.env.REMEDIATOR_URL ?? 'http://127.0.0.1:9095').replace(/\/+$/, '')}/webhook`;
const token = process.env.WEBHOOK_TOKEN;
const res = await fetch(url, {
  method: 'POST',
  headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
  body: JSON.stringify(payload),
}).catch((err: Error) => {
  process.stderr.write(`sim/bin/alert: ${url}: ${err.message}\n`);
  process.exit(3);
});
process.stdout.write(`${res.status} ${await res.text()}\n`);
process.exit(res.status === 202 ? 0 : 1);
