import { defineConfig } from 'vitest/config';

// pool 'forks' keeps a crashing native addon from taking the runner down with it.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    pool: 'forks',
    testTimeout: 60_000,
  },
});
