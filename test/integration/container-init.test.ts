// The helper on its own: what it answers on fd 3 when the plan it is given is not one it can
// carry out. (Good plans are exercised by every container test.)

import { spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import type { Duplex } from 'node:stream';
import { describe, expect, it } from 'vitest';

const HELPER = path.resolve('build/Release/container-init');
const missing = (() => {
  try {
    accessSync(HELPER, constants.X_OK);
    return undefined;
  } catch {
    return `${HELPER} is not built: skipped`;
  }
})();

/** Runs the helper with `input` on fd 3; resolves with its answer lines and exit code. */
function helper(input: string): Promise<{ lines: unknown[]; code: number | null }> {
  return new Promise((resolve) => {
    const child = spawn(HELPER, [], { stdio: ['ignore', 'ignore', 'ignore', 'pipe'] });
    const channel = child.stdio[3] as Duplex;
    let out = '';
    channel.on('data', (d: Buffer) => { out += d.toString(); });
    channel.on('error', () => {});
    channel.end(input);
    child.on('close', (code) => resolve({ lines: out.split('\n').filter(Boolean).map((l) => JSON.parse(l)), code }));
  });
}

describe.skipIf(missing)('container-init given a bad plan', () => {
  it('answers one error line and exits 125, for JSON it cannot read', async () => {
    for (const [plan, why] of [
      ['{"version": 1, "cloneFlags": ', 'unexpected end'],
      ['{"version": 1.5}', 'only whole numbers that fit 64 bits'],
      ['{"version": "\\ud800"}', 'lone surrogate'],
      ['[1, 2]', 'not an object'],
      ['{"a": "\\u0000"}', 'NUL in string'],
    ]) {
      const { lines, code } = await helper(`${plan}\n`);
      expect(code).toBe(125);
      expect(lines).toEqual([{ error: { step: 'plan', message: `the plan is not valid JSON (${why})`, errno: 0 } }]);
    }
  });

  it('refuses a plan of another version or shape, before creating anything', async () => {
    expect((await helper('{"version": 2}\n')).lines).toEqual([{ error: { step: 'plan', message: 'plan version 2 is not 1 (tsvmm and container-init do not match)', errno: 0 } }]);
    expect((await helper('{"version": 1, "cloneFlags": "all"}\n')).lines).toEqual([{ error: { step: 'plan', message: 'plan field "cloneFlags" is missing or of the wrong type', errno: 0 } }]);
    const eof = await helper('');
    expect(eof.code).toBe(125);
    expect(eof.lines).toEqual([{ error: { step: 'plan', message: 'reading the plan: Broken pipe', errno: 32 } }]);
  });

  it('says it must be run by tsvmm when fd 3 is not there', async () => {
    const child = spawn(HELPER, [], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    const code = await new Promise((resolve) => child.on('close', resolve));
    expect(code).toBe(125);
    expect(err).toBe('container-init: run by tsvmm only (fd 3 must be its channel)\n');
  });
});
