/**
 * "The supervisor's protocol has one home" and "never connect to the relay's registration socket": a static
 * guard. Only the dashboard-ipc.v1 client opens Unix or TCP sockets by hand; no other file in src/ imports
 * node:net (or its aliases) or passes a socketPath to an HTTP client. The exporter's behaviour against a real
 * registration socket (nothing connects while it scrapes) is tested in test/unit/exporter and
 * test/integration/exporter.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const src = new URL('../../../src/', import.meta.url);
const files = readdirSync(src, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts'));
const SOCKET_APIS =
  /from ['"](node:)?(net|dgram|tls)['"]|require\(['"](node:)?(net|tls)['"]\)|\bsocketPath\b|\bcreateConnection\b/;

describe('src: one socket client', () => {
  it('only src/supervisor/ipc-client.ts opens sockets by hand', () => {
    expect(files.length).toBeGreaterThan(20);
    const openers = files.filter((f) => SOCKET_APIS.test(readFileSync(new URL(f, src), 'utf8')));
    expect(openers).toEqual(['supervisor/ipc-client.ts']);
  });

  it('the exporter reads the relay registration path with stat only', () => {
    const exporter = files.filter((f) => f.startsWith('exporter/')).map((f) => readFileSync(new URL(f, src), 'utf8'));
    const text = exporter.join('\n');
    expect(text).toMatch(/relayRegistrationPath/);
    // The registration path only ever reaches isSocket (a stat), never the IPC client.
    expect(text).not.toMatch(/createIpcClient\(\{[^}]*relayRegistration/);
  });
});
