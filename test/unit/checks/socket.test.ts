import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { socket, SocketCheckSpec } from '../../../src/checks/socket.js';
import { CheckSpec } from '../../../src/rules/schema.js';
import { checkContext, describeCheckContract } from './contract.js';

describeCheckContract(socket, { valid: { socket: '{{ vars.relay_registration_path }}' } });

const dir = mkdtempSync(join(tmpdir(), 'socket-check-'));
const live = join(dir, 'registration.sock');
let server: Server;
let accepted = 0;
beforeAll(async () => {
  server = createServer((c) => {
    accepted++;
    c.destroy();
  });
  await new Promise<void>((r) => server.listen(live, () => r()));
});
afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  rmSync(dir, { recursive: true, force: true });
});

const evaluate = (spec: Record<string, unknown>) =>
  socket.evaluate(SocketCheckSpec.parse(spec), checkContext(AbortSignal.timeout(10_000)));

describe('checks/socket', () => {
  it('holds for a socket file, and never connects to it (the relay registration trap)', async () => {
    const r = await evaluate({ socket: live });
    expect(r).toMatchObject({ holds: true, observed: [{ labels: { path: live, kind: 'socket' }, value: 1 }] });
    expect(accepted).toBe(0);
  });

  it('does not hold for nothing, a regular file or a directory; present: false inverts it', async () => {
    const file = join(dir, 'file');
    writeFileSync(file, 'x');
    mkdirSync(join(dir, 'folder'));
    for (const [path, kind] of [
      [join(dir, 'absent.sock'), 'absent'],
      [file, 'file'],
      [join(dir, 'folder'), 'directory'],
    ] as const) {
      const r = await evaluate({ socket: path });
      expect(r.holds, path).toBe(false);
      expect(r.observed[0]!.labels.kind).toBe(kind);
      expect(r.reason).toMatch(/expected a socket$/);
      expect((await evaluate({ socket: path, present: false })).holds).toBe(true);
    }
    expect((await evaluate({ socket: live, present: false })).holds).toBe(false);
  });

  it('is chosen by its key in a rule, with timing; an alert label can never choose the path', () => {
    const parsed = CheckSpec.parse({ socket: '{{ vars.relay_registration_path }}', within: '30s' });
    expect(parsed.kind).toBe('socket');
    expect(parsed.timing).toMatchObject({ withinMs: 30_000 });
    expect(SocketCheckSpec.safeParse({ socket: '/run/{{ labels.instance }}.sock' }).success).toBe(false);
  });
});
