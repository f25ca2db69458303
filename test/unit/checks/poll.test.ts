import { createHook } from 'node:async_hooks';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { awaitCheck, type Timing } from '../../../src/checks/poll.js';
import { promql } from '../../../src/checks/promql.js';
import { CheckUnavailableError, type Check, type CheckContext, type CheckOutcome } from '../../../src/checks/types.js';
import { silentLogger } from '../../../src/log.js';
import { createPrometheusClient } from '../../../src/prometheus/client.js';
import { loadAxios } from '../../../src/http/client.js';
import {
  badData,
  notReady,
  queryTimeout,
  startFakePrometheus,
  vector,
  type FakePrometheus,
} from '../../helpers/fake-prometheus.js';
import { VirtualClock } from '../../helpers/virtual-clock.js';

type Step = boolean | Error;

/** Time in these tests is virtual (test/helpers/virtual-clock.ts): exact, whatever the machine's load. */
let clock = new VirtualClock();

/** A check that answers from a script (true/false holds, an Error is thrown); the last entry repeats. */
function scripted(...script: Step[]): Check<unknown> & { times: number[] } {
  const times: number[] = [];
  return {
    kind: 'step',
    spec: undefined as never,
    times,
    describe: () => 'scripted',
    render: (s) => s,
    evaluate(): Promise<CheckOutcome> {
      times.push(clock.now());
      const next = script.length > 1 ? script.shift()! : script[0]!;
      if (next instanceof Error) return Promise.reject(next);
      return Promise.resolve({
        holds: next,
        observed: [{ labels: {}, value: next ? 1 : 0, at: new Date().toISOString() }],
        reason: next ? 'yes' : 'no',
      });
    },
  };
}

const down = (retryable = true) =>
  new CheckUnavailableError('Prometheus query "up" failed: HTTP 503 Service Unavailable', { retryable });

function context(over: Partial<CheckContext> = {}): CheckContext {
  return {
    signal: new AbortController().signal,
    log: silentLogger,
    steps: new Map(),
    currentStep: 's',
    prometheus: { query: () => Promise.reject(new Error('unused')), ready: () => Promise.resolve(true) },
    ...over,
  };
}

/** A logger that keeps its lines, to count what was logged. */
function recordingLogger() {
  const lines: { level: number; msg: string }[] = [];
  const log = pino(
    { level: 'debug' },
    new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(JSON.parse(chunk.toString()) as { level: number; msg: string });
        done();
      },
    }),
  );
  return { log, lines };
}

const T = (t: Partial<Timing>): Timing => ({ pollIntervalMs: 10, ...t });

describe('checks/poll', () => {
  beforeEach(() => {
    clock = new VirtualClock();
  });

  it('no timing: evaluates once, now', async () => {
    const check = scripted(false, true);
    const out = await awaitCheck(check, {}, T({}), context(), clock);
    expect(out).toMatchObject({ holds: false, reason: 'no', attempts: 1, unknown: false });
  });

  it('within: polls until it holds', async () => {
    const check = scripted(false, false, true);
    const out = await awaitCheck(check, {}, T({ withinMs: 2000 }), context(), clock);
    expect(out).toMatchObject({ holds: true, attempts: 3, unknown: false, reason: 'yes' });
    expect(out.elapsedMs).toBeLessThan(1000);
    expect(check.times[1]! - check.times[0]!).toBeGreaterThanOrEqual(9);
  });

  it('within: gives up at the deadline, with one last evaluation there', async () => {
    const check = scripted(false);
    const out = await awaitCheck(check, {}, T({ withinMs: 100, pollIntervalMs: 30 }), context(), clock);
    expect(out).toMatchObject({ holds: false, reason: 'no', unknown: false });
    expect(out.elapsedMs).toBeGreaterThanOrEqual(100);
    expect(out.elapsedMs).toBeLessThan(1000);
    expect(out.attempts).toBeGreaterThanOrEqual(3); // at 0, 30, 60, 90 and the deadline, when not delayed
    expect(check.times.at(-1)! - check.times[0]!).toBeGreaterThanOrEqual(99);
    expect(check.times).toEqual([0, 30, 60, 90, 100]); // exact on the virtual clock
  });

  it('after: waits, then evaluates once', async () => {
    const check = scripted(true);
    const t0 = clock.now();
    const out = await awaitCheck(check, {}, T({ afterMs: 80 }), context(), clock);
    expect(check.times[0]! - t0).toBeGreaterThanOrEqual(79);
    expect(out).toMatchObject({ holds: true, attempts: 1 });
    expect(out.elapsedMs).toBeGreaterThanOrEqual(79);
  });

  it('after + within: the polling starts after the wait', async () => {
    const check = scripted(false, true);
    const t0 = clock.now();
    const out = await awaitCheck(check, {}, T({ afterMs: 50, withinMs: 500 }), context(), clock);
    expect(check.times[0]! - t0).toBeGreaterThanOrEqual(49);
    expect(out).toMatchObject({ holds: true, attempts: 2 });
  });

  it('for: holds when it holds at every evaluation across the span', async () => {
    const check = scripted(true);
    const out = await awaitCheck(check, {}, T({ forMs: 100, pollIntervalMs: 20 }), context(), clock);
    expect(out.holds).toBe(true);
    expect(check.times.at(-1)! - check.times[0]!).toBeGreaterThanOrEqual(99);
    expect(out.attempts).toBeGreaterThanOrEqual(3); // the first, some in between, the last at 100 ms
    expect(check.times).toEqual([0, 20, 40, 60, 80, 100]);
  });

  it('for without within: one miss fails it, saying how long it held', async () => {
    const check = scripted(true, true, true, false, true);
    const out = await awaitCheck(check, {}, T({ forMs: 1000, pollIntervalMs: 20 }), context(), clock);
    expect(out).toMatchObject({ holds: false, attempts: 4, unknown: false });
    expect(out.reason).toMatch(/^no \(held for \d+ms of the 1s required\)$/);
  });

  it('for without within: must hold from the first evaluation', async () => {
    const check = scripted(false, true);
    await expect(awaitCheck(check, {}, T({ forMs: 50 }), context(), clock)).resolves.toMatchObject({ holds: false, attempts: 1 });
  });

  it('for + within: may start holding later, but must complete the span by within', async () => {
    const check = scripted(false, false, true);
    const out = await awaitCheck(check, {}, T({ withinMs: 1000, forMs: 100, pollIntervalMs: 20 }), context(), clock);
    expect(out.holds).toBe(true);
    expect(out.elapsedMs).toBeLessThan(1000);

    const late = scripted(false);
    const failed = await awaitCheck(late, {}, T({ withinMs: 400, forMs: 200, pollIntervalMs: 20 }), context(), clock);
    expect(failed.holds).toBe(false);
    // It stops looking once the span could no longer complete in time: at within − for.
    expect(failed.elapsedMs).toBeGreaterThanOrEqual(199);
    expect(failed.elapsedMs).toBeLessThan(400);
    expect(failed.elapsedMs).toBe(200);
  });

  it('for + within: a miss restarts the span', async () => {
    const check = scripted(true, true, false, true);
    const out = await awaitCheck(check, {}, T({ withinMs: 1000, forMs: 60, pollIntervalMs: 20 }), context(), clock);
    expect(out.holds).toBe(true);
    expect(out.attempts).toBeGreaterThanOrEqual(5); // 3 before the miss, then ≥ 2 across 60 ms
  });

  it('unavailable until the deadline: unknown, not holding, the error in the reason, logged once', async () => {
    const { log, lines } = recordingLogger();
    const check = scripted(down());
    const out = await awaitCheck(check, {}, T({ withinMs: 150, pollIntervalMs: 10 }), context({ log }), clock);
    expect(out).toMatchObject({ holds: false, unknown: true, observed: [] });
    expect(out.reason).toMatch(/^Prometheus query "up" failed: HTTP 503 Service Unavailable \((\d+) of \1 attempts failed\)$/);
    expect(out.attempts).toBeGreaterThan(2);
    expect(lines.filter((l) => l.level === 40)).toHaveLength(1);
  });

  it('a later successful evaluation clears unknown', async () => {
    const { log, lines } = recordingLogger();
    const check = scripted(down(), down(), false);
    const out = await awaitCheck(check, {}, T({ withinMs: 60 }), context({ log }), clock);
    expect(out).toMatchObject({ holds: false, unknown: false, reason: 'no' });
    expect(lines.map((l) => l.msg)).toEqual(['check cannot be evaluated; still trying', 'check can be evaluated again']);
  });

  it('unavailable, then holds: holds', async () => {
    const out = await awaitCheck(scripted(down(), down(), true), {}, T({ withinMs: 1000 }), context(), clock);
    expect(out).toMatchObject({ holds: true, unknown: false, attempts: 3 });
  });

  it('holding, then unavailable at the end: unknown (the last answer is not known)', async () => {
    const out = await awaitCheck(scripted(false, down()), {}, T({ withinMs: 50 }), context(), clock);
    expect(out).toMatchObject({ holds: false, unknown: true });
    expect(out.observed).toHaveLength(1); // the last thing seen is still reported
  });

  it('a non-retryable error (a rejected query) stops at once, unknown', async () => {
    const check = scripted(down(false));
    const out = await awaitCheck(check, {}, T({ withinMs: 10_000 }), context(), clock);
    expect(out).toMatchObject({ holds: false, unknown: true, attempts: 1 });
    expect(out.elapsedMs).toBeLessThan(1000);
  });

  it('other errors are bugs and propagate', async () => {
    await expect(awaitCheck(scripted(new TypeError('boom')), {}, T({ withinMs: 1000 }), context(), clock)).rejects.toThrow(
      'boom',
    );
  });

  it('abort while waiting: rejects promptly with the signal reason and leaves no timer', async () => {
    const ac = new AbortController();
    // The timers this test's code creates, not the process's count (other tests' and vitest's own timers come and
    // go meanwhile): each Timeout made from here on, until it fires or is cleared.
    const alive = new Set<number>();
    const hook = createHook({
      init: (id, type) => void (type === 'Timeout' && alive.add(id)),
      destroy: (id) => void alive.delete(id),
    }).enable();
    const check = scripted(false);
    const pending = awaitCheck(check, {}, T({ withinMs: 60_000, pollIntervalMs: 5000 }), context({ signal: ac.signal })).catch(
      (e: unknown) => e,
    );
    await new Promise((r) => setImmediate(r)); // the first evaluation has run; it now sleeps 5 s
    expect(check.times).toHaveLength(1);
    const reason = new Error('alert resolved');
    let settled: unknown = 'pending';
    void pending.then((v) => (settled = v));
    ac.abort(reason);
    // Promptly: settled within one turn of the event loop, long before the 5 s poll interval could fire.
    await new Promise((r) => setImmediate(r));
    expect(settled).toBe(reason);
    expect(await pending).toBe(reason);
    // A cleared timer's destroy hook runs from Node's own queue, a few turns later: wait for it, boundedly.
    for (let turn = 0; turn < 100 && alive.size > 0; turn++) await new Promise((r) => setImmediate(r));
    hook.disable();
    expect(alive.size, 'timers of the aborted wait still pending').toBe(0);
  });

  it('abort during after: rejects', async () => {
    const ac = new AbortController();
    const pending = awaitCheck(scripted(true), {}, T({ afterMs: 60_000 }), context({ signal: ac.signal }), clock);
    ac.abort(new Error('shutdown'));
    await expect(pending).rejects.toThrow('shutdown');
  });

  it('an already aborted signal: rejects without evaluating', async () => {
    const check = scripted(true);
    await expect(awaitCheck(check, {}, T({}), context({ signal: AbortSignal.abort(new Error('gone')) }))).rejects.toThrow('gone');
    expect(check.times).toHaveLength(0);
  });

  describe('with Prometheus', () => {
    let prom: FakePrometheus;
    let ctx: CheckContext;
    beforeAll(async () => {
      prom = await startFakePrometheus();
      ctx = context({ prometheus: createPrometheusClient({ url: prom.url, timeoutMs: 1000 }) });
      // A process loads axios on its first request (as the worker does with its first run): not inside a window here.
      await loadAxios();
    });
    afterAll(() => prom.close());

    it('Prometheus starting up, then the value arrives: holds', async () => {
      prom.script('link_up', notReady(), queryTimeout(), vector([{ instance: 'a' }, '0']), vector([{ instance: 'a' }, '1']));
      const out = await awaitCheck(promql, { promql: 'link_up', op: '==', value: 1 }, T({ withinMs: 2000 }), ctx);
      expect(out).toMatchObject({
        holds: true,
        unknown: false,
        attempts: 4,
        observed: [{ labels: { instance: 'a' }, value: 1 }],
      });
      expect(prom.queries('link_up')).toHaveLength(4);
    });

    it('Prometheus down throughout: unknown with the error', async () => {
      prom.script('link_down', notReady());
      const out = await awaitCheck(promql, { promql: 'link_down', op: '==', value: 1 }, T({ withinMs: 50 }), ctx);
      expect(out).toMatchObject({ holds: false, unknown: true });
      expect(out.reason).toContain('Prometheus query "link_down" failed: HTTP 503 Service Unavailable');
    });

    it('a bad query is asked once', async () => {
      prom.script('bad{', badData());
      const out = await awaitCheck(promql, { promql: 'bad{', op: '==', value: 1 }, T({ withinMs: 5000 }), ctx);
      expect(out).toMatchObject({ holds: false, unknown: true, attempts: 1 });
      expect(out.reason).toContain('bad_data');
    });
  });
});
