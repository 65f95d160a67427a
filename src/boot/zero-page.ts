// Linux's boot_params ("zero page", Documentation/arch/x86/zero-page.rst and boot.rst). A kernel
// entered at its 64-bit entry point finds this page in rsi. For a bzImage the setup header
// (struct setup_header, at 0x1f1) is the kernel's own, copied from the image and then modified as
// the protocol says; for a vmlinux, which has none, we write the few header fields it reads.
// test/unit/zero-page.test.ts checks every offset below against <asm/bootparam.h>.

import type { GuestMemory } from '../memory/guest-memory.js';
import { array, struct, u16, u32, u64, u8, type StructValue } from '../kvm/struct.js';
import type { MemoryMapEntry } from '../arch/x86/layout.js';

export const BOOT_PARAMS_SIZE = 4096;
export const E820_MAX_ENTRIES_ZEROPAGE = 128;

export const boot_e820_entry = struct('boot_e820_entry', 20, {
  addr: [0, u64], size: [8, u64], type: [16, u32],
} as const);

/** The fields of boot_params tsvmm reads or writes, at their offsets in the zero page. */
export const boot_params = struct('boot_params', BOOT_PARAMS_SIZE, {
  acpi_rsdp_addr: [0x070, u64],
  ext_ramdisk_image: [0x0c0, u32],
  ext_ramdisk_size: [0x0c4, u32],
  ext_cmd_line_ptr: [0x0c8, u32],
  e820_entries: [0x1e8, u8],
  sentinel: [0x1ef, u8],
  // struct setup_header hdr
  setup_sects: [0x1f1, u8],
  root_flags: [0x1f2, u16],
  syssize: [0x1f4, u32],
  ram_size: [0x1f8, u16],
  vid_mode: [0x1fa, u16],
  root_dev: [0x1fc, u16],
  boot_flag: [0x1fe, u16],
  jump: [0x200, u16],
  header: [0x202, u32],
  version: [0x206, u16],
  realmode_swtch: [0x208, u32],
  start_sys_seg: [0x20c, u16],
  kernel_version: [0x20e, u16],
  type_of_loader: [0x210, u8],
  loadflags: [0x211, u8],
  setup_move_size: [0x212, u16],
  code32_start: [0x214, u32],
  ramdisk_image: [0x218, u32],
  ramdisk_size: [0x21c, u32],
  bootsect_kludge: [0x220, u32],
  heap_end_ptr: [0x224, u16],
  ext_loader_ver: [0x226, u8],
  ext_loader_type: [0x227, u8],
  cmd_line_ptr: [0x228, u32],
  initrd_addr_max: [0x22c, u32],
  kernel_alignment: [0x230, u32],
  relocatable_kernel: [0x234, u8],
  min_alignment: [0x235, u8],
  xloadflags: [0x236, u16],
  cmdline_size: [0x238, u32],
  hardware_subarch: [0x23c, u32],
  hardware_subarch_data: [0x240, u64],
  payload_offset: [0x248, u32],
  payload_length: [0x24c, u32],
  setup_data: [0x250, u64],
  pref_address: [0x258, u64],
  init_size: [0x260, u32],
  handover_offset: [0x264, u32],
  kernel_info_offset: [0x268, u32],
  // end of struct setup_header
  e820_table: [0x2d0, array(boot_e820_entry, E820_MAX_ENTRIES_ZEROPAGE)],
} as const);

export type BootParams = StructValue<typeof boot_params.fields>;

/** Where struct setup_header starts, and where boot_params stops leaving room for it to grow. */
export const SETUP_HEADER_START = 0x1f1;
export const SETUP_HEADER_LIMIT = 0x290;

export const BOOT_FLAG_MAGIC = 0xaa55;
export const HDRS_MAGIC = 0x53726448; // "HdrS"
/** type_of_loader 0xff: "undefined" boot loader, as Firecracker and kvmtool report. */
export const LOADER_UNDEFINED = 0xff;

/** loadflags bits. */
export const LOADED_HIGH = 1 << 0;
export const KASLR_FLAG = 1 << 1;
export const QUIET_FLAG = 1 << 5;
export const KEEP_SEGMENTS = 1 << 6;
export const CAN_USE_HEAP = 1 << 7;
/** xloadflags bits. */
export const XLF_KERNEL_64 = 1 << 0;
export const XLF_CAN_BE_LOADED_ABOVE_4G = 1 << 1;

export interface ZeroPageInfo {
  /** The kernel's setup header: bzImage bytes from 0x1f1 to its end. Absent for a vmlinux. */
  setupHeader?: Uint8Array;
  /** Setup header fields the loader modifies besides those below (code32_start, loadflags). */
  header?: Partial<BootParams>;
  cmdlineAddress: number;
  /** The command line's length without its NUL; only written when there is no setupHeader. */
  cmdlineSize: number;
  memoryMap: readonly MemoryMapEntry[];
  initrd?: { address: number; size: number };
  /** Guest-physical address of the ACPI RSDP, for kernels that cannot scan the BIOS area for it. */
  acpiRsdp?: number;
}

const low32 = (n: number) => n >>> 0;
const high32 = (n: number) => Math.floor(n / 2 ** 32) >>> 0;

/** The zero page as bytes: a clean page, the setup header copied in, then the loader's fields. */
export function buildZeroPage(info: ZeroPageInfo): Uint8Array {
  if (info.memoryMap.length > E820_MAX_ENTRIES_ZEROPAGE) throw new RangeError('e820 map too long');
  const page = new Uint8Array(BOOT_PARAMS_SIZE);
  if (info.setupHeader) {
    if (SETUP_HEADER_START + info.setupHeader.length > SETUP_HEADER_LIMIT) throw new RangeError('setup header too long');
    page.set(info.setupHeader, SETUP_HEADER_START);
  }
  // Decoding the page and writing every field back leaves the copied header bytes as they were,
  // including those of fields newer than this table.
  const fields = boot_params.decode(page);
  if (!info.setupHeader) {
    Object.assign(fields, { boot_flag: BOOT_FLAG_MAGIC, header: HDRS_MAGIC, version: 0x020f, cmdline_size: info.cmdlineSize });
  }
  const e820 = Array.from({ length: E820_MAX_ENTRIES_ZEROPAGE }, (_, i) => {
    const e = info.memoryMap[i];
    return e ? { addr: BigInt(e.addr), size: BigInt(e.size), type: e.type } : { addr: 0n, size: 0n, type: 0 };
  });
  Object.assign(fields, info.header, {
    type_of_loader: LOADER_UNDEFINED,
    cmd_line_ptr: low32(info.cmdlineAddress),
    ext_cmd_line_ptr: high32(info.cmdlineAddress),
    ramdisk_image: low32(info.initrd?.address ?? 0),
    ext_ramdisk_image: high32(info.initrd?.address ?? 0),
    ramdisk_size: low32(info.initrd?.size ?? 0),
    ext_ramdisk_size: high32(info.initrd?.size ?? 0),
    e820_entries: info.memoryMap.length,
    e820_table: e820,
    acpi_rsdp_addr: BigInt(info.acpiRsdp ?? 0),
  } satisfies Partial<BootParams>);
  boot_params.write(new DataView(page.buffer), 0, fields);
  return page;
}

export function writeZeroPage(memory: GuestMemory, at: number, info: ZeroPageInfo): void {
  memory.write(at, buildZeroPage(info));
}
