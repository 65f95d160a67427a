// Where things go in guest-physical memory. Low memory holds the structures the VMM writes for
// the boot CPU and the boot protocol; the kernel goes at or above 1 MiB; the 32-bit PCI hole
// below 4 GiB is left for MMIO devices (and the IOAPIC/LAPIC pages at its top).

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;
export const PAGE_SIZE = 4096;

/** Boot GDT (for the entry state) and an empty IDT. */
export const BOOT_GDT_START = 0x500;
export const BOOT_IDT_START = 0x520;
/** PVH: hvm_start_info, then the module list, then the memory map. */
export const PVH_INFO_START = 0x6000;
export const PVH_MODLIST_START = 0x6040;
export const PVH_MEMMAP_START = 0x6100;
export const PVH_MEMMAP_MAX_ENTRIES = 128;
/** Linux boot_params ("zero page"). */
export const ZERO_PAGE_START = 0x7000;
/** Identity page tables for 64-bit entry: PML4, PDPT, then one PD per GiB. */
export const PML4_START = 0x9000;
export const PDPTE_START = 0xa000;
export const PDE_START = 0xb000;
export const IDENTITY_MAPPED_GIB = 4;
/** Initial stack for 64-bit entry; grows down from just below the command line. */
export const BOOT_STACK_POINTER = 0x8ff0;
/** Kernel command line. */
export const CMDLINE_START = 0x20000;
export const CMDLINE_MAX_SIZE = 0x10000;
/** End of usable low memory: the EBDA and the legacy VGA/BIOS area follow. */
export const EBDA_START = 0x9fc00;
export const HIGH_MEMORY_START = MiB;

/** The 32-bit PCI hole: guest RAM never lives here. */
export const PCI_HOLE_START = 3 * GiB;
export const PCI_HOLE_END = 4 * GiB;
export const IOAPIC_START = 0xfec00000;
export const APIC_START = 0xfee00000;

/** KVM's TSS and identity-map pages for real-mode emulation, inside the PCI hole and out of the way. */
export const KVM_IDENTITY_MAP_START = 0xfeffc000;
export const KVM_TSS_START = 0xfeffd000;

/** Guest RAM regions for `memSize` bytes: below the PCI hole, then the rest from 4 GiB. */
export function ramLayout(memSize: number): { start: number; size: number }[] {
  if (memSize <= PCI_HOLE_START) return [{ start: 0, size: memSize }];
  return [
    { start: 0, size: PCI_HOLE_START },
    { start: PCI_HOLE_END, size: memSize - PCI_HOLE_START },
  ];
}

/** The e820 / PVH memory map types. */
export const E820_RAM = 1;
export const E820_RESERVED = 2;

export interface MemoryMapEntry {
  readonly addr: number;
  readonly size: number;
  readonly type: number;
}

/** The memory map a guest is given: low RAM, the reserved EBDA/BIOS area, high RAM. */
export function memoryMap(layout: readonly { start: number; size: number }[]): MemoryMapEntry[] {
  const entries: MemoryMapEntry[] = [
    { addr: 0, size: EBDA_START, type: E820_RAM },
    { addr: EBDA_START, size: HIGH_MEMORY_START - EBDA_START, type: E820_RESERVED },
  ];
  for (const { start, size } of layout) {
    const from = Math.max(start, HIGH_MEMORY_START);
    const end = start + size;
    if (end <= from) continue;
    // Regions that touch (the pieces of a large one, see GuestMemory) are one entry to the guest.
    const last = entries[entries.length - 1]!;
    if (last.type === E820_RAM && last.addr + last.size === from) entries[entries.length - 1] = { ...last, size: end - last.addr };
    else entries.push({ addr: from, size: end - from, type: E820_RAM });
  }
  return entries;
}
