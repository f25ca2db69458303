import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config.js';
import { describeRedis } from '../../src/redis-settings.js';

const dir = mkdtempSync(join(tmpdir(), 'redis-settings-'));
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};
const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';

/** The message loadConfig throws for `env`, or '' when it accepts it. */
function problems(env: Record<string, string>): string {
  try {
    loadConfig(env);
    return '';
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    return err.message;
  }
}

describe('redis-settings (through loadConfig)', () => {
  it('defaults to one Redis on 127.0.0.1:6379, no TLS, no WAIT', () => {
    expect(loadConfig({}).redis).toEqual({
      topology: { kind: 'single', url: 'redis://127.0.0.1:6379' },
      waitReplicas: 0,
      waitTimeoutMs: 500,
    });
  });

  it('Sentinel: sentinels (port 26379 by default, IPv6 in brackets), the primary name, both passwords', () => {
    const c = loadConfig({
      REDIS_SENTINELS: 'redis-node-0.redis-headless:26379, redis-node-1.redis-headless,[::1]:26380',
      REDIS_SENTINEL_NAME: 'mymaster',
      REDIS_PASSWORD: 'data-secret',
      REDIS_SENTINEL_PASSWORD: 'sentinel-secret',
      REDIS_WAIT_REPLICAS: '1',
      REDIS_WAIT_TIMEOUT: '250ms',
    });
    expect(c.redis).toEqual({
      topology: {
        kind: 'sentinel',
        name: 'mymaster',
        sentinels: [
          { host: 'redis-node-0.redis-headless', port: 26379 },
          { host: 'redis-node-1.redis-headless', port: 26379 },
          { host: '::1', port: 26380 },
        ],
      },
      password: 'data-secret',
      sentinelPassword: 'sentinel-secret',
      waitReplicas: 1,
      waitTimeoutMs: 250,
    });
    expect(describeRedis(c.redis)).toBe(
      'sentinel mymaster via redis-node-0.redis-headless:26379,redis-node-1.redis-headless:26379,[::1]:26380; wait for 1 replica(s) ≤ 250 ms',
    );
  });

  it('Cluster with TLS and a CA file; passwords from *_FILE (trailing newline dropped)', () => {
    const c = loadConfig({
      REDIS_CLUSTER_NODES: '10.0.0.1:7000,10.0.0.2',
      REDIS_TLS: 'true',
      REDIS_CA_FILE: file('ca.pem', PEM),
      REDIS_USERNAME: 'remediator',
      REDIS_PASSWORD_FILE: file('password', 's3cret\n'),
    });
    expect(c.redis).toMatchObject({
      topology: {
        kind: 'cluster',
        nodes: [
          { host: '10.0.0.1', port: 7000 },
          { host: '10.0.0.2', port: 6379 },
        ],
      },
      username: 'remediator',
      password: 's3cret',
      tls: { ca: PEM },
    });
    expect(describeRedis(c.redis)).not.toContain('s3cret');
  });

  it('rediss:// turns TLS on for REDIS_URL; the log line hides the URL password', () => {
    const c = loadConfig({ REDIS_URL: 'rediss://:pw@redis.example:6380/2', REDIS_CA_FILE: file('ca2.pem', PEM) });
    expect(c.redis.tls).toEqual({ ca: PEM });
    expect(describeRedis(c.redis)).toBe('rediss://:***@redis.example:6380/2; tls (own CA)');
  });

  it.each([
    [{ REDIS_SENTINELS: 'a:26379' }, 'REDIS_SENTINEL_NAME: required with REDIS_SENTINELS'],
    [{ REDIS_SENTINEL_NAME: 'mymaster' }, 'REDIS_SENTINEL_NAME: only used with REDIS_SENTINELS'],
    [{ REDIS_SENTINEL_PASSWORD: 'x' }, 'REDIS_SENTINEL_PASSWORD: only used with REDIS_SENTINELS'],
    [{ REDIS_SENTINELS: 'a', REDIS_SENTINEL_NAME: 'm', REDIS_CLUSTER_NODES: 'b' }, 'REDIS_CLUSTER_NODES: set only one of'],
    [{ REDIS_URL: 'redis://r:6379', REDIS_CLUSTER_NODES: 'b' }, 'REDIS_URL: set only one of'],
    [{ REDIS_CLUSTER_NODES: 'a:7000,b:http' }, 'REDIS_CLUSTER_NODES: entry 2 "b:http": expected host:port'],
    [{ REDIS_CLUSTER_NODES: ' , ' }, 'REDIS_CLUSTER_NODES: expected host:port'],
    [{ REDIS_SENTINELS: 'a:99999', REDIS_SENTINEL_NAME: 'm' }, 'REDIS_SENTINELS: entry 1 "a:99999"'],
    [{ REDIS_URL: 'http://redis:6379' }, 'REDIS_URL: expected redis://'],
    [{ REDIS_URL: 'redis://:a@r:6379', REDIS_PASSWORD: 'b' }, 'REDIS_PASSWORD: REDIS_URL carries a password already'],
    [{ REDIS_PASSWORD: 'a', REDIS_PASSWORD_FILE: '/x' }, 'REDIS_PASSWORD_FILE: set either REDIS_PASSWORD or REDIS_PASSWORD_FILE'],
    [
      { REDIS_PASSWORD_FILE: '/nonexistent/redis-password' },
      'REDIS_PASSWORD_FILE: cannot read /nonexistent/redis-password: ENOENT',
    ],
    [{ REDIS_CA_FILE: '/nonexistent/ca.pem', REDIS_TLS: 'yes' }, 'REDIS_CA_FILE: cannot read /nonexistent/ca.pem: ENOENT'],
    [{ REDIS_CA_FILE: file('ca3.pem', PEM) }, 'REDIS_CA_FILE: set, but TLS is off'],
    [{ REDIS_TLS: 'maybe' }, 'REDIS_TLS: '],
    [{ REDIS_WAIT_REPLICAS: '-1' }, 'REDIS_WAIT_REPLICAS: '],
    [{ REDIS_WAIT_TIMEOUT: '1 second' }, 'REDIS_WAIT_TIMEOUT: expected a duration'],
  ])('%j is refused: %s', (env, message) => {
    expect(problems(env)).toContain(message);
  });

  it('an empty password file and a CA file without a certificate are refused, naming the variable', () => {
    expect(problems({ REDIS_PASSWORD_FILE: file('empty', '\n') })).toContain('REDIS_PASSWORD_FILE: ');
    expect(problems({ REDIS_TLS: 'true', REDIS_CA_FILE: file('not-pem', 'hello') })).toContain(
      'REDIS_CA_FILE: ' + join(dir, 'not-pem') + ' holds no PEM certificate',
    );
  });

  it('reports every Redis problem together with the other variables', () => {
    const text = problems({ PORT: 'x', REDIS_SENTINELS: 'a', REDIS_SENTINEL_PASSWORD_FILE: '/nonexistent/s' });
    expect(text).toContain('REDIS_SENTINEL_PASSWORD_FILE: cannot read');
    expect(text).toContain('PORT: ');
  });
});
