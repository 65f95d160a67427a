#!/usr/bin/env node
// tsvmm-runc in Node (src/runtime/cli.ts): what bin/tsvmm-runc's C fast path leaves to it.
import { main } from '../dist/bundle/runc.js';

process.exitCode = await main();
