import { appendFileSync } from 'node:fs';

export type ReportValue = string | number | boolean;

/**
 * One line of the guarantees test report: printed as `[guarantee] <name>: k=v …` and, when the environment
 * names a file in GUARANTEE_REPORT, appended to it as one JSON object per line (JSON Lines: test files run in
 * parallel processes, and whole-line appends do not interleave). Returns the printed line.
 */
export function reportGuarantee(name: string, fields: Record<string, ReportValue>): string {
  const text = (v: ReportValue) => (typeof v === 'string' && /\s/.test(v) ? JSON.stringify(v) : String(v));
  const line = `[guarantee] ${name}: ${Object.entries(fields)
    .map(([k, v]) => `${k}=${text(v)}`)
    .join(' ')}`;
  process.stdout.write(`${line}\n`);
  const file = process.env.GUARANTEE_REPORT;
  if (file) appendFileSync(file, `${JSON.stringify({ guarantee: name, ...fields, at: new Date().toISOString() })}\n`);
  return line;
}
