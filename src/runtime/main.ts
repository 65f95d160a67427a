// tsvmm-runc's Node entry (dist/bundle/runc.cjs, run by bin/tsvmm-runc's C front end for what its
// fast path leaves): runs one command and exits with its status.

import { main } from './cli.js';

void main().then((code) => {
  process.exitCode = code;
});
