// Loading a command-line bundle (dist/bundle/*.cjs) with V8's code cache. Compiling cli.cjs is
// the largest single cost of a command's start after Node's own (a profile of `tsvmm run`: ~17 ms
// of ~100, more under an emulated CPU), and the same bytes are compiled on every run. V8 can save
// what it compiled and take it back on the next start: Node 22 does this for every module
// (module.enableCompileCache); on Node 20 we do it for our bundles, which are nearly all the code
// a command runs.
//
// The cache is taken at the exit of the first successful run that had none (or whose cache V8 refused: a new
// Node, other V8 flags, a rebuilt bundle), so that it holds the functions that run compiled and not
// only the top level; one per command word, since `run` and `container run` compile different
// halves of one bundle. It sits beside the bundle (npm run build empties that folder) and is used
// only if it belongs to the bundle's owner and nobody else may write it: cached code is code. A
// user who does not own the package reads no cache and writes none. TSVMM_CODE_CACHE=0 turns it
// off.

import { readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Script } from 'node:vm';

/** Node's CommonJS wrapper, on a line of its own so that the bundle's lines and columns stay its own. */
const WRAPPER_HEAD = '(function (exports, require, module, __filename, __dirname) {\n';

/**
 * Runs the CommonJS bundle `file` as require() would and returns its exports, compiled from the
 * cache named for `flavour` (a command word) when there is one to trust.
 */
export function loadBundle(file: string, flavour: string): unknown {
  const source = readFileSync(file, 'utf8');
  const owner = statSync(file).uid;
  const cacheFile = `${file}.${/^[a-z][a-z0-9-]{0,31}$/.test(flavour) ? flavour : 'other'}.v8cache`;
  const enabled = process.env.TSVMM_CODE_CACHE !== '0';
  const cachedData = enabled ? trustedCache(cacheFile, owner) : undefined;
  const script = new Script(`${WRAPPER_HEAD}${source}\n})`, { filename: file, lineOffset: -1, cachedData });
  if (enabled && (cachedData === undefined || script.cachedDataRejected === true) && process.geteuid?.() === owner) {
    // Only a run that succeeded: a mistyped command word would otherwise leave a cache of its own.
    process.once('exit', (code) => { if (code === 0) saveCache(script, cacheFile); });
  }
  const module = { exports: {} as unknown };
  (script.runInThisContext() as (...args: unknown[]) => void)(module.exports, createRequire(file), module, file, path.dirname(file));
  return module.exports;
}

/** The cache file's bytes if it is a regular file of the bundle's owner that no one else may write. */
function trustedCache(cacheFile: string, owner: number): Buffer | undefined {
  try {
    const stat = statSync(cacheFile);
    if (!stat.isFile() || stat.uid !== owner || (stat.mode & 0o022) !== 0) return undefined;
    return readFileSync(cacheFile);
  } catch {
    return undefined;
  }
}

/** Writes the cache whole or not at all (a unique temporary name, then rename): runs at once may race. */
function saveCache(script: Script, cacheFile: string): void {
  const temporary = `${cacheFile}.${process.pid}.tmp`;
  try {
    writeFileSync(temporary, script.createCachedData(), { mode: 0o644, flag: 'wx' });
    renameSync(temporary, cacheFile);
  } catch {
    try {
      unlinkSync(temporary);
    } catch { /* never made */ }
  }
}
