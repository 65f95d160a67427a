// A real Linux kernel for the bzImage tests: Debian's cloud kernel, fetched once into .cache/ by
// scripts/fetch-debian-kernel.sh. Tests that need it fail with one clear line when it cannot be
// had, rather than skip: these machines and CI have the Debian registry.

import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

/** Allow for a first download (~27 MB) on a slow mirror. */
export const FETCH_TIMEOUT_MS = 300_000;

export async function fetchDebianKernel(): Promise<string> {
  try {
    const { stdout } = await promisify(execFile)('sh', ['scripts/fetch-debian-kernel.sh'], { timeout: FETCH_TIMEOUT_MS });
    return stdout.trim();
  } catch (error) {
    const { stderr, message } = error as { stderr?: string; message: string };
    const reason = stderr?.trim().split('\n').pop() || message;
    throw new Error(`cannot get the Debian test kernel (scripts/fetch-debian-kernel.sh: ${reason}); these tests need apt and the Debian package registry`);
  }
}
