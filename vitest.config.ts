import { defineConfig } from 'vitest/config';

// Tests run from TypeScript sources: the `source` export condition points each workspace
// package at src/index.ts, so no build is needed before `vitest`.
const conditions = ['source', 'node', 'import', 'module', 'default'];

export default defineConfig({
  resolve: { conditions },
  // Server-side conditions reach Node as --conditions for external packages too: with `import`
  // among them, a CommonJS package's require() of a dual package gets its ES module build (pg
  // requiring pg-pool then fails), so only `source` is added to Node's own defaults.
  ssr: { resolve: { conditions: ['source', 'node', 'default'], externalConditions: ['source'] } },
  test: {
    include: ['packages/*/src/**/*.spec.ts', 'test/**/*.spec.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Model-heavy suites share two cores; files run in parallel, tests within a file in order.
    maxWorkers: 2,
    reporters: process.env.CI ? ['default'] : ['default'],
  },
});
