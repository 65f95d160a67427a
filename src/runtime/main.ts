// tsvmm-runc's Node entry (dist/bundle/runc.cjs), run by bin/tsvmm-runc's C front end: for what
// its fast path leaves, one command, exiting with its status; with --warm-server ROOT BUILD, the
// warm create server of that root (src/runtime/warm-server.ts), which the front end starts.

import { main } from './cli.js';
import { coldIo } from './io.js';

const argv = process.argv.slice(2);
if (argv[0] === '--warm-server') {
  // Loaded only here (esbuild makes a dynamic import a function run on first use): a cold verb does not pay for it.
  void import('./warm-server.js').then(({ serve }) => serve(argv.slice(1)));
} else {
  void main(argv, coldIo()).then((code) => {
    process.exitCode = code;
  });
}
