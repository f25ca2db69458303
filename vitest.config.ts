import { defineConfig } from 'vitest/config';
import { SummaryReporter } from './test/summary-reporter.js';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Integration and e2e tests start real processes; give them room, and no retries: a flaky test is a bug.
    testTimeout: 60_000,
    hookTimeout: 90_000,
    pool: 'forks',
    // Two cores: e2e suites each start Prometheus + Alertmanager + processes; keep parallelism modest.
    maxWorkers: 2,
    reporters: ['default', new SummaryReporter()],
  },
});
