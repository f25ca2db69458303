import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { capByRounds, capRecord, capRecordJson, RECORD_LIMITS } from '../../../src/engine/record-cap.js';
import { newRunRecord, type RunRecord, type StepRecord } from '../../../src/engine/record.js';

const base = (): RunRecord =>
  newRunRecord({
    id: 'inc-1',
    procedure: 'P',
    title: 'T',
    target: 'h',
    alert: {
      labels: { alertname: 'A' },
      annotations: {},
      fingerprint: '0123456789abcdef',
      startsAt: '2026-11-28T07:00:00.000Z',
      status: 'firing',
    },
    trigger: { source: 'alertmanager', receivedAt: '2026-11-28T07:00:00.000Z' },
    dryRun: false,
  });

const step = (observed: number, output: number, body: number): StepRecord => ({
  name: 's',
  status: 'passed',
  observed: Array.from({ length: observed }, (_, i) => ({ labels: { i: String(i) }, value: 1, at: 'now' })),
  attempts: 1,
  result: { status: 'succeeded', output: 'o'.repeat(output), body: { pad: 'b'.repeat(body) } },
});

describe('engine/record-cap', () => {
  it('leaves a small record as it is', () => {
    const r = { ...base(), steps: [step(3, 10, 10)] };
    expect(capRecord(r)).toBe(r);
  });

  it('a record without steps (a new run) is stored as it is, its JSON once, however large its alert', () => {
    for (const summary of ['s', 'x'.repeat(RECORD_LIMITS.record * 2)]) {
      const r = { ...base(), alert: { ...base().alert, annotations: { summary } } };
      const { record, json } = capRecordJson(r);
      expect(record).toBe(r);
      expect(json).toBe(JSON.stringify(r));
    }
  });

  it('stores exactly what the per-field rounds store, JSON included, for records around the per-field caps (property)', () => {
    const cap = RECORD_LIMITS.body;
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat({ max: 150 }), fc.nat({ max: cap + 200 }), fc.nat({ max: cap + 200 }), fc.nat({ max: 150 })), {
          maxLength: 4,
        }),
        (steps) => {
          const r = {
            ...base(),
            steps: steps.map(([o, out, b, w]) => ({
              ...step(o, out, b),
              action: { kind: 'exec', spec: { command: ['/bin/true'] }, description: 'exec /bin/true' },
              when: {
                description: 'w',
                holds: true,
                unknown: false,
                observed: step(w, 0, 0).observed,
                attempts: 1,
                elapsedMs: 1,
              },
            })),
          };
          const fast = capRecordJson(r);
          const rounds = capByRounds(r);
          expect(fast.json).toBe(rounds.json);
          expect(fast.record).toEqual(rounds.record);
          expect(JSON.parse(fast.json)).toEqual(JSON.parse(JSON.stringify(fast.record)));
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a record just within the smallest per-field cap is serialised once and kept as it is', () => {
    const r = { ...base(), steps: [step(100, 0, 0)] };
    const pad = RECORD_LIMITS.body - JSON.stringify(r).length;
    r.steps[0]!.result!.output = 'o'.repeat(pad);
    const { record, json } = capRecordJson(r);
    expect(json.length).toBe(RECORD_LIMITS.body);
    expect(record).toBe(r);
    expect(json).toBe(JSON.stringify(r));
    // One more observed value than kept: cut, though the JSON is small.
    const long = { ...base(), steps: [step(RECORD_LIMITS.observations + 1, 0, 0)] };
    expect(capRecordJson(long).record.truncated).toEqual(['steps[0].observed: kept 100 of 101 observed values']);
  });

  it('any record is stored within its size, with a note for every field cut, and the input unchanged (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat({ max: 3000 }), fc.nat({ max: 100_000 }), fc.nat({ max: 200_000 })), { maxLength: 12 }),
        (steps) => {
          const r = { ...base(), steps: steps.map(([o, out, b]) => step(o, out, b)) };
          const before = JSON.stringify(r);
          const capped = capRecord(r);
          expect(JSON.stringify(r)).toBe(before);
          expect(JSON.stringify(capped).length).toBeLessThanOrEqual(RECORD_LIMITS.record);
          if (before.length > RECORD_LIMITS.record) expect(capped.truncated?.length).toBeGreaterThan(0);
          capped.steps.forEach((s, i) => {
            if (s.observed.length < r.steps[i]!.observed.length)
              expect(capped.truncated).toContain(
                `steps[${i}].observed: kept ${s.observed.length} of ${r.steps[i]!.observed.length} observed values`,
              );
          });
        },
      ),
      { numRuns: 100 },
    );
  });
});
