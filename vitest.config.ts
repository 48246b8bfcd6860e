import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // Integration tests share one kernel: run files one after another.
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
    projects: [
      // Pure parts, run from the TypeScript sources: no build, no root.
      { extends: true, test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      // Against the real kernel, through the compiled CLI: global-setup compiles it first.
      { extends: true, test: { name: 'e2e', include: ['test/e2e/**/*.test.ts'], globalSetup: ['test/e2e/global-setup.ts'] } },
    ],
  },
});
