// An unusable runtime directory, as the CLI reports it: one line, at once, nothing changed.

import { mkdirSync, mkdtempSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { expectOneLineError, tsvmm } from '../helpers/cli.js';

const root = mkdtempSync(path.join(tmpdir(), 'tsvmm-rundir-cli-'));

describe('TSVMM_RUNTIME_DIR that cannot be used', () => {
  it.each([
    ['a file', () => { const f = path.join(root, 'file'); writeFileSync(f, ''); return f; }, /exists and is not a directory/],
    ['a path under /proc', () => '/proc/tsvmm-cli-test', /cannot be created \(mkdir \/proc\/tsvmm-cli-test: no such file or directory/],
  ])('%s: run --detach fails in one line, naming it', (_what, make, message) => {
    const dir = make();
    const r = tsvmm(['run', '--detach', '--name', `rd-${process.pid}`], { env: { TSVMM_RUNTIME_DIR: dir } });
    expectOneLineError(r, new RegExp(`runtime directory ${dir} \\(set by TSVMM_RUNTIME_DIR\\): ${message.source}`));
  });

  it('an existing directory keeps its mode', () => {
    const shared = path.join(root, 'shared');
    mkdirSync(shared, { mode: 0o755 });
    // No VM needs to start for the directory to be set up: a background run with a bad kernel.
    tsvmm(['run', '--detach', '--name', `rd2-${process.pid}`, '--kernel', '/nonexistent'], { env: { TSVMM_RUNTIME_DIR: shared } });
    expect(statSync(shared).mode & 0o777).toBe(0o755);
  });
});
