// One temporary directory per `npm test` (vitest.config.ts): TMPDIR of every test and of what the
// tests start, and the runtime and compare directories under it. The whole of it goes at the end
// (globalSetup's teardown), so a run leaves nothing in /tmp however its tests clean up.

import { mkdtempSync, chmodSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseMountinfo } from '../../src/meta/mountinfo.js';

/** Made once, in the process that reads vitest.config.ts; the workers get it through `env`. */
export function makeTestTmp(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'tsvmm-test-'));
  // As /tmp is: tests run processes as other users (user namespaces, another uid) on files in it.
  chmodSync(dir, 0o1777);
  return dir;
}

/** Mount points at or under `dir` in our mount namespace: a recursive removal must not go into one. */
export function mountsUnder(dir: string): string[] {
  return parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8')).map((m) => m.mountPoint)
    .filter((point) => point === dir || point.startsWith(`${dir}/`));
}

/** Removes the run's directory, unless a test left something mounted in it (said, and kept). */
export function removeTestTmp(dir: string): void {
  const mounted = mountsUnder(dir);
  if (mounted.length) {
    process.stderr.write(`test: kept ${dir}: still mounted there: ${mounted.join(', ')}\n`);
    return;
  }
  rmSync(dir, { recursive: true, force: true });
}
