// Disk image locking as QEMU does it (block/file-posix.c, raw_apply_lock_bytes and
// raw_check_lock_bytes), so that two VMs never write one image, and tsvmm and QEMU see each
// other's locks. Open-file-description locks (fcntl F_OFD_SETLK) on single bytes of the image:
//
//   byte 100 + p   held (shared) by every user that has permission p
//   byte 200 + p   held (shared) by every user that does not let others have permission p
//
// with p = 0 for consistent reads and 1 for writes. A user takes its own bytes, then checks that
// nobody holds "200 + p" for a permission it has, nor "100 + p" for one it refuses to share. As
// in QEMU with share-rw=off, every user refuses to share writes: readers (`,ro`) share with
// readers, a writer shares with nobody. The locks go with the file descriptor: closing it (or
// the process ending, however it ends) releases them.

import { addon, errnoName } from '../kvm/addon.js';
import { TsvmmError } from '../errors.js';

const F_RDLCK = 0;
const F_WRLCK = 1;
const F_UNLCK = 2;
const PERM_BASE = 100;
const SHARED_BASE = 200;

const enum Perm {
  ConsistentRead = 0,
  Write = 1,
}

/** Filesystems without OFD locks (some network ones): QEMU then goes on without locking, and so do we. */
const UNSUPPORTED = new Set(['EINVAL', 'ENOLCK', 'EOPNOTSUPP', 'ENOTSUP']);

export class DiskLockError extends TsvmmError {
  constructor(message: string) {
    super('DISK_LOCKED', message);
    this.name = 'DiskLockError';
  }
}

/**
 * Locks the image open as `fd` for a reader or a writer, or throws DiskLockError saying who is in
 * the way. `what` names the disk in messages ("disk a.img").
 */
export function lockDisk(fd: number, what: string, readOnly: boolean): void {
  const native = addon();
  const perms = readOnly ? [Perm.ConsistentRead] : [Perm.ConsistentRead, Perm.Write];
  const unshared = [Perm.Write];
  const lockByte = (byte: number) => {
    const rc = native.ofdLock(fd, false, F_RDLCK, byte, 1);
    if (rc === 0) return true;
    const name = errnoName(-rc);
    if (UNSUPPORTED.has(name)) return false;
    // EAGAIN: someone holds an exclusive lock on the byte (QEMU does for a moment, while it checks).
    throw new DiskLockError(`${what}: cannot lock it (${name === 'EAGAIN' ? 'another process is locking it right now' : name}); try again`);
  };
  const heldByOthers = (byte: number) => {
    const rc = native.ofdLock(fd, true, F_WRLCK, byte, 1);
    if (rc < 0) return false;
    return rc !== F_UNLCK;
  };
  for (const p of perms) if (!lockByte(PERM_BASE + p)) return;
  for (const p of unshared) if (!lockByte(SHARED_BASE + p)) return;
  // Who is in the way: someone refusing a permission we have, or having one we refuse to share.
  if (perms.some((p) => heldByOthers(SHARED_BASE + p))) {
    throw new DiskLockError(`${what}: another VM is using it (the image is locked); stop that VM first, or give both ,ro to share it read-only`);
  }
  if (unshared.some((p) => heldByOthers(PERM_BASE + p))) {
    throw new DiskLockError(`${what}: another VM is writing it (the image is locked for writing); stop that VM first`);
  }
}
