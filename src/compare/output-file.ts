// The files `tsvmm compare` writes (--html, the latest results): checked before any measuring, so
// that a bad path costs a line at once and not minutes of work, and written whole (a temporary
// file in the same directory, renamed), so that nobody finds half a report.

import { statSync, writeFileSync } from 'node:fs';
import { removeFile } from '../meta/remove-file.js';
import path from 'node:path';
import { TsvmmError } from '../errors.js';

/**
 * Checks that `file` can be written as `flag`'s output: not a directory, in a directory that
 * exists and takes a new file (a probe file is made and removed). Returns the absolute path.
 */
export function checkOutputFile(flag: string, file: string): string {
  if (!file.trim()) throw new TsvmmError('BAD_CONFIG', `${flag} needs a file name`);
  const target = path.resolve(file);
  const fail = (why: string) => new TsvmmError('BAD_CONFIG', `${flag} ${file}: ${why}`);
  try {
    if (statSync(target).isDirectory()) throw fail('is a directory; name a file in it');
  } catch (error) {
    if (error instanceof TsvmmError) throw error;
    if ((error as NodeJS.ErrnoException).code === 'ENOTDIR') throw fail(`${path.dirname(target)} is not a directory`);
  }
  const dir = path.dirname(target);
  let st;
  try {
    st = statSync(dir);
  } catch {
    throw fail(`the directory ${dir} does not exist`);
  }
  if (!st.isDirectory()) throw fail(`${dir} is not a directory`);
  const probe = path.join(dir, `.${path.basename(target)}.${process.pid}.probe`);
  try {
    writeFileSync(probe, '');
  } catch (error) {
    throw fail(`cannot write in ${dir} (${(error as NodeJS.ErrnoException).code ?? String(error)})`);
  } finally {
    removeFile(probe);
  }
  return target;
}
