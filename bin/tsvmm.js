#!/usr/bin/env node
// The tsvmm command. CommonJS (bin/package.json), unlike the rest of the package, as are the
// bundles it loads (scripts/bundle.mjs): Node's ES module loader never starts. `--version`,
// `--help` and `ps` are answered by a small bundle of their own (src/cli/fast.ts); every other
// command line by the command line's bundle.
'use strict';

if (require('../dist/bundle/cli-fast.cjs').answerAtOnce(process.argv.slice(2)) === false) {
  require('../dist/bundle/cli.cjs').cli();
}
