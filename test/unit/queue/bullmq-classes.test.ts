import * as bullmq from 'bullmq';
import { describe, expect, it } from 'vitest';
import { Job } from 'bullmq/dist/cjs/classes/job.js';
import { Queue } from 'bullmq/dist/cjs/classes/queue.js';
import { Worker } from 'bullmq/dist/cjs/classes/worker.js';
import { DelayedError } from 'bullmq/dist/cjs/classes/errors/delayed-error.js';

// src/queue/queue.ts and worker.ts load BullMQ's classes from their own files, not its index (less memory per
// process): after a BullMQ upgrade each file must still export the index's very class (instanceof, the same scripts).
describe("BullMQ's class files", () => {
  it('export the classes the index exports', () => {
    expect(Queue).toBe(bullmq.Queue);
    expect(Job).toBe(bullmq.Job);
    expect(Worker).toBe(bullmq.Worker);
    expect(DelayedError).toBe(bullmq.DelayedError);
  });
});
