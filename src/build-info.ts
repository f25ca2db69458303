import { readFileSync } from 'node:fs';

export interface BuildInfo {
  version: string;
  /** The source revision: REMEDIATOR_REVISION (set by the image build), else "unknown". */
  revision: string;
  nodejs: string;
}

let cached: BuildInfo | undefined;

/** The package version (package.json beside dist/ and src/), the revision and the Node.js version. */
export function buildInfo(): BuildInfo {
  if (cached) return cached;
  let version = '0.0.0';
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string };
    version = pkg.version ?? version;
  } catch {
    /* a copied dist/ without package.json: the version is unknown, not fatal */
  }
  cached = { version, revision: process.env.REMEDIATOR_REVISION || 'unknown', nodejs: process.version };
  return cached;
}
