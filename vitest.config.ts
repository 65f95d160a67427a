import { defineConfig } from 'vitest/config';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { makeTestTmp } from './test/helpers/test-tmp.js';

// Everything a run writes to temporary files goes under one directory, removed at its end.
const testTmp = makeTestTmp();
process.env.TSVMM_TEST_TMP = testTmp;
const under = (name: string) => {
  const dir = path.join(testTmp, name);
  mkdirSync(dir, { mode: 0o700 }); // owner-only, as mkdtemp made them and a runtime directory must be
  return dir;
};

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
    globalSetup: ['./test/helpers/global-setup.ts'],
    env: {
      TMPDIR: testTmp,
      TSVMM_TEST_TMP: testTmp,
      // VMs started by the tests register here, not in the user's runtime directory.
      TSVMM_RUNTIME_DIR: under('run'),
      // `tsvmm compare` saves its results for the dashboard; tests must not overwrite the user's.
      TSVMM_COMPARE_RESULTS: path.join(under('compare'), 'compare-latest.json'),
    },
  },
});
