import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { tailFile, TailFileSpec } from '../../../src/actions/tail-file.js';
import { OUTPUT_LIMIT } from '../../../src/actions/types.js';
import { createRender } from '../../../src/template.js';
import { actionContext, describeActionContract } from './contract.js';

const dir = mkdtempSync(join(tmpdir(), 'tail-file-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describeActionContract(tailFile, {
  valid: { path: '{{ vars.log_file }}', lines: 20 },
  bigOutput: () => {
    const path = join(dir, 'wide.log');
    writeFileSync(path, `${'x'.repeat(OUTPUT_LIMIT * 2)}\n`);
    return { path, lines: 1 };
  },
});

describe('actions/tailFile', () => {
  it('returns the last lines of the file, as `tail -n` does', async () => {
    const path = join(dir, 'app.log');
    const lines = Array.from({ length: 200 }, (_, i) => `line ${i}`);
    writeFileSync(path, `${lines.join('\n')}\nthread 'main' panicked at src/main.rs:42:9:\nboom\n`);
    const r = await tailFile.run({ path, lines: 3 }, actionContext());
    expect(r).toMatchObject({ status: 'succeeded', detail: { path, lines: 3 } });
    expect(r.output).toBe("line 199\nthread 'main' panicked at src/main.rs:42:9:\nboom");
  });

  it('reads at most the last 64 KiB of a large log; the output keeps the end, cut at a whole line', async () => {
    const path = join(dir, 'big.log');
    const lines = Array.from({ length: 20_000 }, (_, i) => `entry ${String(i).padStart(5, '0')} ${'.'.repeat(88)}`);
    writeFileSync(path, `${lines.join('\n')}\n`);
    const r = await tailFile.run({ path, lines: 1000 }, actionContext());
    expect(r.status).toBe('succeeded');
    // 64 KiB of 100-byte lines is ~655 lines: the read, not the file, bounds what is looked at.
    expect(r.detail?.lines).toBeLessThan(700);
    expect(r.output!.length).toBeLessThanOrEqual(OUTPUT_LIMIT + 200);
    const got = r.output!.split('\n');
    expect(got[0]).toMatch(/^…\[truncated \d+ characters\]$/);
    expect(got[1]).toMatch(/^entry \d{5} \.{88}$/);
    expect(got.at(-1)).toBe(lines.at(-1));
  });

  it('a missing log is a failed result that says so; a directory is a mistake in the rule', async () => {
    const absent = await tailFile.run({ path: join(dir, 'absent.log'), lines: 5 }, actionContext());
    expect(absent).toMatchObject({ status: 'failed', detail: { state: 'absent' } });
    mkdirSync(join(dir, 'folder'));
    await expect(tailFile.run({ path: join(dir, 'folder'), lines: 5 }, actionContext())).rejects.toThrow(/not a regular file/);
  });

  it('takes its path from operator values only: an alert label can never choose the file', () => {
    expect(TailFileSpec.safeParse({ path: '/var/log/{{ labels.instance }}.log' }).success).toBe(false);
    expect(TailFileSpec.parse({ path: '{{ vars.log_file }}' })).toEqual({ path: '{{ vars.log_file }}', lines: 50 });
    const render = createRender({ labels: {}, annotations: {}, vars: { log_file: '/var/log/app.log' }, env: {} });
    expect(tailFile.render({ path: '{{ vars.log_file }}', lines: 5 }, render).path).toBe('/var/log/app.log');
  });
});
