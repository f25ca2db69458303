/**
 * The golden dashboard-ipc.v1 transcripts (`test/fixtures/ipc/*.ndjson`): loading and the one normalisation
 * every comparison uses. Format: `# ` comment lines, `> ` a request line as sent, `< ` the answer line as the
 * server writes it; `# @poll` before a request marks an answer that settles asynchronously.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseWireJson } from '../../src/supervisor/json.js';

export const GOLDEN_DIR = fileURLToPath(new URL('../fixtures/ipc/', import.meta.url));

export interface GoldenExchange {
  request: string;
  response: string;
  poll: boolean;
}
export interface Golden {
  name: string;
  header: string[];
  exchanges: GoldenExchange[];
}

export function goldenNames(): string[] {
  return readdirSync(GOLDEN_DIR)
    .filter((f) => f.endsWith('.ndjson'))
    .map((f) => f.slice(0, -'.ndjson'.length))
    .sort();
}

export function loadGolden(name: string): Golden {
  const lines = readFileSync(`${GOLDEN_DIR}${name}.ndjson`, 'utf8').split('\n');
  const header: string[] = [];
  const exchanges: GoldenExchange[] = [];
  let poll = false;
  let request: string | undefined;
  for (const [i, line] of lines.entries()) {
    if (line === '') continue;
    if (line === '# @poll') poll = true;
    else if (line.startsWith('# ')) header.push(line.slice(2));
    else if (line.startsWith('> ')) request = line.slice(2);
    else if (line.startsWith('< ') && request !== undefined) {
      exchanges.push({ request, response: line.slice(2), poll });
      request = undefined;
      poll = false;
    } else throw new Error(`${name}.ndjson:${i + 1}: unexpected line`);
  }
  return { name, header, exchanges };
}

const NORMALISED = '<normalised>';

/**
 * Parse a wire line and blank what legitimately differs between runs: every `*_unix_nanos` value other than
 * 0 and null, and `ipc_path` (the simulator binds a temp path). Field names, nesting, order-free values and
 * enums stay, so `toEqual` on two normalised lines compares the contract.
 */
export function normalise(line: string): unknown {
  return blank(parseWireJson(line), undefined);
}

function blank(value: unknown, key: string | undefined): unknown {
  if (key !== undefined && key.endsWith('_unix_nanos') && value !== 0 && value !== null) return NORMALISED;
  if (key === 'ipc_path' && typeof value === 'string') return NORMALISED;
  if (Array.isArray(value)) return value.map((v) => blank(v, undefined));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, blank(v, k)]));
  }
  return value;
}

/** The keys of every object in a line, in order, as a flat list: to compare key order (serde's) as well. */
export function keyOrder(line: string): string[] {
  const out: string[] = [];
  const walk = (v: unknown) => {
    if (Array.isArray(v)) v.forEach(walk);
    else if (v !== null && typeof v === 'object') {
      for (const [k, inner] of Object.entries(v)) {
        out.push(k);
        walk(inner);
      }
    }
  };
  walk(parseWireJson(line));
  return out;
}
