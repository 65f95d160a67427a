#!/usr/bin/env node
// The tsvmm command. CommonJS (bin/package.json), unlike the rest of the package, as are the
// bundles it loads (scripts/bundle.mjs): Node's ES module loader never starts. `--version`,
// `--help` and `ps` are answered by a small bundle of their own (src/cli/fast.ts); every other
// command line by the command line's bundle, compiled from V8's code cache of the same command
// word when there is one (src/meta/code-cache.ts).
'use strict';

const argv = process.argv.slice(2);
if (require('../dist/bundle/cli-fast.cjs').answerAtOnce(argv) === false) {
  require('../dist/bundle/load.cjs').loadBundle(`${__dirname}/../dist/bundle/cli.cjs`, argv[0] ?? '').cli();
}
