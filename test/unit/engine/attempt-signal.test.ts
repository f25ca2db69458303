import { describe, expect, it } from 'vitest';
import { attemptSignal } from '../../../src/engine/step.js';

/** engine/step.ts attemptSignal: an action call's signal, as AbortSignal.any([run, AbortSignal.timeout(ms)]). */
describe('engine/step attemptSignal', () => {
  it("aborts with the run's reason when the run's signal aborts", () => {
    const run = new AbortController();
    const { signal, done } = attemptSignal(run.signal, 60_000);
    expect(signal.aborted).toBe(false);
    const reason = new Error('shutdown');
    run.abort(reason);
    expect(signal.aborted).toBe(true);
    expect(signal.reason).toBe(reason);
    done();
  });

  it('is aborted at once when the run already is', () => {
    const run = new AbortController();
    run.abort('gone');
    expect(attemptSignal(run.signal, 60_000).signal.reason).toBe('gone');
  });

  it("aborts with a TimeoutError after the call's timeout, the run's signal untouched", async () => {
    const run = new AbortController();
    const { signal, done } = attemptSignal(run.signal, 5);
    await new Promise((resolve) => signal.addEventListener('abort', resolve, { once: true }));
    expect(signal.reason).toBeInstanceOf(DOMException);
    expect((signal.reason as DOMException).name).toBe('TimeoutError');
    expect(run.signal.aborted).toBe(false);
    done();
  });

  it("once done, neither the timeout nor the run's abort reaches it (nothing left armed or listening)", async () => {
    const run = new AbortController();
    const { signal, done } = attemptSignal(run.signal, 5);
    done();
    await new Promise((resolve) => setTimeout(resolve, 20));
    run.abort('later');
    expect(signal.aborted).toBe(false);
  });
});
