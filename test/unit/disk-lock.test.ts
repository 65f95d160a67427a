// Disk image locks (QEMU's byte-range scheme over OFD locks): real locks on a real file. OFD
// locks belong to the open file, so two descriptors in this one process stand for two VMs.

import { closeSync, mkdtempSync, openSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { lockDisk } from '../../src/vmm/disk-lock.js';

const image = path.join(mkdtempSync(path.join(tmpdir(), 'tsvmm-lock-')), 'disk.img');
writeFileSync(image, Buffer.alloc(4096));
const opened: number[] = [];
const user = (readOnly: boolean) => {
  const fd = openSync(image, readOnly ? 'r' : 'r+');
  opened.push(fd);
  lockDisk(fd, 'disk disk.img', readOnly);
  return fd;
};

afterEach(() => { for (const fd of opened.splice(0)) closeSync(fd); });

describe('disk image locks', () => {
  it('a writer excludes every other user, writer or reader', () => {
    user(false);
    expect(() => user(false)).toThrow('disk disk.img: another VM is using it (the image is locked)');
    expect(() => user(true)).toThrow('disk disk.img: another VM is writing it');
  });

  it('readers share, and keep writers out', () => {
    user(true);
    user(true);
    expect(() => user(false)).toThrow(/another VM is using it/);
  });

  it('closing the image releases its locks', () => {
    const fd = user(false);
    closeSync(fd);
    opened.splice(opened.indexOf(fd), 1);
    user(false);
  });
});
