// Puts a kernel, its command line and its initrd into guest memory and says how to enter it.
// Kernels with a PVH note are entered in 32-bit mode with hvm_start_info; other ELF64 kernels at
// their 64-bit entry with a Linux zero page. Every size and address from the files is checked
// against guest memory first, so a bad file fails with a clear message and writes nothing wild.

import { readFileSync } from 'node:fs';
import type { GuestMemory } from '../memory/guest-memory.js';
import type { BootCpuState } from '../arch/x86/boot-cpu.js';
import {
  CMDLINE_MAX_SIZE, CMDLINE_START, HIGH_MEMORY_START, MiB, PAGE_SIZE, ZERO_PAGE_START, memoryMap,
} from '../arch/x86/layout.js';
import { isElf, KernelImageError, parseElf, type ElfKernel } from './elf.js';
import { writePvhStartInfo } from './pvh.js';
import { writeZeroPage } from './zero-page.js';
import { TsvmmError } from '../errors.js';

export interface BootSource {
  /** Path of the kernel image, for messages. */
  kernelPath: string;
  kernel: Uint8Array;
  initrdPath?: string;
  initrd?: Uint8Array;
  cmdline: string;
}

export interface LoadedKernel {
  cpu: BootCpuState;
  /** "PVH ELF" or "ELF64": how the kernel is entered. */
  protocol: string;
  /** Where the initrd was placed, if any. */
  initrd?: { address: number; size: number };
}

/** Reads a file that the user named, turning "no such file" and friends into one clear line. */
export function readUserFile(path: string, what: string, maxSize: number): Uint8Array {
  try {
    const data = readFileSync(path);
    if (data.length > maxSize) {
      throw new TsvmmError('FILE_TOO_LARGE', `${what} ${path}: ${formatSize(data.length)} is larger than guest memory`);
    }
    return data;
  } catch (error) {
    if (error instanceof TsvmmError) throw error;
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such file'
      : code === 'EISDIR' ? 'is a directory'
        : code === 'EACCES' ? 'permission denied'
          : (error as Error).message;
    throw new TsvmmError('FILE_UNREADABLE', `${what} ${path}: ${reason}`);
  }
}

export function formatSize(bytes: number): string {
  if (bytes >= MiB && bytes % MiB === 0) return `${bytes / MiB} MiB`;
  if (bytes >= MiB) return `${(bytes / MiB).toFixed(1)} MiB`;
  return `${bytes} bytes`;
}

const hex = (n: number) => `0x${n.toString(16)}`;

export function loadKernel(memory: GuestMemory, source: BootSource): LoadedKernel {
  const name = `kernel ${source.kernelPath}`;
  if (!isElf(source.kernel)) {
    if (looksLikeBzImage(source.kernel)) {
      throw new KernelImageError('UNSUPPORTED_KERNEL', `${name}: bzImage kernels are not supported yet; use an ELF kernel (vmlinux or one with a PVH note)`);
    }
    throw new KernelImageError('BAD_KERNEL', `${name}: not a kernel image (neither ELF nor bzImage)`);
  }
  const elf = parseElf(source.kernel, name);
  const kernelEnd = loadSegments(memory, elf, source.kernel, name);

  const cmdline = Buffer.from(`${source.cmdline}\0`, 'latin1');
  if (cmdline.length > CMDLINE_MAX_SIZE) {
    throw new TsvmmError('CMDLINE_TOO_LONG', `command line of ${cmdline.length - 1} bytes is longer than ${CMDLINE_MAX_SIZE - 1}`);
  }
  memory.write(CMDLINE_START, cmdline);

  const initrd = source.initrd ? placeInitrd(memory, source.initrd, kernelEnd, source.initrdPath ?? 'initrd') : undefined;
  const map = memoryMap(memory.regions);

  if (elf.pvhEntry !== undefined) {
    const startInfo = writePvhStartInfo(memory, {
      cmdlineAddress: CMDLINE_START,
      memoryMap: map,
      modules: initrd ? [initrd] : [],
    });
    return { protocol: 'PVH ELF', initrd, cpu: { mode: 'protected32', entry: elf.pvhEntry, registers: { rbx: startInfo } } };
  }
  writeZeroPage(memory, ZERO_PAGE_START, {
    cmdlineAddress: CMDLINE_START, cmdlineSize: cmdline.length, memoryMap: map, initrd,
  });
  return { protocol: 'ELF64', initrd, cpu: { mode: 'long64', entry: elf.entry, registers: { rsi: ZERO_PAGE_START } } };
}

function looksLikeBzImage(image: Uint8Array): boolean {
  return image.length > 0x206 && Buffer.from(image.subarray(0x202, 0x206)).toString('latin1') === 'HdrS';
}

/** Copies PT_LOAD segments to their physical addresses; returns the end of the highest one. */
function loadSegments(memory: GuestMemory, elf: ElfKernel, image: Uint8Array, name: string): number {
  let end = 0;
  for (const s of elf.segments) {
    if (s.paddr < HIGH_MEMORY_START) {
      throw new KernelImageError('BAD_KERNEL', `${name}: segment at ${hex(s.paddr)} is below 1 MiB, where the boot structures live`);
    }
    if (!memory.contains(s.paddr, s.memSize)) {
      throw new KernelImageError('KERNEL_TOO_LARGE', `${name}: segment at ${hex(s.paddr)}+${formatSize(s.memSize)} does not fit in ${formatSize(memory.size)} of guest memory`);
    }
  }
  for (const s of elf.segments) {
    memory.write(s.paddr, image.subarray(s.fileOffset, s.fileOffset + s.fileSize));
    memory.fill(s.paddr + s.fileSize, s.memSize - s.fileSize);
    end = Math.max(end, s.paddr + s.memSize);
  }
  const inside = (address: number) => elf.segments.some((s) => address >= s.paddr && address < s.paddr + s.memSize);
  const entry = elf.pvhEntry ?? elf.entry;
  if (!inside(entry)) {
    throw new KernelImageError('BAD_KERNEL', `${name}: entry point ${hex(entry)} is outside its loaded segments`);
  }
  return end;
}

/** The initrd goes as high as it can in the RAM below 4 GiB, page-aligned, above the kernel. */
function placeInitrd(memory: GuestMemory, initrd: Uint8Array, kernelEnd: number, path: string): { address: number; size: number } {
  const low = memory.regions[0]!;
  const top = low.start + low.size;
  const address = Math.floor((top - initrd.length) / PAGE_SIZE) * PAGE_SIZE;
  if (initrd.length > top || address < Math.ceil(kernelEnd / PAGE_SIZE) * PAGE_SIZE) {
    throw new TsvmmError('INITRD_TOO_LARGE', `initrd ${path}: ${formatSize(initrd.length)} does not fit in guest memory above the kernel (${formatSize(memory.size)} in all)`);
  }
  memory.write(address, initrd);
  return { address, size: initrd.length };
}
