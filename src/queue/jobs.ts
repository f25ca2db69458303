import type { JobsOptions } from 'bullmq';

/** Every remediation job's options, wherever it is added (Producer.enqueue, the intake dispatcher). */
export function jobDefaults(retentionMs: number): JobsOptions {
  return {
    // Retries only for infrastructure errors (Redis, a crash in the engine); the run resumes at its checkpoint.
    attempts: 3,
    backoff: { type: 'exponential', delay: 5000, jitter: 0.5 },
    removeOnComplete: { age: Math.ceil(retentionMs / 1000) },
    removeOnFail: { age: Math.ceil(retentionMs / 1000) },
  };
}

/**
 * A job's identity: its id is the incident's (or its generation's), and the deduplication id survives the job's
 * removal, so a re-send long after the run finished, or a second dispatch of one intake entry, adds nothing.
 */
export function jobIdentity(id: string, retentionMs: number): JobsOptions & { jobId: string } {
  return { jobId: id, deduplication: { id, ttl: retentionMs, extend: true } };
}
