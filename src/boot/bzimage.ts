// Linux bzImage kernels (Documentation/arch/x86/boot.rst, "The Linux/x86 Boot Protocol"). The file
// is a real-mode boot sector and setup code, whose first sector holds the setup header at 0x1f1,
// followed by the protected-mode kernel (a decompressor with the compressed kernel inside). We skip
// the real-mode code: the protected-mode part is copied to memory and entered at its 64-bit entry
// point, 0x200 bytes in, with rsi pointing at a boot_params that carries the kernel's own header.
// The file is untrusted: every size and address from the header is checked before use.

import { HIGH_MEMORY_START } from '../arch/x86/layout.js';
import { KernelImageError } from './elf.js';
import { formatSize, hex } from './format.js';
import {
  boot_params, BOOT_FLAG_MAGIC, BOOT_PARAMS_SIZE, HDRS_MAGIC, LOADED_HIGH, SETUP_HEADER_LIMIT,
  SETUP_HEADER_START, XLF_KERNEL_64, type BootParams,
} from './zero-page.js';

const SECTOR = 512;
/** setup_sects 0 means 4, for compatibility with kernels that predate the field. */
const DEFAULT_SETUP_SECTS = 4;
/** cmdline_size: protocol 2.06; we need it to check the command line, so it is our minimum. */
const MIN_VERSION = 0x0206;
/** xloadflags, and with it the promise of a 64-bit entry point, came in protocol 2.12. */
const XLOADFLAGS_VERSION = 0x020c;
/** The 64-bit entry point, startup_64, sits this far into the protected-mode kernel. */
export const STARTUP_64_OFFSET = 0x200;

export interface BzImage {
  /** The setup header as the kernel wrote it: bytes 0x1f1 up to 0x202 + the byte at 0x201. */
  readonly setupHeader: Uint8Array;
  /** The setup header decoded (fields the header does not reach read as zero). */
  readonly hdr: Readonly<BootParams>;
  /** setup_sects, with 0 read as 4. */
  readonly setupSects: number;
  /** The protected-mode kernel: everything after the setup sectors. */
  readonly protectedMode: Uint8Array;
  readonly version: number;
  readonly relocatable: boolean;
  readonly kernelAlignment: number;
  readonly prefAddress: number;
  readonly initSize: number;
  /** Longest command line the kernel takes, without its NUL. */
  readonly cmdlineSize: number;
  /** Highest address the initrd may occupy (its last byte). */
  readonly initrdAddrMax: number;
}

/** Where the protected-mode kernel goes and what memory it needs from there. */
export interface BzImagePlacement {
  /** Where the protected-mode kernel is copied; also code32_start. */
  readonly loadAddress: number;
  /** Where the kernel decompresses and runs ("runtime start" in boot.rst). */
  readonly runtimeStart: number;
  /** End of the memory the kernel needs before it reads the memory map: runtimeStart + init_size. */
  readonly end: number;
  readonly entry: number;
}

export function isBzImage(image: Uint8Array): boolean {
  return image.length >= SETUP_HEADER_START + 0x15
    && new DataView(image.buffer, image.byteOffset, image.byteLength).getUint32(0x202, true) === HDRS_MAGIC;
}

/** "2.15" for 0x020f: the minor number is a byte, written in decimal with two digits. */
export function protocolName(version: number): string {
  return `${version >> 8}.${String(version & 0xff).padStart(2, '0')}`;
}

export function parseBzImage(image: Uint8Array, name = 'kernel'): BzImage {
  const fail = (code: string, what: string) => new KernelImageError(code, `${name}: ${what}`);
  if (!isBzImage(image)) throw fail('BAD_KERNEL', 'not a bzImage (no "HdrS" at 0x202)');
  // The jump at 0x200 skips the header, so its offset byte tells where the header ends.
  const headerEnd = 0x202 + image[0x201]!;
  if (headerEnd > SETUP_HEADER_LIMIT) throw fail('BAD_KERNEL', `setup header ends at ${hex(headerEnd)}, past boot_params' room for it (${hex(SETUP_HEADER_LIMIT)})`);
  if (image.length < headerEnd) throw fail('BAD_KERNEL', 'file ends inside the setup header');
  const setupHeader = image.slice(SETUP_HEADER_START, headerEnd);
  const page = new Uint8Array(BOOT_PARAMS_SIZE);
  page.set(setupHeader, SETUP_HEADER_START);
  const hdr = boot_params.decode(page);

  if (hdr.boot_flag !== BOOT_FLAG_MAGIC) throw fail('BAD_KERNEL', `boot_flag is ${hex(hdr.boot_flag)}, not 0xaa55`);
  if (hdr.version < MIN_VERSION) {
    throw fail('KERNEL_PROTOCOL_TOO_OLD', `boot protocol ${protocolName(hdr.version)} is too old (tsvmm needs ${protocolName(MIN_VERSION)} or later)`);
  }
  if (!(hdr.loadflags & LOADED_HIGH)) throw fail('UNSUPPORTED_KERNEL', 'is a zImage (loaded low, at 0x10000), which tsvmm does not load');
  if (hdr.version < XLOADFLAGS_VERSION || !(hdr.xloadflags & XLF_KERNEL_64)) {
    throw fail('UNSUPPORTED_KERNEL', `has no 64-bit entry point (xloadflags bit XLF_KERNEL_64 is clear in boot protocol ${protocolName(hdr.version)}); tsvmm enters Linux in 64-bit mode`);
  }
  // A 2.12 header reaches init_size; a shorter one would make it read as zero.
  if (headerEnd < boot_params.fields.init_size[0] + 4) throw fail('BAD_KERNEL', `setup header ends at ${hex(headerEnd)}, before init_size`);

  const setupSects = hdr.setup_sects || DEFAULT_SETUP_SECTS;
  const pmOffset = (setupSects + 1) * SECTOR;
  if (image.length < pmOffset + STARTUP_64_OFFSET + 1) throw fail('BAD_KERNEL', `file ends before its 64-bit entry point (${setupSects} setup sectors, ${image.length} bytes)`);
  const protectedMode = image.subarray(pmOffset);
  // syssize (16-byte units) is what the kernel says follows the setup; the file may add a CRC.
  if (hdr.syssize * 16 > protectedMode.length) {
    throw fail('BAD_KERNEL', `is truncated: the setup header says ${formatSize(hdr.syssize * 16)} of protected-mode kernel, the file has ${formatSize(protectedMode.length)}`);
  }
  const relocatable = hdr.relocatable_kernel !== 0;
  const kernelAlignment = hdr.kernel_alignment;
  if (relocatable && (kernelAlignment === 0 || (kernelAlignment & (kernelAlignment - 1)) !== 0)) {
    throw fail('BAD_KERNEL', `kernel_alignment ${hex(kernelAlignment)} is not a power of two`);
  }
  if (hdr.pref_address > BigInt(Number.MAX_SAFE_INTEGER)) throw fail('BAD_KERNEL', `pref_address ${hex(hdr.pref_address)} is out of range`);
  return {
    setupHeader, hdr, setupSects, protectedMode, relocatable, kernelAlignment,
    version: hdr.version,
    prefAddress: Number(hdr.pref_address),
    // A kernel needs at least its own image; init_size, if sane, is larger.
    initSize: Math.max(hdr.init_size, protectedMode.length),
    cmdlineSize: hdr.cmdline_size,
    initrdAddrMax: hdr.initrd_addr_max,
  };
}

const alignUp = (n: number, to: number) => Math.ceil(n / to) * to;

/**
 * Chooses the load address as boot.rst allows. A relocatable kernel goes to pref_address (aligned
 * to kernel_alignment), where it runs without moving itself: its decompressor never runs below
 * pref_address (LOAD_PHYSICAL_ADDR) anyway, so loading lower would only add a copy. A kernel that
 * is not relocatable is loaded at 1 MiB, the protocol's bzImage address, and moves itself to
 * pref_address. Either way it needs init_size bytes from where it runs, below `ramTop`.
 */
export function placeBzImage(bz: BzImage, ramTop: number, name = 'kernel'): BzImagePlacement {
  let loadAddress: number;
  let runtimeStart: number;
  if (bz.relocatable) {
    loadAddress = alignUp(Math.max(bz.prefAddress, HIGH_MEMORY_START), bz.kernelAlignment);
    runtimeStart = loadAddress;
  } else {
    if (bz.prefAddress !== 0 && bz.prefAddress < HIGH_MEMORY_START) {
      throw new KernelImageError('BAD_KERNEL', `${name}: is not relocatable and wants to run at ${hex(bz.prefAddress)}, below 1 MiB, where the boot structures live`);
    }
    loadAddress = HIGH_MEMORY_START;
    runtimeStart = bz.prefAddress || HIGH_MEMORY_START;
  }
  const end = Math.max(runtimeStart + bz.initSize, loadAddress + bz.protectedMode.length);
  if (end > ramTop) {
    throw new KernelImageError('KERNEL_TOO_LARGE', `${name}: needs ${formatSize(bz.initSize)} from ${hex(runtimeStart)} to decompress and start (init_size), `
      + `up to ${formatSize(alignUp(end, 1 << 20))}, but guest memory ends at ${formatSize(ramTop)}`);
  }
  return { loadAddress, runtimeStart, end, entry: loadAddress + STARTUP_64_OFFSET };
}
