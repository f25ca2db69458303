import { describe, expect, it } from 'vitest';
import { queuePage } from '../../../src/console/other-pages.js';

const ctx = {} as Parameters<typeof queuePage>[2];
const job = (id: string, route?: string) => ({
  id,
  state: 'waiting',
  procedure: 'P1-001',
  target: 'h',
  attemptsMade: 0,
  ...(route ? { route } : {}),
});

describe('console queue page: the route of each job where routing is in use', () => {
  it('shows a Route column when a job sits on a named route (a route nobody serves shows as its jobs waiting)', () => {
    const text = queuePage({ waiting: 2 }, [job('a', 'payments-host-1'), job('b', 'default')], ctx).toString();
    expect(text).toContain('<th>Route</th>');
    expect(text).toContain('<td class="mono">payments-host-1</td>');
    expect(text).toContain('<td class="mono">default</td>');
  });

  it('without routing the page is as it was', () => {
    const text = queuePage({ waiting: 1 }, [job('a'), job('b', 'default')], ctx).toString();
    expect(text).not.toContain('Route');
    expect(queuePage({}, [], ctx).toString()).toContain('colspan="7"');
  });
});
