/**
 * A small SVG chart of one step's PromQL expectation, drawn on the server from query_range data: each series as a
 * line, the expected value as a dashed threshold, the step's window shaded, and the values the run observed as
 * dots. No chart library, no script: an SVG string whose every text comes through the escaping `html` template.
 */
import type { StepSeries } from '../receiver/operations.js';
import { html, type Html } from './html.js';

const W = 640;
const H = 180;
const PAD = { left: 48, right: 12, top: 14, bottom: 26 };

const hhmmss = (t: number) => new Date(t).toISOString().slice(11, 19);
const num = (v: number) =>
  Math.abs(v) >= 1000 || (v !== 0 && Math.abs(v) < 0.01) ? v.toExponential(1) : String(Math.round(v * 100) / 100);

export function renderChart(data: StepSeries): Html {
  const finite = (v: number) => Number.isFinite(v);
  const values = data.series.flatMap((s) => s.points.map((p) => p[1])).filter(finite);
  const threshold = typeof data.value === 'number' ? data.value : undefined;
  const observed = data.observed.filter((o): o is typeof o & { value: number } => typeof o.value === 'number' && finite(o.value));
  const all = [...values, ...(threshold !== undefined ? [threshold] : []), ...observed.map((o) => o.value)];
  let lo = all.length > 0 ? Math.min(...all) : 0;
  let hi = all.length > 0 ? Math.max(...all) : 1;
  if (lo === hi) {
    lo -= 1;
    hi += 1;
  }
  const margin = (hi - lo) * 0.1;
  lo -= margin;
  hi += margin;
  const x = (t: number) => PAD.left + ((t - data.start) / Math.max(1, data.end - data.start)) * (W - PAD.left - PAD.right);
  const y = (v: number) => PAD.top + (1 - (v - lo) / (hi - lo)) * (H - PAD.top - PAD.bottom);
  const clampX = (t: number) => Math.min(Math.max(x(t), PAD.left), W - PAD.right);
  const lines = data.series.map((s, i) => {
    const pts = s.points.filter((p) => finite(p[1])).map((p) => `${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`);
    return html`<polyline class="series s${i % 6}" points="${pts.join(' ')}"
      ><title>${JSON.stringify(s.labels)}</title></polyline
    >`;
  });
  const label = `${data.query}${data.op !== undefined ? ` ${data.op} ${data.value}` : ''}`;
  const windowStart = clampX(data.window.start);
  const windowEnd = clampX(data.window.end);
  return html`<svg
    class="chart-svg"
    viewBox="0 0 ${W} ${H}"
    width="${W}"
    height="${H}"
    role="img"
    aria-label="${label}"
    data-series="${data.series.length}"
  >
    <title>${label}</title>
    <rect
      class="window"
      x="${windowStart.toFixed(1)}"
      y="${PAD.top}"
      width="${Math.max(1, windowEnd - windowStart).toFixed(1)}"
      height="${H - PAD.top - PAD.bottom}"
    >
      <title>step ${data.step}: ${new Date(data.window.start).toISOString()} → ${new Date(data.window.end).toISOString()}</title>
    </rect>
    <line class="axis" x1="${PAD.left}" y1="${H - PAD.bottom}" x2="${W - PAD.right}" y2="${H - PAD.bottom}" />
    <line class="axis" x1="${PAD.left}" y1="${PAD.top}" x2="${PAD.left}" y2="${H - PAD.bottom}" />
    <text class="tick" x="${PAD.left - 4}" y="${PAD.top + 4}" text-anchor="end">${num(hi)}</text>
    <text class="tick" x="${PAD.left - 4}" y="${H - PAD.bottom}" text-anchor="end">${num(lo)}</text>
    <text class="tick" x="${PAD.left}" y="${H - 8}">${hhmmss(data.start)}</text>
    <text class="tick" x="${W - PAD.right}" y="${H - 8}" text-anchor="end">${hhmmss(data.end)}</text>
    ${threshold !== undefined ? html`<line class="threshold" x1="${PAD.left}" y1="${y(threshold).toFixed(1)}" x2="${W - PAD.right}" y2="${y(threshold).toFixed(1)}" /><text class="threshold-label" x="${W - PAD.right - 2}" y="${(y(threshold) - 4).toFixed(1)}" text-anchor="end">expected ${data.op} ${data.value}</text>` : ''}
    ${lines}
    ${observed.map((o) => html`<circle class="observed" cx="${clampX(o.at).toFixed(1)}" cy="${y(o.value).toFixed(1)}" r="4"><title>observed ${o.value} at ${new Date(o.at).toISOString()}</title></circle>`)}
    ${data.series.length === 0 ? html`<text class="empty" x="${W / 2}" y="${H / 2}" text-anchor="middle">${data.error ?? 'no data from Prometheus for this range'}</text>` : ''}
  </svg>`;
}
