// The native addon's wrappers, called directly: each is one system call that reports failure
// as a negative errno and never throws for it.

import { execFileSync } from 'node:child_process';
import { closeSync, constants, fstatSync, mkdtempSync, openSync, readdirSync, readFileSync, readSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { addon, EFD_NONBLOCK, MAP_ANONYMOUS, MAP_PRIVATE, O_RDWR, PROT_READ, PROT_WRITE } from '../../src/kvm/addon.js';
import { Kvm, kvmOpenError } from '../../src/kvm/kvm.js';
import { KVM_CAP } from '../../src/kvm/ioctls.js';
import { kvmMissingReason } from '../helpers/kvm.js';

const native = addon();

describe('native addon', () => {
  it('returns -errno instead of throwing for a failed open, ioctl or close', () => {
    expect(native.open('/nonexistent/file', O_RDWR)).toBe(-2); // ENOENT
    expect(native.ioctl(-1, 0xae00, 0)).toBe(-9); // EBADF
    expect(native.bindKvmRun(-1)).toBe(-9);
    expect(native.close(-1)).toBe(-9);
  });

  it('binds KVM_RUN to a descriptor: the function returns its result or -errno', () => {
    const fd = native.open('/dev/null', O_RDWR);
    try {
      const bound = native.bindKvmRun(fd); // on a file that has no such request
      if (typeof bound === 'number') throw new Error(`bindKvmRun: ${bound}`);
      expect(bound()).toBe(-25); // ENOTTY
      expect(bound()).toBe(-25);
      expect(() => new (bound as unknown as new () => object)()).toThrow(TypeError);
      expect(() => native.bindKvmRun('x' as unknown as number)).toThrow();
    } finally {
      native.close(fd);
    }
  });

  it('hands a descriptor to a closer that closes it, holds nothing else once the call returns, and leaves no zombie', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tsvmm-closer-'));
    const fifo = (name: string) => {
      const file = path.join(dir, name);
      execFileSync('mkfifo', [file]);
      const read = openSync(file, constants.O_RDONLY | constants.O_NONBLOCK);
      return { read, write: openSync(file, constants.O_WRONLY) };
    };
    // A FIFO reads end-of-file once no one holds its write end: neither this process nor a closer.
    const ended = async (fd: number) => {
      for (let i = 0; i < 200; i++) {
        try {
          if (readSync(fd, Buffer.alloc(1)) === 0) return true;
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
        }
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      return false;
    };
    const handed = fifo('handed');
    const other = fifo('other');
    try {
      expect(native.closeInBackground(handed.write)).toBe(0);
      expect(() => fstatSync(handed.write)).toThrow(/EBADF/); // this process's copy is gone at once
      // Nothing else of ours is held anywhere once the call returns: the other FIFO's end is ours
      // alone, so closing it ends the stream there and then (a lock or a pipe is released as if
      // there were no closer).
      closeSync(other.write);
      expect(readSync(other.read, Buffer.alloc(1))).toBe(0);
      expect(await ended(handed.read)).toBe(true); // and the closer closed the one handed to it
      // Closers are this process's children, reaped when their slot is taken again: they do not
      // pile up as zombies, whatever init does with orphans.
      for (let i = 0; i < 20; i++) expect(native.closeInBackground(native.eventfd(0, EFD_NONBLOCK))).toBe(0);
      await new Promise((resolve) => setTimeout(resolve, 300));
      expect(native.closeInBackground(native.eventfd(0, EFD_NONBLOCK))).toBe(0); // reaps the ended ones
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(zombieChildren()).toBeLessThanOrEqual(1);
    } finally {
      closeSync(handed.read);
      closeSync(other.read);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // As a container's first process (init of its PID namespace), where orphans would come back to it.
  const pidNamespaceMissing = process.getuid?.() !== 0 ? 'not root: cannot make a PID namespace; closer reaping as init skipped' : undefined;
  it.skipIf(pidNamespaceMissing)('reaps its closers when it is init of its PID namespace', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tsvmm-reaper-'));
    try {
      const script = path.join(dir, 'closers.cjs');
      writeFileSync(script, `
        const native = require(${JSON.stringify(path.resolve('build/Release/tsvmm.node'))});
        const fs = require('node:fs');
        const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
        (async () => {
          for (let i = 0; i < 30; i++) { native.closeInBackground(native.eventfd(0, 0)); await sleep(5); }
          await sleep(200);
          native.closeInBackground(native.eventfd(0, 0)); // reaps the ended ones
          await sleep(200);
          let zombies = 0;
          for (const pid of fs.readdirSync('/proc').filter((name) => /^\\d+$/.test(name))) {
            try {
              const stat = fs.readFileSync('/proc/' + pid + '/stat', 'utf8');
              const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
              if (Number(ppid) === process.pid && state === 'Z') zombies++;
            } catch {}
          }
          console.log(JSON.stringify({ pid: process.pid, zombies }));
        })();
      `);
      const out = execFileSync('unshare', ['--pid', '--fork', '--mount-proc', process.execPath, script], { encoding: 'utf8' });
      const { pid, zombies } = JSON.parse(out) as { pid: number; zombies: number };
      expect(pid).toBe(1);
      expect(zombies).toBeLessThanOrEqual(1); // at most the last one, which the next call would reap
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('runs an ioctl on a thread of its own, and joins it once', () => {
    expect(native.ioctlStart(-1, 0xae00, new Uint8Array(8))).toBe(-9); // EBADF: no thread for a bad descriptor
    expect(native.ioctlStart(0, 0xae00, new Uint8Array(257))).toBe(-22); // EINVAL: more than it copies
    const fd = native.eventfd(0, EFD_NONBLOCK);
    try {
      const handle = native.ioctlStart(fd, 0x5401 /* TCGETS */, new Uint8Array(60));
      expect(typeof handle).toBe('object');
      expect(native.ioctlJoin(handle as object)).toBe(-25); // ENOTTY, from the thread
      expect(native.ioctlJoin(handle as object)).toBe(-22); // joined already
    } finally {
      closeSync(fd);
    }
  });

  it('maps memory and wraps it in an ArrayBuffer without copying', () => {
    const address = native.mmap(8192, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    expect(typeof address).toBe('bigint');
    const a = new Uint8Array(native.arrayBuffer(address as bigint, 8192));
    const b = new Uint8Array(native.arrayBuffer(address as bigint, 8192));
    a[4100] = 42;
    expect(b[4100]).toBe(42);
    expect(native.addressOf(a.subarray(4096))).toBe((address as bigint) + 4096n);
    expect(native.munmap(address as bigint, 8192)).toBe(0);
    expect(native.mmap(8192, PROT_READ, MAP_PRIVATE, -1, 0)).toBe(-9); // not anonymous, no fd: EBADF
  });

  it('creates eventfds that count writes', () => {
    const fd = native.eventfd(0, EFD_NONBLOCK);
    expect(fd).toBeGreaterThan(2);
    writeSync(fd, new BigUint64Array([3n]));
    writeSync(fd, new BigUint64Array([4n]));
    const value = new BigUint64Array(1);
    readSync(fd, value);
    expect(value[0]).toBe(7n);
    closeSync(fd);
  });

  it('signals a thread with an empty handler installed, without harm', () => {
    expect(native.installEmptySignalHandler(40)).toBe(0);
    expect(native.threadKill(native.threadSelf(), 40)).toBe(0);
    expect(native.installEmptySignalHandler(9)).toBe(-22); // SIGKILL cannot be caught: EINVAL
  });
});

describe('opening KVM', () => {
  it('explains each way /dev/kvm can fail to open', () => {
    expect(kvmOpenError('/dev/kvm', 2)).toMatch(/KVM is not available on this machine/);
    expect(kvmOpenError('/dev/kvm', 13)).toMatch(/permission denied \(run as root or join the group that owns \/dev\/kvm/);
    expect(() => Kvm.open('/proc/version')).toThrow('/proc/version is not a KVM device (KVM_GET_API_VERSION: ENOTTY)');
  });

  it.skipIf(kvmMissingReason)('registers guest memory in the background and joins it before a vCPU runs', async () => {
    const { GuestMemory } = await import('../../src/memory/guest-memory.js');
    const kvm = Kvm.open();
    const vm = kvm.createVm();
    const memory = GuestMemory.allocate([{ start: 0, size: 2 * 1024 * 1024 }, { start: 4 * 1024 * 1024, size: 2 * 1024 * 1024 }]);
    try {
      const join = memory.registerInBackground(vm);
      const vcpu = vm.createVcpu(0); // a vCPU may be created meanwhile
      join();
      join(); // again: nothing more to wait for
      // Registered: the same slot again at another address overlapping slot 1 is refused.
      expect(() => vm.setUserMemoryRegion({ slot: 2, flags: 0, guest_phys_addr: 4n * 1024n * 1024n, memory_size: 4096n, userspace_addr: memory.regions[1]!.hostAddress })).toThrow(/EEXIST/);
      vcpu.close();
      // Its KVM_RUN was bound to the fd (bindKvmRun); closed, it refuses as every other ioctl does.
      expect(() => vcpu.run()).toThrow(/VcpuFd is closed/);
      // A failure comes out of the join, as KVM_SET_USER_MEMORY_REGION's own error.
      const bad = vm.setUserMemoryRegionInBackground({ slot: 3, flags: 0, guest_phys_addr: 123n, memory_size: 4096n, userspace_addr: memory.regions[0]!.hostAddress });
      expect(bad).toThrow(/KVM_SET_USER_MEMORY_REGION failed: EINVAL/);
    } finally {
      memory.close();
      vm.close();
      kvm.close();
    }
  });

  it.skipIf(kvmMissingReason)('reports the capabilities tsvmm needs on this host', () => {
    const kvm = Kvm.open();
    try {
      expect(kvm.checkExtension(KVM_CAP.KVM_CAP_IRQCHIP)).toBeGreaterThan(0);
      expect(kvm.checkExtension(KVM_CAP.KVM_CAP_IMMEDIATE_EXIT)).toBeGreaterThan(0);
      expect(kvm.maxVcpus()).toBeGreaterThanOrEqual(1);
      expect(kvm.supportedCpuid().some((e) => e.function === 1)).toBe(true);
      expect(kvm.msrIndexList().length).toBeGreaterThan(10);
    } finally {
      kvm.close();
    }
  });
});

describe('guest memory mapped from files', () => {
  it('shows file pages where asked, zeros elsewhere, and keeps guest writes out of the file', async () => {
    const { mkdtempSync, openSync, writeSync: write, readFileSync, closeSync: close } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const path = await import('node:path');
    const { GuestMemory } = await import('../../src/memory/guest-memory.js');
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'tsvmm-map-')), 'mem');
    const fd = openSync(file, 'w+');
    const page = (byte: number) => new Uint8Array(4096).fill(byte);
    write(fd, page(0xaa), 0, 4096, 0);
    write(fd, page(0xbb), 0, 4096, 4096);
    const m = GuestMemory.mapFiles([{ start: 0, size: 0x10000 }], [
      { fd, fileOffset: 0, guestAddress: 0x2000, length: 0x2000 },
      { fd, fileOffset: 4096, guestAddress: 0x2000, length: 0x1000 }, // a later extent covers an earlier one
    ]);
    expect(m.readU8(0x1fff)).toBe(0);
    expect(m.readU8(0x2000)).toBe(0xbb);
    expect(m.readU8(0x3000)).toBe(0xbb);
    expect(m.readU8(0x4000)).toBe(0);
    m.writeU8(0x3000, 0x11);
    expect(m.readU8(0x3000)).toBe(0x11);
    expect(readFileSync(file)[4096]).toBe(0xbb); // copy-on-write: the file is untouched
    expect(() => GuestMemory.mapFiles([{ start: 0, size: 0x4000 }], [{ fd, fileOffset: 100, guestAddress: 0, length: 4096 }])).toThrow(/does not fit/);
    m.close();
    close(fd);
  });
});

/** This process's children that have ended and not been reaped (state Z in /proc/PID/stat). */
function zombieChildren(): number {
  let count = 0;
  for (const pid of readdirSync('/proc').filter((name) => /^\d+$/.test(name))) {
    try {
      // pid (comm) state ppid ...: comm may hold spaces and parentheses, so read after the last ')'.
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const [state, ppid] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(ppid) === process.pid && state === 'Z') count++;
    } catch { /* ended meanwhile */ }
  }
  return count;
}
