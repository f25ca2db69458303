import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { loggerOptions, plainLogger } from '../../src/log.js';

/** A logger as createLogger makes it, writing into an array instead of stdout, with a fixed clock. */
function capture(level = 'info') {
  const lines: string[] = [];
  const log = pino(
    { ...loggerOptions(level), timestamp: () => ',"time":"2026-11-29T00:00:00.000Z"' },
    { write: (line: string) => void lines.push(line) },
  );
  return { log, lines };
}

describe('plainLogger', () => {
  it("writes the 'webhook handled' line exactly as the redacting logger does", () => {
    const { log, lines } = capture();
    const groupKeys = [undefined, '{}:{alertname="A"}', 'quote " back \\ slash', 'ctl \u0001 \n', 'x'.repeat(300), 'é ü 漢 😀'];
    for (const groupKey of groupKeys) {
      const fields = { groupKey, enqueued: 1, duplicate: 0, ignored: 2, resolved: 0, refused: 3 };
      log.info(fields, 'webhook handled');
      plainLogger(log).info(fields, 'webhook handled');
    }
    expect(lines).toHaveLength(2 * groupKeys.length);
    for (let i = 0; i < lines.length; i += 2) expect(lines[i + 1]).toBe(lines[i]);
    expect(JSON.parse(lines[2]!)).toMatchObject({ service: 'remediator', groupKey: '{}:{alertname="A"}', refused: 3 });
  });

  it('leaves the logger it is made from redacting, and follows its level', () => {
    const { log, lines } = capture();
    plainLogger(log).info('first');
    log.info({ token: 'secret', nested: { authorization: 'Bearer secret' } }, 'with credentials');
    expect(lines.join('')).not.toContain('secret');
    log.level = 'warn';
    plainLogger(log).info('dropped at warn');
    plainLogger(log).warn('kept');
    expect(lines.map((l) => JSON.parse(l).msg as string)).toEqual(['first', 'with credentials', 'kept']);
    expect(plainLogger(log)).toBe(plainLogger(log));
  });
});
