import { describe, expect, it } from 'vitest';
import { wait } from '../../../src/actions/wait.js';
import { actionContext, describeActionContract } from './contract.js';

describeActionContract(wait, {
  valid: { duration: '5s' },
  slow: () => ({ duration: '10s' }),
  // wait has no output to cap and nothing that fails.
});

describe('actions/wait', () => {
  it('waits the duration, then succeeds', async () => {
    const t0 = performance.now();
    await expect(wait.run({ duration: '50ms' }, actionContext())).resolves.toEqual({
      status: 'succeeded',
      output: 'waited 50ms',
    });
    expect(performance.now() - t0).toBeGreaterThanOrEqual(45);
  });

  it('rejects a duration that is not one', () => {
    expect(wait.spec.safeParse({ duration: '10sec' }).success).toBe(false);
  });

  it('describe()', () => {
    expect(wait.describe({ duration: '5s' })).toBe('wait 5s');
  });
});
