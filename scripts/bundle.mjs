#!/usr/bin/env node
// Bundles what runs: one minified file per entry point in dist/bundle/, built by `npm run build`
// (so at `npm install`, through `prepare`). Node then reads a few files instead of a hundred and
// more (its ESM loader resolves, reads and compiles each one), which is most of what tsvmm's
// start-up cost beyond Node's own.
//
//   cli-fast.cjs    `tsvmm --version`, `--help` and `ps` (src/cli/fast.ts): bin/tsvmm.js asks it
//                   first, and it is small, so that those answers cost what Node's start costs.
//   cli.cjs         the rest of the command line (bin/tsvmm.js), one file: every command's module
//                   (src/cli/commands.ts imports them dynamically) is in it, but esbuild wraps
//                   what is imported dynamically in a function run on first use, so a command
//                   runs its code and no other command's. One file measured better than ES module
//                   chunks (~24 files for `run`): 13% less CPU and 5.6 MiB less memory for `run`.
//   index.js        the library (package.json "exports"), one file, an ES module.
//   vcpu-worker.js  a vCPU thread, one file: a worker starts a new isolate that loads its own.
//   io-worker.js    the device I/O thread, one file.
//   runc.cjs        bin/tsvmm-runc's Node half, the OCI runtime, one file, run by the C front
//                   end (through bin/tsvmm-runc-node.cjs); an engine pays a process start per verb.
//   load.cjs        loads cli.cjs and runc.cjs with V8's code cache (src/meta/code-cache.ts).
//
// The command-line bundles are CommonJS, not ES modules: Node's ESM loader costs every start a
// few milliseconds and ~3 MiB more (its set-up, and the ESM view of each built-in module, which
// for node:fs loads the streams). In them import.meta.url becomes the file's URL, taken from
// __filename. All the bundles sit in one folder, two below the package root like every source
// module, so that `new URL('./vcpu-worker.js', import.meta.url)` and the `../..` paths to the
// package's files hold (src/meta/package.ts). blessed stays an import of node_modules: it loads
// its widgets and terminfo with computed require() paths, and only the dashboard needs it.
//
//   node scripts/bundle.mjs [--metafile]   (--metafile: also write dist/bundle/meta.json)

import { build } from 'esbuild';
import { rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const OUT = path.join(ROOT, 'dist/bundle');

const common = {
  absWorkingDir: ROOT,
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  outdir: OUT,
  minify: true,
  // Stack traces of internal errors (tsvmm prints them for bugs) map back with --enable-source-maps.
  sourcemap: 'linked',
  external: ['blessed'],
  metafile: true,
  logLevel: 'warning',
};

/**
 * For the CommonJS bundle: the command table's dynamic imports (each command's module) stay out
 * of it, as import()s that the answers it gives never reach. Its own dynamic imports (`ps`) stay
 * in, evaluated only when called.
 */
const commandModulesOutside = {
  name: 'command-modules-outside',
  setup(b) {
    b.onResolve({ filter: /.*/ }, (args) => (args.kind === 'dynamic-import' && args.importer.endsWith('commands.ts') ? { path: args.path, external: true } : undefined));
  },
};

/** A CommonJS bundle (see above): import.meta.url is the file's URL. */
const commonjs = {
  format: 'cjs',
  outExtension: { '.js': '.cjs' },
  define: { 'import.meta.url': '__tsvmmModuleUrl' },
  // import() of what stays outside the bundle (node: built-ins, blessed) becomes require(): a script
  // compiled from V8's code cache (src/meta/code-cache.ts) has no loader for import().
  supported: { 'dynamic-import': false },
  banner: { js: '"use strict";var __tsvmmModuleUrl=require("node:url").pathToFileURL(__filename).href;' },
};

const builds = [
  { ...common, ...commonjs, entryPoints: { 'cli-fast': 'src/cli/fast.ts' }, plugins: [commandModulesOutside] },
  { ...common, ...commonjs, entryPoints: { cli: 'src/cli/main.ts' } },
  { ...common, entryPoints: { index: 'src/index.ts' } },
  { ...common, entryPoints: { 'vcpu-worker': 'src/vmm/vcpu-worker.ts' } },
  { ...common, entryPoints: { 'io-worker': 'src/vmm/io-worker.ts' } },
  { ...common, ...commonjs, entryPoints: { runc: 'src/runtime/main.ts' } },
  { ...common, ...commonjs, entryPoints: { load: 'src/meta/code-cache.ts' }, sourcemap: false },
];

rmSync(OUT, { recursive: true, force: true });
const results = await Promise.all(builds.map((options) => build(options)));
if (process.argv.includes('--metafile')) {
  const merged = { inputs: {}, outputs: {} };
  for (const { metafile } of results) {
    Object.assign(merged.inputs, metafile.inputs);
    Object.assign(merged.outputs, metafile.outputs);
  }
  writeFileSync(path.join(OUT, 'meta.json'), JSON.stringify(merged));
}
