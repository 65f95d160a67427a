// Puts a kernel, its command line and its initrd into guest memory and says how to enter it.
// ELF kernels with a PVH note are entered in 32-bit mode with hvm_start_info; other ELF64 kernels
// (vmlinux) at their 64-bit entry with a Linux zero page; bzImages at their 64-bit entry with a
// zero page that carries their own setup header. Every size and address from the files is checked
// against guest memory first, so a bad file fails with a clear message and writes nothing wild.

import { closeSync, fstatSync, openSync, readFileSync } from 'node:fs';
import { addon, MAP_PRIVATE, PROT_READ, PROT_WRITE } from '../kvm/addon.js';
import type { GuestMemory } from '../memory/guest-memory.js';
import type { BootCpuState } from '../arch/x86/boot-cpu.js';
import {
  CMDLINE_MAX_SIZE, CMDLINE_START, HIGH_MEMORY_START, ZERO_PAGE_START, memoryMap,
} from '../arch/x86/layout.js';
import { isElf, KernelImageError, parseElf, type ElfKernel } from './elf.js';
import { isBzImage, parseBzImage, placeBzImage } from './bzimage.js';
import { writePvhStartInfo } from './pvh.js';
import { LOADED_HIGH, writeZeroPage } from './zero-page.js';
import { lowMemoryTop, placeInitrd, type PlacedInitrd } from './initrd.js';
import { formatSize, hex } from './format.js';
import { TsvmmError } from '../errors.js';

export { formatSize } from './format.js';

export interface BootSource {
  /** Path of the kernel image, for messages. */
  kernelPath: string;
  kernel: Uint8Array;
  initrdPath?: string;
  initrd?: Uint8Array;
  cmdline: string;
  /** Guest-physical address of the ACPI RSDP, if the VMM wrote ACPI tables. */
  acpiRsdp?: number;
}

export interface LoadedKernel {
  cpu: BootCpuState;
  /** "PVH ELF", "ELF64" or "bzImage": how the kernel is entered. */
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

/** A user's file as bytes, until `release()` (which may be called more than once). */
export interface UserFile {
  data: Uint8Array;
  release(): void;
}

/**
 * A file the user named, as bytes that are about to be copied into guest memory: mapped from the
 * page cache where it can be, so that a kernel crosses memory once on its way into the guest
 * instead of first being read into a buffer (under a software CPU, where memory moves at tens of
 * MB/s, that is a second of a Linux boot); read as readUserFile does otherwise (a pipe, a file
 * system without mmap). The same one-line errors as readUserFile. The mapping is private and
 * writable, so nothing written to `data` reaches the file.
 */
export function openUserFile(path: string, what: string, maxSize: number): UserFile {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'r');
    const stat = fstatSync(fd);
    const size = stat.size;
    if (stat.isFile() && size > 0 && size <= maxSize) {
      const native = addon();
      const address = native.mmap(size, PROT_READ | PROT_WRITE, MAP_PRIVATE, fd, 0);
      if (typeof address !== 'number') {
        let mapped = true;
        return {
          data: new Uint8Array(native.arrayBuffer(address, size)),
          release: () => { if (mapped) native.munmap(address, size); mapped = false; },
        };
      }
    }
  } catch {
    // readUserFile below says what is wrong, in the user's words.
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
  return { data: readUserFile(path, what, maxSize), release: () => {} };
}

export function loadKernel(memory: GuestMemory, source: BootSource): LoadedKernel {
  const name = `kernel ${source.kernelPath}`;
  if (isElf(source.kernel)) return loadElf(memory, source, name);
  if (isBzImage(source.kernel)) return loadBzImage(memory, source, name);
  throw new KernelImageError('BAD_KERNEL', `${name}: not a kernel image (neither ELF nor bzImage)`);
}

function loadElf(memory: GuestMemory, source: BootSource, name: string): LoadedKernel {
  const elf = parseElf(source.kernel, name);
  const cmdline = encodeCmdline(source.cmdline);
  const kernelEnd = loadSegments(memory, elf, source.kernel, name);
  memory.write(CMDLINE_START, cmdline);
  const initrd = source.initrd
    ? placeInitrd(memory, source.initrd, source.initrdPath ?? 'initrd', {
      floor: kernelEnd, ceiling: lowMemoryTop(memory), ceilingReason: 'the end of low memory',
    })
    : undefined;
  const map = memoryMap(memory.regions);

  if (elf.pvhEntry !== undefined) {
    const startInfo = writePvhStartInfo(memory, {
      cmdlineAddress: CMDLINE_START,
      memoryMap: map,
      modules: initrd ? [initrd] : [],
      rsdpAddress: source.acpiRsdp,
    });
    return { protocol: 'PVH ELF', initrd, cpu: { mode: 'protected32', entry: elf.pvhEntry, registers: { rbx: startInfo } } };
  }
  writeZeroPage(memory, ZERO_PAGE_START, {
    cmdlineAddress: CMDLINE_START, cmdlineSize: cmdline.length, memoryMap: map, initrd, acpiRsdp: source.acpiRsdp,
  });
  return { protocol: 'ELF64', initrd, cpu: { mode: 'long64', entry: elf.entry, registers: { rsi: ZERO_PAGE_START } } };
}

function loadBzImage(memory: GuestMemory, source: BootSource, name: string): LoadedKernel {
  const bz = parseBzImage(source.kernel, name);
  const cmdline = encodeCmdline(source.cmdline);
  // cmdline_size is the kernel's own limit; a longer line would be cut off without a word.
  if (cmdline.length - 1 > bz.cmdlineSize) {
    throw new TsvmmError('CMDLINE_TOO_LONG', `command line of ${cmdline.length - 1} bytes is longer than the kernel's cmdline_size of ${bz.cmdlineSize} bytes`);
  }
  const ramTop = lowMemoryTop(memory);
  const placement = placeBzImage(bz, ramTop, name);

  memory.write(placement.loadAddress, bz.protectedMode);
  memory.write(CMDLINE_START, cmdline);
  // initrd_addr_max is the kernel's highest usable byte; above it the kernel cannot reach the
  // initrd that early.
  const addrMaxEnd = bz.initrdAddrMax + 1;
  const initrd: PlacedInitrd | undefined = source.initrd
    ? placeInitrd(memory, source.initrd, source.initrdPath ?? 'initrd', {
      floor: placement.end,
      ceiling: Math.min(addrMaxEnd, ramTop),
      ceilingReason: addrMaxEnd < ramTop ? "the kernel's initrd_addr_max" : 'the end of low memory',
    })
    : undefined;

  writeZeroPage(memory, ZERO_PAGE_START, {
    setupHeader: bz.setupHeader,
    header: {
      code32_start: placement.loadAddress,
      // No real-mode setup code runs, so its heap (CAN_USE_HEAP, heap_end_ptr) is not offered;
      // KASLR_FLAG is the kernel's own and QUIET_FLAG would hide early messages.
      loadflags: LOADED_HIGH,
    },
    cmdlineAddress: CMDLINE_START,
    cmdlineSize: cmdline.length - 1,
    memoryMap: memoryMap(memory.regions),
    initrd,
    acpiRsdp: source.acpiRsdp,
  });
  return { protocol: 'bzImage', initrd, cpu: { mode: 'long64', entry: placement.entry, registers: { rsi: ZERO_PAGE_START } } };
}

/** The command line as the kernel reads it: Latin-1 bytes and a NUL, checked against our buffer. */
function encodeCmdline(cmdline: string): Buffer {
  const bytes = Buffer.from(`${cmdline}\0`, 'latin1');
  if (bytes.length > CMDLINE_MAX_SIZE) {
    throw new TsvmmError('CMDLINE_TOO_LONG', `command line of ${bytes.length - 1} bytes is longer than ${CMDLINE_MAX_SIZE - 1}`);
  }
  return bytes;
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
