/**
 * BullMQ's classes from their own files (src/queue/queue.ts, src/queue/worker.ts): its index also loads the flow
 * producer, job scheduler, sandboxed processors and the rest, ~5 MiB resident in every process. Each file exports the
 * very class the index does (test/unit/queue/bullmq-classes.test.ts holds that across upgrades); the types are the
 * index's.
 */
declare module 'bullmq/dist/cjs/classes/queue.js' {
  export { Queue } from 'bullmq';
}
declare module 'bullmq/dist/cjs/classes/job.js' {
  export { Job } from 'bullmq';
}
declare module 'bullmq/dist/cjs/classes/worker.js' {
  export { Worker } from 'bullmq';
}
declare module 'bullmq/dist/cjs/classes/errors/delayed-error.js' {
  export { DelayedError } from 'bullmq';
}
