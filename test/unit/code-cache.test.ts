// The V8 code cache of the command-line bundles (src/meta/code-cache.ts), through the built
// loader (dist/bundle/load.cjs) in real Node processes: when a cache is written, which one is
// trusted, and that a bundle loaded through it behaves as require() would have it.

import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';

const LOADER = path.resolve('dist/bundle/load.cjs');

describe.skipIf(!existsSync(LOADER))('code cache of a bundle', () => {
  let dir: string;
  let bundle: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'tsvmm-code-cache-'));
    bundle = path.join(dir, 'b.cjs');
    writeFileSync(path.join(dir, 'dep.cjs'), 'module.exports = 41;\n');
    // A bundle as esbuild writes one: module.exports, a relative require, its own file name.
    writeFileSync(bundle, [
      '"use strict";',
      'const dep = require("./dep.cjs");',
      'module.exports = { answer: () => dep + 1, file: __filename, dir: __dirname };',
      'if (process.env.FAIL) process.exitCode = 3;',
    ].join('\n'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** Loads the bundle in a new Node as bin/tsvmm.js does; returns what it printed. */
  const load = (flavour: string, env: Record<string, string> = {}) => {
    const script = `const m = require(${JSON.stringify(LOADER)}).loadBundle(${JSON.stringify(bundle)}, ${JSON.stringify(flavour)});`
      + 'console.log(JSON.stringify({ answer: m.answer(), file: m.file, dir: m.dir }));';
    const run = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, ...env } });
    return { status: run.status, out: run.stdout.trim() ? JSON.parse(run.stdout) as { answer: number; file: string; dir: string } : undefined, stderr: run.stderr };
  };
  const caches = () => readdirSync(dir).filter((f) => f.endsWith('.v8cache')).sort();

  it('runs the bundle as require() would, and the first successful run leaves a cache for its command word', () => {
    const first = load('run');
    expect(first.status, first.stderr).toBe(0);
    expect(first.out).toEqual({ answer: 42, file: bundle, dir });
    expect(caches()).toEqual(['b.cjs.run.v8cache']);
    expect(statSync(path.join(dir, 'b.cjs.run.v8cache')).mode & 0o777).toBe(0o644);
    const before = statSync(path.join(dir, 'b.cjs.run.v8cache')).mtimeMs;
    expect(load('run').out?.answer).toBe(42);
    // Taken and accepted: not written again.
    expect(statSync(path.join(dir, 'b.cjs.run.v8cache')).mtimeMs).toBe(before);
    load('container');
    expect(caches()).toEqual(['b.cjs.container.v8cache', 'b.cjs.run.v8cache']);
  });

  it('writes none for a failed run, when turned off, or for a word that is no plain name', () => {
    expect(load('run', { FAIL: '1' }).status).toBe(3);
    expect(load('run', { TSVMM_CODE_CACHE: '0' }).status).toBe(0);
    load('../../etc/x');
    expect(caches()).toEqual(['b.cjs.other.v8cache']);
  });

  it('does not trust a cache that others may write: it compiles afresh and replaces it', () => {
    const cache = path.join(dir, 'b.cjs.run.v8cache');
    writeFileSync(cache, 'not V8 code');
    chmodSync(cache, 0o666);
    expect(load('run').out?.answer).toBe(42);
    expect(statSync(cache).mode & 0o777).toBe(0o644);
    expect(statSync(cache).size).toBeGreaterThan(100);
  });

  it('takes a damaged cache as no cache (V8 refuses it) and replaces it', () => {
    const cache = path.join(dir, 'b.cjs.run.v8cache');
    writeFileSync(cache, Buffer.alloc(64, 7), { mode: 0o644 });
    expect(load('run').out?.answer).toBe(42);
    expect(statSync(cache).size).not.toBe(64);
  });
});
