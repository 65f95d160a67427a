/*
 * elf64.elf: checks the plain-ELF64 entry. Prints the command line and the e820 table the VMM
 * put in the Linux boot_params ("zero page"), and the CPL, then powers off. Lines end in "\n".
 */
#include "lib/lib.h"

/* Offsets in struct boot_params (Documentation/arch/x86/zero-page.rst). */
#define BP_EXT_CMD_LINE_PTR 0x0c8
#define BP_E820_ENTRIES     0x1e8
#define BP_CMD_LINE_PTR     0x228
#define BP_E820_TABLE       0x2d0
#define E820_MAX_ENTRIES    128

struct e820_entry {
	uint64_t addr;
	uint64_t size;
	uint32_t type;
} PACKED;

void elf64_main(const uint8_t *bp);

static uint32_t read_u32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return v;
}

void elf64_main(const uint8_t *bp)
{
	console_init(false);
	uint64_t cmdline = read_u32(bp + BP_CMD_LINE_PTR) |
			   (uint64_t)read_u32(bp + BP_EXT_CMD_LINE_PTR) << 32;
	kprintf("elf64: cmdline=\"%s\"\n", cmdline ? (const char *)cmdline : "");

	unsigned entries = bp[BP_E820_ENTRIES];
	if (entries > E820_MAX_ENTRIES)
		entries = E820_MAX_ENTRIES;
	const struct e820_entry *e820 = (const void *)(bp + BP_E820_TABLE);
	for (unsigned i = 0; i < entries; i++)
		kprintf("e820: addr=0x%lx size=0x%lx type=0x%x\n", e820[i].addr, e820[i].size,
			e820[i].type);
	kprintf("elf64: cpl=%u\n", current_cpl());
}
