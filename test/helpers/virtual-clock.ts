import type { Clock } from '../../src/checks/poll.js';

/**
 * A clock whose time moves only when something sleeps on it: a sleep of 30 ms is 30 ms later at once. Poll
 * tests on it are exact and do not depend on how loaded the machine is. Each sleep yields to the event loop
 * first (setImmediate), so an abort or a concurrent evaluation gets its turn, and honours its signal.
 */
export class VirtualClock implements Clock {
  private at = 0;
  now(): number {
    return this.at;
  }
  async sleep(ms: number, signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    await new Promise((resolve) => setImmediate(resolve));
    signal.throwIfAborted();
    this.at += Math.max(0, ms);
  }
}
