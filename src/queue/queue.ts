import { Queue } from 'bullmq';
import type { Alert } from '../alertmanager/payload.js';
import type { RunRecord } from '../engine/record.js';
import type { RedisSettings } from '../redis-settings.js';
import { connectRedis, waitForReplicas, type RedisClient } from './connection.js';
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
  /** The BullMQ job id when it is not the run id: a reopened incident's next generation (`<runId>-g2`). */
  jobId?: string;
}

export interface ProducerOptions {
  redis: RedisSettings;
  keys: RedisKeys;
  retentionMs: number;
}

export class ReplicationError extends Error {
  override readonly name = 'ReplicationError';
}

/**
 * The receiver's side of the queue. Fails fast when Redis is away (no offline queue, one retry), so the
 * webhook answers 503 and Alertmanager retries, instead of hanging past Alertmanager's deadline.
 */
export class Producer {
  readonly redis: RedisClient;
  readonly queue: Queue<RunJob>;

  constructor(private readonly opts: ProducerOptions) {
    this.redis = connectRedis(opts.redis, 'producer');
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
    // The receiver and group key are the record's (stored once per payload, queue/records.ts), not each job's: a
    // payload of a thousand alerts would otherwise store its group key a thousand times more.
    // Annotations likewise: the record has them (a job rebuilds a missing record from labels alone).
    const { receiver: _receiver, groupKey: _groupKey, ...trigger } = job.trigger;
    await this.queue.add(
      'remediate',
      { ...job, alert: { ...job.alert, annotations: {} }, trigger },
      {
        jobId: job.jobId ?? job.runId,
        // Survives the job's removal: a re-send long after the run finished still starts nothing.
        deduplication: { id: job.jobId ?? job.runId, ttl: this.opts.retentionMs, extend: true },
      },
    );
  }

  /**
   * With REDIS_WAIT_REPLICAS: waits until that many replicas hold every write this connection made so far (the
   * records and jobs of the webhook being answered), or throws, so the webhook answers 503 and Alertmanager retries.
   * A 202 then survives the loss of the primary. Without it: nothing to wait for.
   */
  async replicated(): Promise<void> {
    const { waitReplicas, waitTimeoutMs } = this.opts.redis;
    if (waitReplicas === 0) return;
    const acked = await waitForReplicas(this.redis, this.opts.keys.bullPrefix, waitReplicas, waitTimeoutMs);
    if (acked < waitReplicas)
      throw new ReplicationError(`${acked} of ${waitReplicas} replica(s) confirmed the writes within ${waitTimeoutMs} ms`);
  }

  /** The primary that holds remediator's keys answers (a keyed read: on a Cluster it goes to the tag's primary). */
  async ping(): Promise<boolean> {
    try {
      await this.redis.exists(this.opts.keys.paused);
      return true;
    } catch {
      return false;
    }
  }

  async close(): Promise<void> {
    await this.queue.close().catch(() => {});
    this.redis.disconnect();
  }
}
