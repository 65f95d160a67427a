#!/usr/bin/env node
// The tsvmm command. CommonJS (bin/package.json), unlike the rest of the package: `--version`,
// `--help` and `ps` are answered from a CommonJS bundle without starting Node's ES module loader
// (see src/cli/fast.ts); every other command line loads the command line's ES module bundle.
'use strict';

if (require('../dist/bundle/cli-fast.cjs').answerAtOnce(process.argv.slice(2)) === false) {
  import('../dist/bundle/cli.js').then((cli) => cli.cli());
}
