// The Xen PVH boot ABI (xen/include/public/arch-x86/hvm/start_info.h): the kernel is entered in
// 32-bit protected mode with ebx pointing at hvm_start_info, which gives it the command line,
// the modules (our initrd) and the memory map.

import type { GuestMemory } from '../memory/guest-memory.js';
import { struct, u32, u64 } from '../kvm/struct.js';
import {
  PVH_INFO_START, PVH_MEMMAP_MAX_ENTRIES, PVH_MEMMAP_START, PVH_MODLIST_START, type MemoryMapEntry,
} from '../arch/x86/layout.js';

export const XEN_HVM_START_MAGIC_VALUE = 0x336ec578;

export const hvm_start_info = struct('hvm_start_info', 56, {
  magic: [0, u32], version: [4, u32], flags: [8, u32], nr_modules: [12, u32],
  modlist_paddr: [16, u64], cmdline_paddr: [24, u64], rsdp_paddr: [32, u64],
  memmap_paddr: [40, u64], memmap_entries: [48, u32], reserved: [52, u32],
} as const);

export const hvm_modlist_entry = struct('hvm_modlist_entry', 32, {
  paddr: [0, u64], size: [8, u64], cmdline_paddr: [16, u64], reserved: [24, u64],
} as const);

export const hvm_memmap_table_entry = struct('hvm_memmap_table_entry', 24, {
  addr: [0, u64], size: [8, u64], type: [16, u32], reserved: [20, u32],
} as const);

export interface PvhBootInfo {
  cmdlineAddress: number;
  memoryMap: readonly MemoryMapEntry[];
  modules: readonly { address: number; size: number }[];
  /** Guest-physical address of the ACPI RSDP; a PVH kernel has no BIOS area to scan for it. */
  rsdpAddress?: number;
}

/** Writes hvm_start_info and its tables; returns its address (the kernel's ebx). */
export function writePvhStartInfo(memory: GuestMemory, info: PvhBootInfo): number {
  if (info.memoryMap.length > PVH_MEMMAP_MAX_ENTRIES) throw new RangeError('memory map too long');
  if ((PVH_MEMMAP_START - PVH_MODLIST_START) / hvm_modlist_entry.size < info.modules.length) {
    throw new RangeError('too many modules');
  }
  info.memoryMap.forEach((e, i) => memory.write(PVH_MEMMAP_START + i * hvm_memmap_table_entry.size,
    hvm_memmap_table_entry.encode({ addr: BigInt(e.addr), size: BigInt(e.size), type: e.type, reserved: 0 })));
  info.modules.forEach((m, i) => memory.write(PVH_MODLIST_START + i * hvm_modlist_entry.size,
    hvm_modlist_entry.encode({ paddr: BigInt(m.address), size: BigInt(m.size), cmdline_paddr: 0n, reserved: 0n })));
  memory.write(PVH_INFO_START, hvm_start_info.encode({
    magic: XEN_HVM_START_MAGIC_VALUE,
    version: 1,
    flags: 0,
    nr_modules: info.modules.length,
    modlist_paddr: info.modules.length ? BigInt(PVH_MODLIST_START) : 0n,
    cmdline_paddr: BigInt(info.cmdlineAddress),
    rsdp_paddr: BigInt(info.rsdpAddress ?? 0),
    memmap_paddr: BigInt(PVH_MEMMAP_START),
    memmap_entries: info.memoryMap.length,
    reserved: 0,
  }));
  return PVH_INFO_START;
}
