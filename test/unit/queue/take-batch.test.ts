import { describe, expect, it } from 'vitest';
import { MAX_RUNS_PER_CALL, takeBatch } from '../../../src/queue/queue.js';

const waiting = (...sizes: number[]) => sizes.map((n, i) => ({ id: i, payload: { records: Array.from({ length: n }) } }));

describe('takeBatch: the payloads of the next createRuns call', () => {
  it('takes every waiting payload while their runs fit', () => {
    const queue = waiting(1, 20, 5);
    expect(takeBatch(queue, 100).map((w) => w.id)).toEqual([0, 1, 2]);
    expect(queue).toEqual([]);
  });

  it('stops before the payload that would pass the limit, in arrival order, and leaves the rest waiting', () => {
    const queue = waiting(400, 500, 200, 1);
    expect(takeBatch(queue, 1000).map((w) => w.id)).toEqual([0, 1]);
    expect(queue.map((w) => w.id)).toEqual([2, 3]);
    expect(takeBatch(queue, 1000).map((w) => w.id)).toEqual([2, 3]);
  });

  it('sends a payload larger than the limit whole, alone (a payload is never split)', () => {
    const queue = waiting(MAX_RUNS_PER_CALL + 5, 1);
    expect(takeBatch(queue, MAX_RUNS_PER_CALL).map((w) => w.payload.records.length)).toEqual([MAX_RUNS_PER_CALL + 5]);
    expect(queue).toHaveLength(1);
  });
});
