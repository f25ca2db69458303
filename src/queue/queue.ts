import { Queue } from 'bullmq';
import { Redis } from 'ioredis';
import type { Alert } from '../alertmanager/payload.js';
import type { RunRecord } from '../engine/record.js';
import { QUEUE_NAME, type RedisKeys } from './keys.js';

/** What a job carries: enough to rebuild the run record if it is missing. No secrets (stored in clear). */
export interface RunJob {
  runId: string;
  procedure: string;
  target: string;
  alert: Pick<Alert, 'labels' | 'annotations' | 'fingerprint' | 'startsAt' | 'status' | 'generatorURL'>;
  trigger: RunRecord['trigger'];
  /** A re-run started by an operator: the run it repeats. */
  rerunOf?: string;
}

export interface ProducerOptions {
  redisUrl: string;
  keys: RedisKeys;
  retentionMs: number;
}

/**
 * The receiver's side of the queue. Fails fast when Redis is away (no offline queue, one retry), so the
 * webhook answers 503 and Alertmanager retries, instead of hanging past Alertmanager's deadline.
 */
export class Producer {
  readonly redis: Redis;
  readonly queue: Queue<RunJob>;

  constructor(private readonly opts: ProducerOptions) {
    this.redis = new Redis(opts.redisUrl, {
      enableOfflineQueue: false,
      maxRetriesPerRequest: 1,
      connectTimeout: 2000,
      connectionName: 'remediator:producer',
      // Keep trying to come back; each webhook meanwhile gets a fast 503.
      retryStrategy: (times) => Math.min(times * 200, 2000),
    });
    this.redis.on('error', () => {}); // surfaced through readiness and 503s; ioredis reconnects by itself
    this.queue = new Queue<RunJob>(QUEUE_NAME, {
      connection: this.redis,
      prefix: opts.keys.bullPrefix,
      defaultJobOptions: {
        // Retries only for infrastructure errors (Redis, a crash in the engine); the run resumes at its checkpoint.
        attempts: 3,
        backoff: { type: 'exponential', delay: 5000, jitter: 0.5 },
        removeOnComplete: { age: Math.ceil(opts.retentionMs / 1000) },
        removeOnFail: { age: Math.ceil(opts.retentionMs / 1000) },
      },
    });
    this.queue.on('error', () => {});
  }

  /** Idempotent: the job id is the incident id, so a re-sent alert adds nothing while the job is kept. */
  async enqueue(job: RunJob): Promise<void> {
    await this.queue.add('remediate', job, {
      jobId: job.runId,
      // Survives the job's removal: a re-send long after the run finished still starts nothing.
      deduplication: { id: job.runId, ttl: this.opts.retentionMs, extend: true },
    });
  }

  async ping(): Promise<boolean> {
    try {
      return (await this.redis.ping()) === 'PONG';
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    await this.queue.close().catch(() => {});
    this.redis.disconnect();
  }
}
