import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../../src/config.js';
import { connectRedis } from '../../../src/queue/connection.js';
import { freePort } from '../../helpers/ports.js';
import { runCommand, spawnProcess, type ManagedProcess } from '../../helpers/processes.js';
import { waitFor } from '../../helpers/wait.js';
import { REDIS_SERVER, requireRedisBinaries } from '../../helpers/redis-servers.js';
import { startSink, type Sink } from '../../helpers/sink.js';
import { Api, baseEnv, Cleanup, httpProcedure, startAll, writeRules } from '../guarantees/common.js';
import { webhookPayload } from '../../helpers/payload.js';

async function openssl(dir: string, ...args: string[]): Promise<void> {
  const r = await runCommand('/usr/bin/openssl', args, { cwd: dir });
  if (r.code !== 0) throw new Error(`openssl ${args.join(' ')}: ${r.stderr} (apt-get install -y openssl)`);
}

/**
 * TLS to Redis: Debian's redis-server with a TLS port only, a certificate from a CA of the test's own, and a
 * password. remediator connects with rediss://, trusts the CA from REDIS_CA_FILE and reads the password from
 * REDIS_PASSWORD_FILE; without the CA it refuses the server (verification is on).
 */
describe('Redis over TLS: rediss://, REDIS_CA_FILE and REDIS_PASSWORD_FILE', () => {
  const cleanup = new Cleanup();
  let dir: string;
  let port: number;
  let server: ManagedProcess;
  let sink: Sink;

  beforeAll(async () => {
    requireRedisBinaries();
    dir = mkdtempSync(join(tmpdir(), 'redis-tls-'));
    cleanup.add(() => rmSync(dir, { recursive: true, force: true }));
    await openssl(
      dir,
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.pem',
      '-days',
      '1',
      '-subj',
      '/CN=remediator-test-ca',
    );
    await openssl(
      dir,
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      'server.key',
      '-out',
      'server.csr',
      '-subj',
      '/CN=localhost',
    );
    writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n');
    await openssl(
      dir,
      'x509',
      '-req',
      '-in',
      'server.csr',
      '-CA',
      'ca.pem',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      'server.pem',
      '-days',
      '1',
      '-extfile',
      'san.ext',
    );
    writeFileSync(join(dir, 'password'), 'tls-redis-password\n');
    port = await freePort();
    server = spawnProcess('redis-tls', REDIS_SERVER, [
      '--port',
      '0',
      '--tls-port',
      String(port),
      '--bind',
      '127.0.0.1',
      '--tls-cert-file',
      join(dir, 'server.pem'),
      '--tls-key-file',
      join(dir, 'server.key'),
      '--tls-ca-cert-file',
      join(dir, 'ca.pem'),
      '--tls-auth-clients',
      'no',
      '--requirepass',
      'tls-redis-password',
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
    ]);
    cleanup.add(() => server.stop({ signal: 'SIGKILL' }));
    await waitFor('redis-server with TLS', () => (/Ready to accept connections/.test(server.logTail(50)) ? true : undefined), {
      processes: [server],
      timeoutMs: 10_000,
    });
    sink = await startSink();
    cleanup.add(() => sink.close());
  });

  afterAll(() => cleanup.run());

  it('a remediator process reaches it, accepts a webhook and runs the procedure', async () => {
    const rulesDir = writeRules(cleanup, {
      't.yaml': httpProcedure({ id: 'TLS-1', alertname: 'TlsDown', sinkUrl: sink.url, expect: false }),
    });
    const prefix = `tls-${Date.now().toString(36)}`;
    const env = baseEnv(
      { prefix, rulesDir, prometheusUrl: 'http://127.0.0.1:9', redis: { REDIS_URL: `rediss://127.0.0.1:${port}` } },
      { REDIS_CA_FILE: join(dir, 'ca.pem'), REDIS_PASSWORD_FILE: join(dir, 'password') },
    );
    const [serve] = await startAll(cleanup, [{ env, command: 'serve', name: 'tls-serve' }]);
    const api = new Api(serve!.url);
    const runId = (await api.webhook(webhookPayload({ alertname: 'TlsDown', instance: 'tls-1' }))).alerts[0]!.runId!;
    expect((await api.waitFinal(runId)).state).toBe('succeeded');
    expect(sink.hitsTo('/act/tls-1/')).toHaveLength(1);
  });

  it('without REDIS_CA_FILE the server certificate is not trusted: no connection', async () => {
    const settings = loadConfig({ REDIS_URL: `rediss://127.0.0.1:${port}`, REDIS_PASSWORD: 'tls-redis-password' }).redis;
    const client = connectRedis(settings, 'tool');
    const error = new Promise<Error>((resolve) => client.once('error', resolve));
    try {
      expect((await error).message).toMatch(/self[- ]signed|unable to verify|certificate/i);
    } finally {
      client.disconnect();
    }
  });
});
