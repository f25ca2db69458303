import { open } from 'node:fs/promises';
import { z } from 'zod';
import { isOperatorTemplate } from '../template.js';
import { OUTPUT_LIMIT, type Action, type ActionResult } from './types.js';

/** The most a tail reads from the end of the file: enough for a panic message and its context, never the file. */
const READ_LIMIT = 64 * 1024;

export const TailFileSpec = z.strictObject({
  /** A log file the operator names (`{{ vars.log_file }}`): operator values only, never an alert's. */
  path: z
    .string()
    .min(1)
    .refine(isOperatorTemplate, 'the file comes from vars or env only (operator values), never from an alert'),
  /** How many of the last lines (default 50, as `journalctl -n 50` or `tail -n 50`). */
  lines: z.number().int().min(1).max(1000).default(50),
});
export type TailFileSpec = z.infer<typeof TailFileSpec>;

/**
 * The last lines of a log file, read in-process: no `tail` to start, none needed in a slim image, and a bounded
 * read (the last 64 KiB at most) however large the log. For hosts whose supervisor writes its stderr to a file
 * rather than the journal (a panic's `panicked at` line is what P1-001's log step looks for).
 *
 * A missing file is a result (`failed`, the log is not there), not an error; a path that is not a regular file
 * throws, as a mistake in the rule. Rule form: `action: { tailFile: { path: "{{ vars.log_file }}", lines: 50 } }`.
 */
export const tailFile: Action<TailFileSpec> = {
  kind: 'tailFile',
  spec: TailFileSpec,
  describe: (s) => `last ${s.lines} lines of ${s.path}`,
  render: (s, r) => ({ ...s, path: r(s.path, 'path') }),
  async run(s, ctx): Promise<ActionResult> {
    ctx.signal.throwIfAborted();
    let file;
    try {
      file = await open(s.path, 'r');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT')
        return { status: 'failed', output: `no file at ${s.path}`, detail: { path: s.path, state: 'absent' } };
      throw err;
    }
    try {
      const stat = await file.stat();
      if (!stat.isFile()) throw new Error(`${s.path} is not a regular file`);
      const size = stat.size;
      const length = Math.min(size, READ_LIMIT);
      const buffer = Buffer.alloc(length);
      await file.read(buffer, 0, length, size - length);
      ctx.signal.throwIfAborted();
      // A read that starts mid-file starts mid-line: drop the partial first line.
      let text = buffer.toString('utf8');
      if (length < size) text = text.slice(text.indexOf('\n') + 1);
      const all = text.replace(/\n$/, '').split('\n');
      const kept = all.slice(-s.lines);
      return {
        status: 'succeeded',
        output: keepEnd(kept.join('\n')),
        detail: { path: s.path, lines: kept.length, bytes: size },
      };
    } finally {
      await file.close();
    }
  },
};

/** A tail keeps the END within OUTPUT_LIMIT (the last line is the one that matters), cut at a line where it can. */
function keepEnd(text: string): string {
  if (text.length <= OUTPUT_LIMIT) return text;
  let end = text.slice(text.length - OUTPUT_LIMIT);
  const newline = end.indexOf('\n');
  if (newline >= 0 && newline < end.length - 1) end = end.slice(newline + 1);
  return `…[truncated ${text.length - end.length} characters]\n${end}`;
}
