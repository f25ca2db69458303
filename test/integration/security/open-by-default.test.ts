/**
 * Issue 9, class "open by default", on the real service (`node dist/cli.js serve`, real Redis):
 * - without a token, serve and receiver refuse to start (exit 2 naming WEBHOOK_TOKEN); a worker starts, and its
 *   /-/reload answers 401;
 * - ALLOW_UNAUTHENTICATED=true starts without one, bound to 127.0.0.1 whatever HOST says, warning on every start;
 * - the token is trimmed (a Secret made from a file ends in a newline), also from WEBHOOK_TOKEN_FILE;
 * - a body that is not application/json (text/plain and forms: what any web page can send) is a 415 and enqueues
 *   nothing; /metrics and the probes stay open, /api needs the token.
 * Before: serve bound 0.0.0.0 and ran runbooks for any request, also text/plain; "tok\n" started and refused
 * every delivery.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../helpers/ports.js';
import { spawnProcess } from '../../helpers/processes.js';
import { cleanupPrefix, REDIS_URL, requireRedis, testPrefix } from '../../helpers/redis.js';
import { REPO_ROOT, startRemediator } from '../../helpers/remediator.js';
import { Cleanup, writeRules } from '../guarantees/common.js';
import { webhookPayload } from '../../helpers/payload.js';

const TOKEN = 'open-by-default-token-0123456789';
const CLI = join(REPO_ROOT, 'dist/cli.js');

/** The local address of the socket listening on `port` (from /proc/net/tcp and tcp6), e.g. 127.0.0.1 or 0.0.0.0. */
function listeningAddresses(port: number): string[] {
  const found: string[] = [];
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of readFileSync(file, 'utf8').split('\n').slice(1)) {
      const [, local, , state] = line.trim().split(/\s+/);
      if (state !== '0A' || local === undefined) continue; // 0A: LISTEN
      const [hex, portHex] = local.split(':') as [string, string];
      if (parseInt(portHex, 16) !== port) continue;
      if (hex.length === 8) found.push(Buffer.from(hex, 'hex').reverse().join('.'));
      else found.push(hex === '0'.repeat(32) ? '::' : hex === '00000000000000000000000001000000' ? '::1' : hex);
    }
  }
  return found;
}

describe('integration/security: secure by default (real service, real Redis)', () => {
  const cleanup = new Cleanup();
  const prefix = testPrefix('open-default');
  let rulesDir: string;
  let marker: string;

  beforeAll(async () => {
    await requireRedis();
    const dir = cleanup.tempDir('open-default');
    marker = join(dir, 'ran.txt');
    rulesDir = writeRules(cleanup, {
      'open-001.yaml': `id: OPEN-001
title: marks that it ran
match: ['alertname="OpenProbe"']
target: "{{ labels.instance }}"
steps:
  - name: mark
    action: { exec: { command: [${JSON.stringify(process.execPath)}, "-e", "require('fs').appendFileSync(process.argv[1], 'ran\\\\n')", ${JSON.stringify(marker)}] } }
`,
    });
    cleanup.add(() => cleanupPrefix(prefix));
  });
  afterAll(() => cleanup.run());

  const env = (extra: Record<string, string | undefined>) => ({
    REDIS_URL,
    QUEUE_PREFIX: prefix,
    RULES_DIR: rulesDir,
    PROMETHEUS_URL: 'http://127.0.0.1:9',
    ...extra,
  });

  /** Runs `node dist/cli.js <command>` with this environment (no inherited WEBHOOK_TOKEN) until it exits. */
  async function runToExit(command: string, extra: Record<string, string | undefined>) {
    const proc = spawnProcess(`cli-${command}`, process.execPath, [CLI, command], {
      cwd: REPO_ROOT,
      env: { WEBHOOK_TOKEN: undefined, WEBHOOK_TOKEN_FILE: undefined, ...env(extra), PORT: String(await freePort()) },
    });
    cleanup.add(() => proc.stop({ signal: 'SIGKILL' }));
    const exit = await Promise.race([proc.exited, new Promise<'running'>((r) => setTimeout(() => r('running'), 15_000).unref())]);
    return { exit, log: readFileSync(proc.logFile, 'utf8') };
  }

  it.each(['serve', 'receiver'])('%s refuses to start without a token (exit 2 naming WEBHOOK_TOKEN)', async (command) => {
    const { exit, log } = await runToExit(command, { HOST: '127.0.0.1' });
    expect(exit, log).toEqual({ code: 2, signal: null });
    expect(log).toMatch(/WEBHOOK_TOKEN: required to serve \/webhook and \/api/);
    expect(log).toContain('ALLOW_UNAUTHENTICATED=true');
  });

  it.each([
    ['a short token', 'short-token'],
    ['a token of spaces', '                    '],
    ['a token with a space inside', 'a token with spaces inside it'],
  ])('refuses %s, naming the variable and never the value', async (_what, token) => {
    const { exit, log } = await runToExit('serve', { WEBHOOK_TOKEN: token });
    expect(exit).toEqual({ code: 2, signal: null });
    expect(log).toMatch(/WEBHOOK_TOKEN: the token/);
    if (token.trim().length > 0) expect(log).not.toContain(token.trim());
  });

  it('a worker starts without a token; its /-/reload then refuses everyone', async () => {
    const p = await startRemediator(env({ WEBHOOK_TOKEN: undefined }), 'worker', 'worker-no-token');
    cleanup.add(() => p.stop());
    const ready = await (async () => {
      for (let i = 0; i < 200; i++) {
        const res = await fetch(`${p.url}/readyz`).catch(() => undefined);
        if (res?.status === 200) return true;
        await new Promise((r) => setTimeout(r, 100));
      }
      return false;
    })();
    expect(ready, p.process.logTail()).toBe(true);
    expect((await fetch(`${p.url}/-/reload`, { method: 'POST' })).status).toBe(401);
    expect((await fetch(`${p.url}/-/reload`, { method: 'POST', headers: { authorization: 'Bearer x' } })).status).toBe(401);
    expect((await fetch(`${p.url}/metrics`)).status).toBe(200);
  });

  it('ALLOW_UNAUTHENTICATED=true binds 127.0.0.1 (even with HOST=0.0.0.0) and warns on every start', async () => {
    for (let start = 1; start <= 2; start++) {
      const p = await startRemediator(
        env({ ALLOW_UNAUTHENTICATED: 'true', HOST: '0.0.0.0', WEBHOOK_TOKEN: undefined }),
        'serve',
        `unauth-${start}`,
      );
      try {
        expect(listeningAddresses(p.port)).toEqual(['127.0.0.1']);
        const log = readFileSync(p.process.logFile, 'utf8');
        expect(log).toMatch(
          /ALLOW_UNAUTHENTICATED=true: no token is required .* bound to 127\.0\.0\.1 only \(HOST=0\.0\.0\.0 ignored\)/,
        );
        expect((await fetch(`${p.url}/api/pause`)).status).toBe(200);
      } finally {
        await p.stop();
      }
    }
  });

  it('a token with a trailing newline (a Secret made from a file) is trimmed: deliveries with the token pass', async () => {
    const p = await startRemediator(env({ WEBHOOK_TOKEN: `${TOKEN}\n` }), 'serve', 'token-newline');
    cleanup.add(() => p.stop());
    const res = await fetch(`${p.url}/api/remediations`, { headers: { authorization: `Bearer ${TOKEN}` } });
    expect(res.status).toBe(200);
  });

  it('WEBHOOK_TOKEN_FILE: read and trimmed; a missing file stops start-up naming the variable', async () => {
    const file = join(cleanup.tempDir('token-file'), 'token');
    writeFileSync(file, `${TOKEN}\r\n`);
    const p = await startRemediator(env({ WEBHOOK_TOKEN: undefined, WEBHOOK_TOKEN_FILE: file }), 'serve', 'token-file');
    cleanup.add(() => p.stop());
    expect((await fetch(`${p.url}/api/remediations`, { headers: { authorization: `Bearer ${TOKEN}` } })).status).toBe(200);
    expect((await fetch(`${p.url}/api/remediations`)).status).toBe(401);
    const { exit, log } = await runToExit('serve', { WEBHOOK_TOKEN_FILE: `${file}.missing` });
    expect(exit).toEqual({ code: 2, signal: null });
    expect(log).toMatch(/WEBHOOK_TOKEN_FILE: cannot read .*\.missing \(ENOENT\)/);
  });

  it('with the token: non-JSON bodies are 415 and enqueue nothing; probes and /metrics open; /api needs the token', async () => {
    const p = await startRemediator(env({ WEBHOOK_TOKEN: TOKEN }), 'serve', 'content-type');
    cleanup.add(() => p.stop());
    const body = JSON.stringify(webhookPayload({ alertname: 'OpenProbe', instance: 'host-1' }));
    const auth = { authorization: `Bearer ${TOKEN}` };
    for (const type of [
      'text/plain',
      'text/plain;charset=UTF-8',
      'application/x-www-form-urlencoded',
      'multipart/form-data; boundary=x',
      undefined,
    ]) {
      const res = await fetch(`${p.url}/webhook`, {
        method: 'POST',
        headers: { ...auth, ...(type ? { 'content-type': type } : {}) },
        body: type === undefined ? new Blob([body]) : body,
      });
      expect(res.status, `content-type ${type}`).toBe(415);
      expect(((await res.json()) as { field: string }).field).toBe('content-type');
    }
    // Without the token, the same JSON is a 401; the kill switch cannot be lifted.
    expect(
      (await fetch(`${p.url}/webhook`, { method: 'POST', headers: { 'content-type': 'application/json' }, body })).status,
    ).toBe(401);
    expect((await fetch(`${p.url}/api/resume`, { method: 'POST' })).status).toBe(401);
    expect((await fetch(`${p.url}/api/remediations`)).status).toBe(401);
    for (const open of ['/metrics', '/healthz', '/readyz', '/-/healthy', '/-/ready'])
      expect((await fetch(`${p.url}${open}`)).status, open).toBe(200);
    const runs = (await (await fetch(`${p.url}/api/remediations`, { headers: auth })).json()) as { runs: unknown[] };
    expect(runs.runs).toEqual([]);
    // And the same payload as application/json is taken.
    const ok = await fetch(`${p.url}/webhook`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body,
    });
    expect(ok.status).toBe(202);
  });
});
