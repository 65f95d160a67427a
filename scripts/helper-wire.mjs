#!/usr/bin/env node
// Writes native/helper-wire.h, the C structs and decoders of what TypeScript hands to the helper,
// from the layouts in src/container/plan-layout.ts (as tsc built them into dist/). Run by `npm run
// build`; the header is kept in the tree, since `npm install` compiles the helper before it builds
// TypeScript, and test/unit/helper-wire.test.ts fails if it is not the one the layouts make.

import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const { HELPER_MESSAGES } = await import(path.join(ROOT, 'dist/container/plan-layout.js'));
const { generateHelperHeader } = await import(path.join(ROOT, 'dist/container/wire-c.js'));
writeFileSync(path.join(ROOT, 'native/helper-wire.h'), generateHelperHeader(HELPER_MESSAGES, 'src/container/plan-layout.ts'));
