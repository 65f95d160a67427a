// Where the package is and which version it is. Every module of tsvmm sits two folders below the
// package root, whether it runs as src/<concern>/*.ts (tests), dist/<concern>/*.js (tsc) or
// dist/bundle/*.js (the esbuild bundles, scripts/bundle.mjs): `../..` is the root in all three.

import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

let cachedVersion: string | undefined;

/** package.json's version, or 'unknown' if it cannot be read. */
export function packageVersion(): string {
  if (cachedVersion === undefined) {
    try {
      const version = (JSON.parse(readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version?: unknown }).version;
      cachedVersion = typeof version === 'string' ? version : 'unknown';
    } catch {
      cachedVersion = 'unknown';
    }
  }
  return cachedVersion;
}
