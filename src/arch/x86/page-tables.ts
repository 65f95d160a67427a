// Identity page tables for 64-bit entry: the first IDENTITY_MAPPED_GIB GiB mapped 1:1 with
// 2 MiB pages (the PCI hole too, so the guest reaches its LAPIC and IOAPIC before it builds
// its own tables). 1 GiB pages would be fewer, but not every CPU model offers them.

import type { GuestMemory } from '../../memory/guest-memory.js';
import { IDENTITY_MAPPED_GIB, PAGE_SIZE, PDE_START, PDPTE_START, PML4_START } from './layout.js';

const PRESENT = 1n;
const WRITABLE = 2n;
const PAGE_SIZE_2M = 0x80n;

export interface PageTableLayout {
  pml4: number;
  pdpt: number;
  pd: number;
  gib: number;
}

export const DEFAULT_PAGE_TABLES: PageTableLayout = {
  pml4: PML4_START, pdpt: PDPTE_START, pd: PDE_START, gib: IDENTITY_MAPPED_GIB,
};

/** Writes the tables into guest memory and returns the CR3 value. */
export function writeIdentityPageTables(memory: GuestMemory, layout: PageTableLayout = DEFAULT_PAGE_TABLES): bigint {
  memory.fill(layout.pml4, PAGE_SIZE);
  memory.fill(layout.pdpt, PAGE_SIZE);
  memory.writeU64(layout.pml4, BigInt(layout.pdpt) | PRESENT | WRITABLE);
  for (let gib = 0; gib < layout.gib; gib++) {
    const pd = layout.pd + gib * PAGE_SIZE;
    memory.writeU64(layout.pdpt + gib * 8, BigInt(pd) | PRESENT | WRITABLE);
    for (let i = 0; i < 512; i++) {
      const address = (BigInt(gib) << 30n) | (BigInt(i) << 21n);
      memory.writeU64(pd + i * 8, address | PRESENT | WRITABLE | PAGE_SIZE_2M);
    }
  }
  return BigInt(layout.pml4);
}
