/* The PVH boot ABI (xen/include/public/arch-x86/hvm/start_info.h). */
#ifndef GUESTS_PVH_H
#define GUESTS_PVH_H

#include <stdint.h>

#include "pvh-abi.h"

/* Each PVH guest's C entry, called in long mode at CPL 0 after cpu_init(). */
void kmain(const struct hvm_start_info *si);

/* The command line, or "" if there is none (or no valid start_info). */
const char *pvh_cmdline(const struct hvm_start_info *si);
/* Number of memory map entries (0 before version 1). */
uint32_t pvh_memmap(const struct hvm_start_info *si, const struct hvm_memmap_table_entry **map);

#endif
