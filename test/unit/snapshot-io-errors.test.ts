// A snapshot that cannot be written says why in words, about the file the user named: never the
// temporary file it writes first, never Node's "EACCES: permission denied, open '...'" text.

import { chmodSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { writeSnapshot } from '../../src/snapshot/index.js';

const input = {
  vm: {}, vcpus: 1, states: new Map(), devices: new Map(),
  memory: [{ name: 'ram0', guestAddress: 0, size: 4096, source: new Uint8Array(4096) }],
};

describe('snapshot write errors', () => {
  it('a directory that does not exist, or is not a directory', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tsvmm-snaperr-'));
    const target = path.join(dir, 'missing', 'vm.snap');
    await expect(writeSnapshot(target, input)).rejects.toThrow(`${target}: cannot write snapshot: no such file`);
    const unwritable = path.join(dir, 'ro');
    mkdirSync(unwritable);
    chmodSync(unwritable, 0o500);
    const error = await writeSnapshot(path.join(unwritable, 'vm.snap'), input).catch((e: Error) => e);
    // As root the directory's mode does not stop us; elsewhere the reason is plain words.
    if (error instanceof Error) {
      expect(error.message).not.toMatch(/\.tmp|EACCES|open '/);
      expect(error.message).toMatch(/cannot write snapshot: permission denied$/);
    }
  });
});
