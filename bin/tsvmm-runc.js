#!/usr/bin/env node
// tsvmm-runc in Node (src/runtime/cli.ts): what bin/tsvmm-runc's C fast path leaves to it. The C
// front end runs dist/bundle/runc.cjs itself; this file is for `node bin/tsvmm-runc.js ...`.
import '../dist/bundle/runc.cjs';
