// Removing a file that may already be gone, the one way the project does it. fs.rmSync(path,
// { force: true }) does it too, but loads Node's rimraf module and stats before it unlinks: on the
// path of every `run`, which removes a few such files (a stale socket and outcome, then its record
// and socket at the end).

import { unlinkSync } from 'node:fs';

/** unlink(path); a file that is not there is not an error. */
export function removeFile(path: string): void {
  try {
    unlinkSync(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}
