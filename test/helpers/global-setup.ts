// vitest's globalSetup: at the end of the run, the run's temporary directory goes (test-tmp.ts).

import { removeTestTmp } from './test-tmp.js';

export function teardown(): void {
  const dir = process.env.TSVMM_TEST_TMP;
  if (dir) removeTestTmp(dir);
}
