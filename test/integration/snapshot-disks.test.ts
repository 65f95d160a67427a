// A snapshot finds its disks again: by absolute path, checked to be the same file, and where the
// user says a disk moved. Through the real CLI, from other working directories.

import { copyFileSync, mkdirSync, mkdtempSync, renameSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { kvmMissingReason, TEST_ELF } from '../helpers/kvm.js';
import { expectOneLineError, tsvmm } from '../helpers/cli.js';

const root = mkdtempSync(path.join(tmpdir(), 'tsvmm-snapdisk-'));
const dirA = path.join(root, 'a');
const dirB = path.join(root, 'b');
const dirC = path.join(root, 'c');
for (const d of [dirA, dirB, dirC]) mkdirSync(d);
const tag = `${process.pid}`;


function image(file: string, size: number) {
  writeFileSync(file, '');
  truncateSync(file, size);
}


describe.skipIf(kvmMissingReason)('snapshots and their disks', () => {
  const names: string[] = [];
  afterAll(() => { for (const n of names) tsvmm(['stop', n]); });
  const stop = async (name: string) => {
    tsvmm(['stop', name]);
    await expect.poll(() => tsvmm(['ps', '--json']).stdout, { timeout: 10_000 }).not.toContain(`"${name}"`);
  };
  const restoreInBackground = (name: string, args: string[], cwd?: string) => {
    names.push(name);
    const r = tsvmm(['restore', ...args, '--detach', '--name', name], { cwd });
    expect(r.code, r.stderr).toBe(0);
  };

  const snap = path.join(root, 'vm.snap');
  const original = path.join(dirA, 'rel.img');

  it('a disk given by a relative path is found from another directory, not a file of that name there', async () => {
    image(original, 1 << 20);
    image(path.join(dirB, 'rel.img'), 2 << 20);
    const name = `snapdisk-${tag}`;
    names.push(name);
    const r = tsvmm(['run', '--detach', '--name', name, '--kernel', TEST_ELF, '--cmdline', 'mode=halt', '--mem', '32M', '--disk', 'rel.img'], { cwd: dirA });
    expect(r.code, r.stderr).toBe(0);
    expect(tsvmm(['snapshot', name, snap]).code).toBe(0);
    await stop(name);

    restoreInBackground(`snapdisk-r-${tag}`, [snap], dirB);
    // The restored VM has a/rel.img (locked by it), not b/rel.img.
    expectOneLineError(tsvmm(['run', '--kernel', TEST_ELF, '--cmdline', 'mode=info', '--mem', '32M', '--disk', original]), /another VM is using it/);
    await stop(`snapdisk-r-${tag}`);
  });

  it('a moved disk: refused with a hint, then found where --disk-path says', async () => {
    const moved = path.join(dirC, 'moved.img');
    renameSync(original, moved);
    expectOneLineError(tsvmm(['restore', snap]), new RegExp(`disk ${original}: no such file; if the disk moved, say where it is now \\(restore --disk-path ${original}=NEW\\)`));
    restoreInBackground(`snapdisk-m-${tag}`, [snap, '--disk-path', `${original}=${moved}`]);
    await stop(`snapdisk-m-${tag}`);
    renameSync(moved, original);
  });

  it('another file at the disk\'s path, or a disk of another size, is refused', async () => {
    const copy = path.join(dirC, 'copy.img');
    copyFileSync(original, copy);
    renameSync(copy, original); // same path and size, another file
    expectOneLineError(tsvmm(['restore', snap]), /is another file than the one the snapshot was taken with/);
    // The user vouches for the copy.
    restoreInBackground(`snapdisk-c-${tag}`, [snap, '--disk-path', `${original}=${original}`]);
    await stop(`snapdisk-c-${tag}`);
    const other = path.join(dirC, 'other.img');
    image(other, 3 << 20);
    expectOneLineError(tsvmm(['restore', snap, '--disk-path', `${original}=${other}`]), /is 3145728 bytes, the snapshot's disk was 1048576/);
    expectOneLineError(tsvmm(['restore', snap, '--disk-path', `${path.join(dirC, 'nope.img')}=${other}`]), /has no such disk/);
    expectOneLineError(tsvmm(['restore', snap, '--disk-path', 'x']), /--disk-path x: use OLD=NEW/);
  });
});
