import { defineConfig } from 'vitest/config';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export default defineConfig({
  resolve: {
    // Integration tests use the package as users do: the built library (the bundle, scripts/bundle.mjs), whose vCPU workers are plain JS.
    alias: { tsvmm: path.resolve(__dirname, 'dist/bundle/index.js') },
  },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // KVM tests are CPU-bound on a 2-core machine; running files one at a time keeps timings sane.
    fileParallelism: false,
    // VMs started by the tests register here, not in the user's runtime directory.
    env: {
      TSVMM_RUNTIME_DIR: mkdtempSync(path.join(tmpdir(), 'tsvmm-test-run-')),
      // `tsvmm compare` saves its results for the dashboard; tests must not overwrite the user's.
      TSVMM_COMPARE_RESULTS: path.join(mkdtempSync(path.join(tmpdir(), 'tsvmm-test-compare-')), 'compare-latest.json'),
    },
  },
});
