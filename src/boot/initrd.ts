// Where the initial ramdisk goes: as high as it can, page-aligned, inside a window the kernel
// allows. Kernels unpack it early and the space below it stays free for the kernel to grow into.

import type { GuestMemory } from '../memory/guest-memory.js';
import { PAGE_SIZE } from '../arch/x86/layout.js';
import { TsvmmError } from '../errors.js';
import { formatSize, hex } from './format.js';

export interface InitrdWindow {
  /** Lowest address the initrd may start at: the end of what the kernel needs. */
  floor: number;
  /** One past the highest byte the initrd may occupy. */
  ceiling: number;
  /** Why the ceiling is where it is, for the error message. */
  ceilingReason: string;
}

export interface PlacedInitrd {
  address: number;
  size: number;
}

/** The top of the RAM region that starts at 0: the highest place a 32-bit pointer reaches into. */
export function lowMemoryTop(memory: GuestMemory): number {
  const low = memory.regions[0]!;
  return low.start + low.size;
}

export function placeInitrd(memory: GuestMemory, initrd: Uint8Array, path: string, window: InitrdWindow): PlacedInitrd {
  const floor = Math.ceil(window.floor / PAGE_SIZE) * PAGE_SIZE;
  const address = Math.floor((window.ceiling - initrd.length) / PAGE_SIZE) * PAGE_SIZE;
  if (initrd.length > window.ceiling || address < floor || !memory.contains(address, initrd.length)) {
    throw new TsvmmError('INITRD_TOO_LARGE', `initrd ${path}: ${formatSize(initrd.length)} does not fit in guest memory `
      + `between the kernel's end at ${hex(floor)} and ${window.ceilingReason} at ${hex(window.ceiling)} (${formatSize(memory.size)} in all)`);
  }
  memory.write(address, initrd);
  return { address, size: initrd.length };
}
