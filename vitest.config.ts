import { defineConfig } from 'vitest/config';
import path from 'node:path';

export default defineConfig({
  resolve: {
    // Integration tests use the package as users do: the built library, whose vCPU workers are plain JS.
    alias: { tsvmm: path.resolve(__dirname, 'dist/index.js') },
  },
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // KVM tests are CPU-bound on a 2-core machine; running files one at a time keeps timings sane.
    fileParallelism: false,
  },
});
