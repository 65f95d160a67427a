/* The PVH boot ABI (xen/include/public/arch-x86/hvm/start_info.h). */
#ifndef GUESTS_PVH_H
#define GUESTS_PVH_H

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

/* Each PVH guest's C entry, called in long mode at CPL 0 after cpu_init(). */
void kmain(const struct hvm_start_info *si);

/* The command line, or "" if there is none (or no valid start_info). */
const char *pvh_cmdline(const struct hvm_start_info *si);
/* Number of memory map entries (0 before version 1). */
uint32_t pvh_memmap(const struct hvm_start_info *si, const struct hvm_memmap_table_entry **map);

#endif
