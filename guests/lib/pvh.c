/* Reading struct hvm_start_info. */
#include "lib.h"
#include "pvh.h"

const char *pvh_cmdline(const struct hvm_start_info *si)
{
	if (!si || si->magic != HVM_START_MAGIC || !si->cmdline_paddr)
		return "";
	return (const char *)si->cmdline_paddr;
}

uint32_t pvh_memmap(const struct hvm_start_info *si, const struct hvm_memmap_table_entry **map)
{
	if (!si || si->magic != HVM_START_MAGIC || si->version < 1 || !si->memmap_paddr)
		return 0;
	*map = (const struct hvm_memmap_table_entry *)si->memmap_paddr;
	return si->memmap_entries;
}
