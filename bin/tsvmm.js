#!/usr/bin/env node
import { cli } from '../dist/bundle/cli.js';

await cli();
