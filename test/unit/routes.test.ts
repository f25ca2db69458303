import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { queueName } from '../../src/queue/keys.js';
import { parseRouteList, parseRouteTable, routeOf, RouteTableError } from '../../src/routes.js';

const TABLE = 'routes:\n  edge-1: [payments-host-1, "billing-host-1:9466"]\n  edge-2: [payments-host-2]\n';

describe('routes: the operator’s table from canonical target to route', () => {
  it('routes a target by its canonical form; anything else goes to the default route', () => {
    const t = parseRouteTable(TABLE);
    expect(routeOf(t, 'payments-host-1')).toBe('edge-1');
    expect(routeOf(t, 'Payments-Host-1:9466')).toBe('edge-1');
    expect(routeOf(t, 'billing-host-1')).toBe('edge-1');
    expect(routeOf(t, 'payments-host-2')).toBe('edge-2');
    expect(routeOf(t, 'payments-host-3')).toBe('default');
    // A label value shaped like a route or a queue name is a target like any other: unrouted.
    expect(routeOf(t, 'edge-2')).toBe('default');
    expect(routeOf(t, 'remediations-edge-2')).toBe('default');
    expect(t.routes).toEqual(['default', 'edge-1', 'edge-2']);
  });

  it('takes another fallback route when the file names one', () => {
    const t = parseRouteTable(`${TABLE}default: central\n`);
    expect(routeOf(t, 'unknown-host')).toBe('central');
    expect(t.routes).toContain('central');
  });

  it('refuses a target in two routes, bad route names and unknown keys, naming each', () => {
    const problem = (text: string) => {
      try {
        parseRouteTable(text);
      } catch (err) {
        expect(err).toBeInstanceOf(RouteTableError);
        return (err as Error).message;
      }
      throw new Error('accepted');
    };
    expect(problem('routes:\n  a: [h1]\n  b: ["H1:9100"]\n')).toContain('routes.b[0]: target "h1" is already routed to a');
    expect(problem('routes:\n  Edge_1: [h1]\n')).toContain('routes.Edge_1: a route name');
    expect(problem('routes:\n  a: []\n')).toContain('routes.a: expected a non-empty list');
    expect(problem('routes: {a: [h1]}\nqueues: x\n')).toContain('unknown key "queues"');
    expect(problem('- a\n')).toContain('expected a mapping');
    expect(problem('routes: {a: [h1]}\ndefault: "x:y"\n')).toContain('default: expected a route name');
  });

  it('maps routes to queues: default keeps the queue it always had', () => {
    expect(queueName('default')).toBe('remediations');
    expect(queueName('edge-1')).toBe('remediations-edge-1');
  });

  it('parses WORKER_ROUTES', () => {
    expect(parseRouteList('edge-1, edge-2,edge-1')).toEqual({ routes: ['edge-1', 'edge-2'] });
    expect(parseRouteList(' , ')).toEqual({ problem: 'expected one or more route names, comma-separated' });
    expect(parseRouteList('edge:1')).toHaveProperty('problem');
  });
});

describe('config: ROUTES_FILE and WORKER_ROUTES name themselves when wrong', () => {
  const files: Record<string, string> = { '/etc/r.yaml': TABLE, '/etc/bad.yaml': 'routes:\n  a: [h]\n  b: [h]\n' };
  const read = (path: string) => {
    const text = files[path];
    if (text === undefined) throw Object.assign(new Error('no such file'), { code: 'ENOENT' });
    return text;
  };
  const problems = (env: Record<string, string>) => {
    try {
      loadConfig(env, read);
      return '';
    } catch (err) {
      return (err as Error).message;
    }
  };

  it('reads the table and the worker routes', () => {
    const config = loadConfig({ ROUTES_FILE: '/etc/r.yaml', WORKER_ROUTES: 'edge-2' }, read);
    expect(config.WORKER_ROUTES).toEqual(['edge-2']);
    expect(routeOf(config.routes, 'payments-host-2')).toBe('edge-2');
    expect(loadConfig({}, read).WORKER_ROUTES).toEqual(['default']);
  });

  it('names the variable at fault', () => {
    expect(problems({ ROUTES_FILE: '/etc/missing.yaml' })).toContain('ROUTES_FILE: cannot read /etc/missing.yaml (ENOENT)');
    expect(problems({ ROUTES_FILE: '/etc/bad.yaml' })).toContain(
      'ROUTES_FILE: /etc/bad.yaml: routes.b[0]: target "h" is already routed to a',
    );
    expect(problems({ WORKER_ROUTES: 'Edge 1' })).toContain('WORKER_ROUTES: "Edge 1": a route name');
    expect(problems({ ROUTES_FILE: '/etc/r.yaml', WORKER_ROUTES: 'edge-3' })).toContain(
      'WORKER_ROUTES: edge-3 not declared in ROUTES_FILE (declared: default, edge-1, edge-2)',
    );
    // Without the table at hand, a worker serves the routes it is told.
    expect(problems({ WORKER_ROUTES: 'edge-3' })).toBe('');
  });
});
