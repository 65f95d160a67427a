#!/bin/sh
':' //; unset NODE_EXTRA_CA_CERTS; exec node "$0" "$@"
// The tsvmm command. The line above is for sh, which runs this file first (`tsvmm`,
// `bin/tsvmm.js`), and a string and a comment for JavaScript: it starts Node on this same file
// without NODE_EXTRA_CA_CERTS. Node 20 reads and parses that certificate file, and builds its root
// store, before any script runs (36 of the 62 ms `node -e 0` takes on this project's machines,
// where it is set system-wide), and tsvmm makes no TLS connection; what it runs (guests,
// containers, hooks) gets its own environment, not ours. `node bin/tsvmm.js` works too and pays
// for the file. (Not `#!/usr/bin/env -S -u ...`: busybox's env and older coreutils lack -S.)
//
// The command is CommonJS (bin/package.json), unlike the rest of the package, as are the
// bundles it loads (scripts/bundle.mjs): Node's ES module loader never starts. `--version`,
// `--help` and `ps` are answered by a small bundle of their own (src/cli/fast.ts); every other
// command line by the command line's bundle. Both are compiled from V8's code cache of the same
// command word when there is one (src/meta/code-cache.ts): every command asks the small one
// first, and compiling it from source was ~4 ms here.
'use strict';

const argv = process.argv.slice(2);
const { loadBundle } = require('../dist/bundle/load.cjs');
const bundle = (name) => loadBundle(`${__dirname}/../dist/bundle/${name}`, argv[0] ?? '');
if (bundle('cli-fast.cjs').answerAtOnce(argv) === false) bundle('cli.cjs').cli();
