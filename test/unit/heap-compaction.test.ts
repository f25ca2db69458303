/**
 * compactStartupHeap (heap-compaction.ts): start-up's garbage leaves old-space pages that a plain full GC empties but
 * keeps; one compacting GC releases them. Each case runs a real Node process (a fresh heap) on a fixture that
 * fragments old space as start-up does, and reads V8's own heap statistics.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';

const run = promisify(execFile);
const REPO = fileURLToPath(new URL('../../', import.meta.url));
const FIXTURE = fileURLToPath(new URL('../fixtures/heap/fragmented-heap.ts', import.meta.url));

interface Outcome {
  ms?: number;
  before: number;
  after: number;
  live: number;
  kept: number;
  gc: string;
}

async function fragmented(mode: 'plain' | 'compact', flags: string[] = []): Promise<Outcome> {
  const { stdout } = await run(process.execPath, [...flags, '--max-semi-space-size=2', '--import', 'tsx', FIXTURE, mode], {
    cwd: REPO,
    env: { ...process.env, NODE_OPTIONS: '' },
  });
  return JSON.parse(stdout.trim().split('\n').pop()!) as Outcome;
}

describe('unit: start-up heap compaction (real Node processes)', () => {
  it('a plain full GC keeps the pages of a fragmented old space: the case compaction is for', async () => {
    const plain = await fragmented('plain', ['--expose-gc']);
    expect(plain.kept).toBe(8000);
    // Live data is a small part of what old space still holds.
    expect(plain.after).toBeGreaterThan(4 * plain.live);
  });

  it('compactStartupHeap releases them, and leaves no gc function behind where there was none', async () => {
    const compacted = await fragmented('compact');
    expect(compacted.ms).toBeGreaterThan(0);
    expect(compacted.after).toBeLessThan(2 * compacted.live);
    expect(compacted.after).toBeLessThan(compacted.before / 4);
    expect(compacted.gc).toBe('undefined');
  });

  it('uses the gc function a process was given (--expose-gc) and leaves it there', async () => {
    const compacted = await fragmented('compact', ['--expose-gc']);
    expect(compacted.after).toBeLessThan(2 * compacted.live);
    expect(compacted.gc).toBe('function');
  });
});
