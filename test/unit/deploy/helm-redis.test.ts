import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { Config } from '../../../src/config.js';
import { SECRET_FILE_VARIABLES } from '../../../src/redis-settings.js';
import { repo } from './k8s-objects.js';

/**
 * The chart's Redis settings, statically (no helm binary here, as in helm-chart.test.ts): every variable the chart
 * sets is one remediator reads, the files it points REDIS_*_FILE at are the ones its volume mounts, and the schema
 * refuses what would not start.
 */
const chart = new URL('helm/remediator/', repo);
const read = (p: string) => readFileSync(new URL(p, chart), 'utf8');
const helpers = read('templates/_helpers.tpl');
const deployment = read('templates/deployment.yaml');
const values = parse(read('values.yaml')) as Record<string, unknown>;
const validate = new Ajv({ allErrors: true, strict: false }).compile(JSON.parse(read('values.schema.json')) as object);

/** The text of one `define` (up to the next define or comment block). */
const define = (name: string) => helpers.slice(helpers.indexOf(`define "${name}"`)).split(/\n\{\{(?:\/\*|- define)/)[0]!;
const envBlock = define('remediator.env');

describe('helm/remediator: Redis topologies', () => {
  it('every environment variable the chart sets is one remediator reads', () => {
    const known = new Set([...Object.keys(Config.shape), ...SECRET_FILE_VARIABLES.map((n) => `${n}_FILE`)]);
    const names = [...envBlock.matchAll(/^- name: ([A-Z_]+)$/gm)].map((m) => m[1]!);
    expect(names).toEqual(expect.arrayContaining(['REDIS_URL', 'REDIS_SENTINELS', 'REDIS_SENTINEL_NAME', 'REDIS_CLUSTER_NODES']));
    expect(names.filter((n) => !known.has(n))).toEqual([]);
  });

  it('REDIS_*_FILE point into the mounted redis-secrets volume, at the paths its items write', () => {
    const mount = /- name: redis-secrets\s+mountPath: (\S+)/.exec(deployment)?.[1];
    expect(mount).toBe('/etc/remediator/redis');
    const paths = [...define('remediator.redisSecretSources').matchAll(/path: ([\w.-]+) \}/g)].map((m) => `${mount}/${m[1]}`);
    const files = [...envBlock.matchAll(/- name: REDIS_\w+_FILE\n\s+value: (\S+)/g)].map((m) => m[1]!);
    expect(files.length).toBe(3);
    expect(paths.sort()).toEqual(files.sort());
  });

  it.each([
    [{ sentinel: { nodes: ['s:26379'], masterSet: 'mymaster' }, cluster: { nodes: ['c:6379'] } }, 'must NOT be valid'],
    [{ sentinel: { nodes: ['redis-node-0:sentinel'], masterSet: 'mymaster' } }, 'pattern'],
    [{ sentinel: { nodes: ['s:26379'], masterSet: 'my master' } }, 'pattern'],
    [{ waitTimeout: '1 second' }, 'pattern'],
    [{ waitReplicas: -1 }, 'minimum'],
    [{ password: { existingSecret: 'redis' } }, 'key'],
  ])('the schema refuses redis: %j', (redis, message) => {
    const merged = { ...values, redis: { ...(values.redis as object), ...redis } };
    expect(validate(merged)).toBe(false);
    expect(JSON.stringify(validate.errors)).toContain(message);
  });

  it('the chart refuses to render sentinel.nodes and cluster.nodes together', () => {
    expect(deployment).toMatch(/if and \.Values\.redis\.sentinel\.nodes \.Values\.redis\.cluster\.nodes \}\}\n\{\{- fail /);
  });
});
