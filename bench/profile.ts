/**
 * Reads a V8 CPU profile (`node --cpu-prof`) and says where the time went: self time per function and per area
 * (a package under node_modules, Node's internals, remediator's own modules, garbage collection), as shares of the
 * time the process was not idle.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
}
interface CpuProfile {
  startTime: number;
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  /** Busy (not idle) CPU time in the profile, ms. */
  busyMs: number;
  functions: { name: string; where: string; share: number }[];
  areas: { area: string; share: number }[];
}

/** node_modules/<pkg>, node:<internal>, src/<folder> (dist/ mapped back), or the V8 pseudo-frame. */
function areaOf(url: string, name: string): string {
  if (url === '') return name.startsWith('(') ? name : '(native)';
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (pkg) return pkg[1]!;
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/').slice(0, 2).join('/')}`;
  const own = /\/(?:dist|src)\/(.+)$/.exec(url);
  if (own) return `remediator ${own[1]!.includes('/') ? own[1]!.split('/')[0] : own[1]!.replace(/\.js$/, '')}`;
  return url.replace(/^.*\//, '');
}

function shortUrl(url: string): string {
  return url
    .replace(/^file:\/\//, '')
    .replace(/^.*node_modules\//, '')
    .replace(/^.*\/(dist|src)\//, '$1/');
}

/**
 * `fromUs`: leave out samples before this moment (µs on the monotonic clock, which V8's profile timestamps and
 * process.hrtime share on Linux), e.g. start-up and module loading before the process was ready.
 */
export function summariseProfile(file: string, fromUs = 0, top = 15): ProfileSummary {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  let t = profile.startTime;
  profile.samples.forEach((id, i) => {
    const delta = profile.timeDeltas[i] ?? 0;
    t += delta;
    if (t >= fromUs) self.set(id, (self.get(id) ?? 0) + delta);
  });
  const fn = new Map<string, { name: string; where: string; us: number }>();
  const area = new Map<string, number>();
  let busy = 0;
  for (const [id, us] of self) {
    const { functionName, url, lineNumber } = byId.get(id)!.callFrame;
    if (functionName === '(idle)') continue;
    busy += us;
    const name = functionName || '(anonymous)';
    const where = url ? `${shortUrl(url)}:${lineNumber + 1}` : '';
    const key = `${name}\u0000${where}`;
    const entry = fn.get(key) ?? { name, where, us: 0 };
    entry.us += us;
    fn.set(key, entry);
    const a = areaOf(url, name);
    area.set(a, (area.get(a) ?? 0) + us);
  }
  const share = (us: number) => us / Math.max(1, busy);
  return {
    busyMs: busy / 1000,
    functions: [...fn.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, top)
      .map((f) => ({ name: f.name, where: f.where, share: share(f.us) })),
    areas: [...area.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([a, us]) => ({ area: a, share: share(us) })),
  };
}

/** The profiles node wrote into `dir` (one per process that exited cleanly). */
export function profilesIn(dir: string): string[] {
  try {
    return readdirSync(dir)
      .filter((f) => f.endsWith('.cpuprofile'))
      .map((f) => join(dir, f));
  } catch {
    return [];
  }
}

/** Markdown: the areas and the top functions of one profile. */
export function profileMarkdown(title: string, s: ProfileSummary): string {
  const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
  let out = `#### ${title} (${(s.busyMs / 1000).toFixed(1)} s of CPU)\n\n| area | self time |\n|---|---|\n`;
  for (const a of s.areas.slice(0, 10)) out += `| ${a.area} | ${pct(a.share)} |\n`;
  out += '\n| function | where | self time |\n|---|---|---|\n';
  for (const f of s.functions) out += `| \`${f.name}\` | ${f.where} | ${pct(f.share)} |\n`;
  return `${out}\n`;
}
