import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration and e2e tests start real processes; give them room, and no retries: a flaky test is a bug.
    testTimeout: 60_000,
    hookTimeout: 90_000,
    pool: 'forks',
    reporters: ['default'],
  },
});
