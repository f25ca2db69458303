/**
 * Routing by target: which queue an incident's job goes to, so that a central receiver can serve supervisors on
 * many hosts while each host's own worker (`remediator worker` with WORKER_ROUTES) runs only its own targets' jobs:
 * process lookups, service restarts and the IPC socket are local to the supervisor's host.
 *
 * The table is the operator's (ROUTES_FILE). An alert chooses nothing here but the target its procedure renders,
 * and a target that is not in the table goes to the fallback route: labels can never name a queue or a host.
 */
import { parse } from 'yaml';
import { canonicalTarget } from './target.js';

/** The route of every target no table entry names (and of every target when there is no table). */
export const DEFAULT_ROUTE = 'default';

/** A route name: it becomes part of a BullMQ queue name (no ':'), so a DNS label's characters only. */
export const ROUTE_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

export interface RouteTable {
  /** canonical target → route */
  readonly targets: ReadonlyMap<string, string>;
  /** Every route the table declares, the fallback and `default` included. */
  readonly routes: readonly string[];
  /** Where targets the table does not name go: `default` unless the file says otherwise. */
  readonly fallback: string;
}

export const NO_ROUTES: RouteTable = { targets: new Map(), routes: [DEFAULT_ROUTE], fallback: DEFAULT_ROUTE };

export class RouteTableError extends Error {
  override readonly name = 'RouteTableError';
}

/**
 * Parses a routes file:
 *
 * ```yaml
 * routes:
 *   edge-1: [payments-host-1, billing-host-1]   # route → the targets (as the procedures render them) it serves
 *   edge-2: [payments-host-2]
 * default: default                              # optional: the route of every other target
 * ```
 *
 * Targets are compared in canonical form (case, spaces, invisible characters and a port do not count), as leases
 * and budgets are. A target in two routes is an error. Throws RouteTableError with every problem.
 */
export function parseRouteTable(text: string): RouteTable {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw new RouteTableError(`not YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  const problems: string[] = [];
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw new RouteTableError('expected a mapping with `routes:` (route → list of targets) and optionally `default:`');
  const { routes, default: fallback, ...rest } = doc as Record<string, unknown>;
  for (const key of Object.keys(rest)) problems.push(`unknown key ${JSON.stringify(key)} (expected routes, default)`);
  const targets = new Map<string, string>();
  const names = new Set<string>([DEFAULT_ROUTE]);
  if (typeof routes !== 'object' || routes === null || Array.isArray(routes)) {
    problems.push('routes: expected a mapping of route name → list of targets');
  } else {
    for (const [route, list] of Object.entries(routes as Record<string, unknown>)) {
      if (!ROUTE_NAME.test(route)) {
        problems.push(`routes.${route}: a route name is lower-case letters, digits and '-' (at most 63)`);
        continue;
      }
      names.add(route);
      if (!Array.isArray(list) || list.length === 0) {
        problems.push(`routes.${route}: expected a non-empty list of targets`);
        continue;
      }
      for (const [i, target] of list.entries()) {
        const canonical = typeof target === 'string' || typeof target === 'number' ? canonicalTarget(String(target)) : '';
        if (canonical === '') {
          problems.push(`routes.${route}[${i}]: expected a target (a non-empty string)`);
          continue;
        }
        const before = targets.get(canonical);
        if (before !== undefined && before !== route)
          problems.push(`routes.${route}[${i}]: target ${JSON.stringify(canonical)} is already routed to ${before}`);
        else targets.set(canonical, route);
      }
    }
  }
  let chosen = DEFAULT_ROUTE;
  if (fallback !== undefined) {
    if (typeof fallback !== 'string' || !ROUTE_NAME.test(fallback))
      problems.push('default: expected a route name (lower-case letters, digits and -)');
    else {
      chosen = fallback;
      names.add(fallback);
    }
  }
  if (problems.length > 0) throw new RouteTableError(problems.join('; '));
  return { targets, routes: [...names], fallback: chosen };
}

/** The route of a rendered target: the table's entry for its canonical form, else the fallback. */
export function routeOf(table: RouteTable, target: string): string {
  return routeOfCanonical(table, canonicalTarget(target));
}

/** routeOf for a target already in canonical form (canonicalTarget). */
export function routeOfCanonical(table: RouteTable, canonical: string): string {
  return table.targets.get(canonical) ?? table.fallback;
}

/** WORKER_ROUTES: a comma-separated list of route names; problems in words (the caller names the variable). */
export function parseRouteList(text: string): { routes: string[] } | { problem: string } {
  const routes = [
    ...new Set(
      text
        .split(',')
        .map((r) => r.trim())
        .filter((r) => r !== ''),
    ),
  ];
  if (routes.length === 0) return { problem: 'expected one or more route names, comma-separated' };
  const bad = routes.filter((r) => !ROUTE_NAME.test(r));
  if (bad.length > 0)
    return { problem: `${bad.map((b) => JSON.stringify(b)).join(', ')}: a route name is lower-case letters, digits and '-'` };
  return { routes };
}
