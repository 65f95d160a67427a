#!/usr/bin/env node
import { main, reportError } from '../dist/bundle/cli.js';

main().catch((error) => {
  process.exitCode = reportError(error);
});
