// Running the real `tsvmm` command from tests, and what a user error must look like.

import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { expect } from 'vitest';

const BIN = path.resolve('bin/tsvmm.js');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function tsvmm(args: string[], options: { input?: string; env?: Record<string, string>; cwd?: string } = {}): CliResult {
  const result = spawnSync(process.execPath, [BIN, ...args], {
    input: options.input ?? '', encoding: 'utf8', timeout: 60_000, cwd: options.cwd,
    env: { ...process.env, ...options.env },
  });
  return { code: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** A user error: exit code 1, exactly one line on stderr, no stack trace. */
export function expectOneLineError(r: CliResult, message: RegExp): void {
  expect(r.code, r.stderr).toBe(1);
  const lines = r.stderr.trim().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^tsvmm: error: /);
  expect(lines[0]).toMatch(message);
}
