/* The PVH boot ABI (xen/include/public/arch-x86/hvm/start_info.h): the structures a VMM hands a
 * PVH kernel. Plain C with fixed-width types, shared by the guests, the benchmark's C VMM and the
 * layout test of tsvmm's TypeScript codecs. */
#ifndef GUESTS_PVH_ABI_H
#define GUESTS_PVH_ABI_H

#include <stdint.h>

#define HVM_START_MAGIC 0x336ec578u

struct hvm_start_info {
	uint32_t magic;
	uint32_t version;
	uint32_t flags;
	uint32_t nr_modules;
	uint64_t modlist_paddr;
	uint64_t cmdline_paddr;
	uint64_t rsdp_paddr;
	/* version 1 */
	uint64_t memmap_paddr;
	uint32_t memmap_entries;
	uint32_t reserved;
};

struct hvm_modlist_entry {
	uint64_t paddr;
	uint64_t size;
	uint64_t cmdline_paddr;
	uint64_t reserved;
};

struct hvm_memmap_table_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type; /* e820 types: 1 RAM, 2 reserved, 3 ACPI, 4 NVS, 5 unusable */
	uint32_t reserved;
};

#endif
