// Linux's boot_params ("zero page", Documentation/arch/x86/zero-page.rst and boot.rst): the
// fields a 64-bit entry needs. A kernel entered at its 64-bit entry point finds this page in rsi.

import type { GuestMemory } from '../memory/guest-memory.js';
import { struct, u16, u32, u8 } from '../kvm/struct.js';
import type { MemoryMapEntry } from '../arch/x86/layout.js';

export const BOOT_PARAMS_SIZE = 4096;
export const E820_MAX_ENTRIES_ZEROPAGE = 128;
const E820_TABLE_OFFSET = 0x2d0;
const E820_ENTRY_SIZE = 20;

/** The boot_params fields tsvmm writes, at their offsets in the zero page. */
export const boot_params = struct('boot_params', BOOT_PARAMS_SIZE, {
  ext_ramdisk_image: [0x0c0, u32],
  ext_ramdisk_size: [0x0c4, u32],
  ext_cmd_line_ptr: [0x0c8, u32],
  e820_entries: [0x1e8, u8],
  boot_flag: [0x1fe, u16],
  header: [0x202, u32],
  version: [0x206, u16],
  type_of_loader: [0x210, u8],
  loadflags: [0x211, u8],
  ramdisk_image: [0x218, u32],
  ramdisk_size: [0x21c, u32],
  cmd_line_ptr: [0x228, u32],
  cmdline_size: [0x238, u32],
} as const);

export const BOOT_FLAG_MAGIC = 0xaa55;
export const HDRS_MAGIC = 0x53726448; // "HdrS"
/** type_of_loader 0xff: "undefined" boot loader, as Firecracker and kvmtool report. */
export const LOADER_UNDEFINED = 0xff;

export interface ZeroPageInfo {
  cmdlineAddress: number;
  cmdlineSize: number;
  memoryMap: readonly MemoryMapEntry[];
  initrd?: { address: number; size: number };
}

export function writeZeroPage(memory: GuestMemory, at: number, info: ZeroPageInfo): void {
  if (info.memoryMap.length > E820_MAX_ENTRIES_ZEROPAGE) throw new RangeError('e820 map too long');
  memory.fill(at, BOOT_PARAMS_SIZE);
  const low32 = (n: number) => n >>> 0;
  const high32 = (n: number) => Math.floor(n / 2 ** 32) >>> 0;
  const fields = {
    ...boot_params.zero(),
    boot_flag: BOOT_FLAG_MAGIC,
    header: HDRS_MAGIC,
    version: 0x020f,
    type_of_loader: LOADER_UNDEFINED,
    cmd_line_ptr: low32(info.cmdlineAddress),
    ext_cmd_line_ptr: high32(info.cmdlineAddress),
    cmdline_size: info.cmdlineSize,
    ramdisk_image: low32(info.initrd?.address ?? 0),
    ext_ramdisk_image: high32(info.initrd?.address ?? 0),
    ramdisk_size: low32(info.initrd?.size ?? 0),
    ext_ramdisk_size: high32(info.initrd?.size ?? 0),
    e820_entries: info.memoryMap.length,
  };
  memory.write(at, boot_params.encode(fields));
  info.memoryMap.forEach((e, i) => {
    const entry = at + E820_TABLE_OFFSET + i * E820_ENTRY_SIZE;
    memory.writeU64(entry, BigInt(e.addr));
    memory.writeU64(entry + 8, BigInt(e.size));
    memory.writeU32(entry + 16, e.type);
  });
}
