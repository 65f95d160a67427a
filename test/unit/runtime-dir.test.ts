// The runtime directory: what tsvmm does with the path it is given, on the real file system.

import { mkdirSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ensureRuntimeDir } from '../../src/api/runtime-dir.js';

const root = mkdtempSync(path.join(tmpdir(), 'tsvmm-rundir-'));

describe('the runtime directory', () => {
  it('creates a missing one, and its missing parents, owner-only', () => {
    const dir = path.join(root, 'new', 'deeper', 'tsvmm');
    expect(ensureRuntimeDir(dir)).toBe(dir);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
  });

  it('uses an existing directory as it is, never changing its mode', () => {
    const shared = path.join(root, 'shared');
    mkdirSync(shared, { mode: 0o755 });
    ensureRuntimeDir(shared);
    expect(statSync(shared).mode & 0o777).toBe(0o755);
  });

  it('refuses a file, or a path through a file, in one line naming the directory', () => {
    const file = path.join(root, 'a-file');
    writeFileSync(file, '');
    expect(() => ensureRuntimeDir(file)).toThrow(`runtime directory ${file}: exists and is not a directory`);
    expect(() => ensureRuntimeDir(path.join(file, 'sub'))).toThrow(`runtime directory ${path.join(file, 'sub')}: ${file} is not a directory`);
  });

  it('fails at once where no directory can be made (under /proc), instead of trying forever', () => {
    const started = performance.now();
    expect(() => ensureRuntimeDir('/proc/tsvmm-test/run')).toThrow(/^runtime directory \/proc\/tsvmm-test\/run: cannot be created \(mkdir \/proc\/tsvmm-test: no such file or directory/);
    expect(performance.now() - started).toBeLessThan(1000);
  });
});
