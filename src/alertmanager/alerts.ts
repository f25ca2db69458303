import { z } from 'zod';
import { loadAxios } from '../http/client.js';

/** One alert as `GET /api/v2/alerts` lists it (only unresolved ones are listed). Only the fields used. */
export const GettableAlert = z.looseObject({
  labels: z.record(z.string(), z.string()),
  annotations: z.record(z.string(), z.string()).default({}),
  startsAt: z.string(),
  endsAt: z.string().optional(),
  generatorURL: z.string().optional(),
  fingerprint: z.string().optional(),
});
export type GettableAlert = z.infer<typeof GettableAlert>;

/** Active (unresolved) alerts matching every filter matcher, e.g. `alertname="RemediationEscalated"`. */
export async function fetchAlerts(baseUrl: string, filters: string[], timeoutMs: number): Promise<GettableAlert[]> {
  const query = new URLSearchParams(filters.map((f): [string, string] => ['filter', f]));
  query.set('silenced', 'true');
  query.set('inhibited', 'true');
  const axios = await loadAxios();
  const res = await axios.get(`${baseUrl.replace(/\/+$/, '')}/api/v2/alerts?${query.toString()}`, {
    timeout: timeoutMs,
    proxy: false,
    validateStatus: () => true,
  });
  if (res.status !== 200) throw new Error(`Alertmanager GET /api/v2/alerts: HTTP ${res.status}`);
  return z.array(GettableAlert).parse(res.data);
}
