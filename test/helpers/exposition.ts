/**
 * Reading a Prometheus text exposition in tests: the samples as `{ name, labels, value }`, and `promtool check
 * metrics` on the text (the linter Prometheus ships; Debian package `prometheus`).
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parseExposition(text: string): Sample[] {
  return text
    .split('\n')
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const m = LINE.exec(l);
      if (!m) throw new Error(`not an exposition line: ${l}`);
      const labels = Object.fromEntries(
        [...(m[2] ?? '').matchAll(LABEL)].map((x) => [x[1]!, JSON.parse(`"${x[2]!}"`) as string]),
      );
      return { name: m[1]!, labels, value: Number(m[3]) };
    });
}

/** The samples of `name` whose labels include `labels`. */
export function samplesOf(samples: Sample[], name: string, labels: Record<string, string> = {}): Sample[] {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

/** The one value of `name{labels}`; undefined when there is no such series; throws when there are several. */
export function valueOf(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = samplesOf(samples, name, labels);
  if (found.length > 1) throw new Error(`${found.length} series of ${name} match ${JSON.stringify(labels)}`);
  return found[0]?.value;
}

export const PROMTOOL = '/usr/bin/promtool';

/** `promtool check metrics` with the text on stdin: its exit code and what it printed. */
export function promtoolCheckMetrics(text: string): Promise<{ code: number; output: string }> {
  if (!existsSync(PROMTOOL)) {
    throw new Error(`${PROMTOOL} not found: install the Debian package "prometheus" (apt-get install prometheus; .ci/run does)`);
  }
  return new Promise((resolve, reject) => {
    const child = spawn(PROMTOOL, ['check', 'metrics'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, output }));
    child.stdin.end(text);
  });
}
