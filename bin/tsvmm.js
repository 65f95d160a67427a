#!/usr/bin/env node
import { main } from '../dist/cli/main.js';
import { reportError } from '../dist/cli/output.js';

main().catch((error) => {
  process.exitCode = reportError(error);
});
