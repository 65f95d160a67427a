// A file that readers must see whole or not at all (records, state, pid files, reports).

import { renameSync, writeFileSync } from 'node:fs';
import { removeFile } from './remove-file.js';

export interface WriteWholeOptions {
  /** Permissions of a new file (default: 0666 less the umask, as writeFileSync). */
  mode?: number;
  /** The temporary name beside `file` (default `FILE.PID.tmp`); runc's pid files use `.NAME`. */
  temporary?: string;
}

/**
 * Writes `data` to `file` whole: into a temporary file beside it, then renamed over it, so a
 * reader sees the old content or the new, never a part. On failure the temporary file is removed
 * and the error thrown. Not synced to disk: a snapshot's writer does that for itself.
 */
export function writeWhole(file: string, data: string | Uint8Array, options: WriteWholeOptions = {}): void {
  const temporary = options.temporary ?? `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(temporary, data, options.mode === undefined ? undefined : { mode: options.mode });
    renameSync(temporary, file);
  } catch (error) {
    removeFile(temporary);
    throw error;
  }
}
