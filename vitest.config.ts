import { defineConfig } from 'vitest/config';

// pool 'forks' keeps a crashing native addon from taking the runner down with it.
// testTimeout is a guard against a hung test, not a speed limit: tests wait for events (a process
// started, a record written) with their own hang guards (test/helpers/load.ts HANG_MS, 60 s), and
// a test that waits for a few of them in a row on a 2-core host at load average 16 still ends
// well within 180 s. Nothing in the suite asserts how fast it ran (bench/ measures that).
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 180_000,
  },
});
