// Loads the native addon (native/tsvmm.c) and describes it. All functions return a negative
// errno on failure instead of throwing; the wrappers in this folder decide what a failure means.

import { createRequire } from 'node:module';
import { constants as osConstants } from 'node:os';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import { TsvmmError } from '../errors.js';

export interface NativeAddon {
  open(path: string, flags: number): number;
  close(fd: number): number;
  /** close(fd) here and in a closer process that ends after it (see native/tsvmm.c): 0, or -errno of the close here. */
  closeInBackground(fd: number): number;
  ioctl(fd: number, request: number, arg: number | bigint | ArrayBufferView): number;
  /**
   * ioctl(fd, request, a copy of arg's bytes, at most 256) on a thread of its own, for one that only
   * reads its argument and mostly waits: a handle for ioctlJoin, or -errno.
   */
  ioctlStart(fd: number, request: number, arg: ArrayBufferView): object | number;
  /** Waits for ioctlStart's ioctl: its result, or -errno (-EINVAL for a second join). */
  ioctlJoin(handle: object): number;
  /**
   * A function that calls ioctl(fd, KVM_RUN, 0) and returns its result or -errno (-EBADF for a
   * negative fd): the per-exit call, made by V8 without N-API's wrapper (native/kvm-run.cc).
   */
  bindKvmRun(fd: number): (() => number) | number;
  mmap(length: number | bigint, prot: number, flags: number, fd: number, offset: number, address?: bigint): bigint | number;
  munmap(address: bigint, length: number | bigint): number;
  madvise(address: bigint, length: number | bigint, advice: number): number;
  arrayBuffer(address: bigint, length: number | bigint): ArrayBuffer;
  addressOf(view: ArrayBufferView): bigint;
  eventfd(initval: number, flags: number): number;
  epollCreate(): number;
  epollCtl(epfd: number, op: number, fd: number, events: number, tag: number): number;
  /** Blocks up to timeoutMs; fills out[2i] = events, out[2i+1] = tag. */
  epollWait(epfd: number, out: Uint32Array, timeoutMs: number): number;
  threadSelf(): bigint;
  threadKill(thread: bigint, signal: number): number;
  installEmptySignalHandler(signal: number): number;
  /** fcntl(F_OFD_SETLK), or F_OFD_GETLK with `test` (then: the conflicting lock's type, F_UNLCK if none). */
  ofdLock(fd: number, test: boolean, type: number, start: number, length: number): number;
  /** recvmsg(MSG_DONTWAIT | MSG_CMSG_CLOEXEC): bytes into `buffer`, SCM_RIGHTS fds into `fds` (the rest -1); more fds than it holds: -EMSGSIZE. */
  recvFds(fd: number, buffer: Uint8Array, fds: Int32Array): number;
  /** getsockopt(SO_PEERCRED): out = [pid, uid, gid]. */
  peerCredentials(fd: number, out: Int32Array): number;
  /**
   * Arms the event-loop watch for the calling (main) thread before a slice of KVM_RUNs: a native
   * thread kicks it (immediate_exit in that kvm_run, then `signal`) once the event loop has work,
   * its earliest timer is due or `ring` (a ByteRing's head and tail) has waited 10 ms unflushed.
   */
  loopWatchArm(kvmRunAddress: bigint, signal: number, ring?: Int32Array): number;
  /** Whether the watch kicked since it was armed: a KVM_RUN interrupted otherwise need not end the slice. */
  loopWatchKicked(): boolean;
  /** After the slice: no kick is sent any more. */
  loopWatchDisarm(): number;
}

const ADDON_PATH = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../build/Release/tsvmm.node');

let loaded: NativeAddon | undefined;

export function addon(): NativeAddon {
  if (loaded) return loaded;
  try {
    loaded = createRequire(import.meta.url)(ADDON_PATH) as NativeAddon;
  } catch (cause) {
    throw new TsvmmError(
      'ADDON_MISSING',
      `the native addon is not built (${ADDON_PATH}); run \`npm install\` first`,
      { cause },
    );
  }
  return loaded;
}

const ERRNO_NAMES = new Map<number, string>(
  Object.entries(osConstants.errno).map(([name, value]) => [value, name]),
);

/** "ENOENT" for 2; "errno 1234" for numbers the OS table lacks. */
export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(errno) ?? `errno ${errno}`;
}

export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_FIXED = 0x10;
export const MAP_ANONYMOUS = 0x20;
export const MAP_NORESERVE = 0x4000;
export const O_RDWR = 2;
export const EFD_NONBLOCK = 0o4000;
export const MADV_DONTNEED = 4;
export const MADV_HUGEPAGE = 14;
export const EPOLL_CTL_ADD = 1;
export const EPOLL_CTL_DEL = 2;
export const EPOLLIN = 0x001;
export const EINTR = osConstants.errno.EINTR;
export const EAGAIN = osConstants.errno.EAGAIN;
