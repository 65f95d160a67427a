/*
 * The application processors' way in: a 16-bit real-mode trampoline that the boot CPU copies to
 * a free page below 1 MiB and points the STARTUP IPI at. Each AP goes real mode → 32-bit
 * protected mode → long mode on the boot CPU's page tables, takes the next stack from an
 * atomically incremented counter and calls entry(index) (index 0 for the first AP to arrive).
 *
 * The parameter block sits at the end of the copied trampoline; the boot CPU fills it in.
 */
#ifndef GUESTS_AP_BOOT_H
#define GUESTS_AP_BOOT_H

/* Offsets in the parameter block, shared with ap-boot.S. */
#define AP_BOOT_PM_JUMP		0	/* far pointer m16:32 to the 32-bit code */
#define AP_BOOT_LM_JUMP		8	/* far pointer m16:32 to the 64-bit code */
#define AP_BOOT_GDTR		14	/* lgdt operand: limit (2 bytes), base (4) */
#define AP_BOOT_CR3		24
#define AP_BOOT_STACKS		32	/* base of the stacks: AP i uses [base + i*size, base + (i+1)*size) */
#define AP_BOOT_STACK_SIZE	40
#define AP_BOOT_ENTRY		48	/* void entry(unsigned index), called in long mode */
#define AP_BOOT_NEXT		56	/* the next index (32 bits), taken with lock xadd */
#define AP_BOOT_GDT		64	/* null, 64-bit code, data, 32-bit code */
#define AP_BOOT_PARAMS_SIZE	96

/* The trampoline's own GDT selectors: 0x08 and 0x10 are the same as the kernel's. */
#define AP_BOOT_CS64		0x08
#define AP_BOOT_DS		0x10
#define AP_BOOT_CS32		0x18

#ifndef __ASSEMBLER__
#include <stdint.h>

struct ap_boot_params {
	uint32_t pm_jump_offset;
	uint16_t pm_jump_selector;
	uint16_t pad0;
	uint32_t lm_jump_offset;
	uint16_t lm_jump_selector;
	uint16_t gdt_limit;
	uint32_t gdt_base;
	uint32_t pad1;
	uint32_t cr3;
	uint32_t pad2;
	uint64_t stacks;
	uint64_t stack_size;
	uint64_t entry;
	uint32_t next;
	uint32_t pad3;
	uint64_t gdt[4];
} __attribute__((packed));

_Static_assert(sizeof(struct ap_boot_params) == AP_BOOT_PARAMS_SIZE, "ap_boot_params layout");
_Static_assert(__builtin_offsetof(struct ap_boot_params, gdt_limit) == AP_BOOT_GDTR, "gdtr");
_Static_assert(__builtin_offsetof(struct ap_boot_params, cr3) == AP_BOOT_CR3, "cr3");
_Static_assert(__builtin_offsetof(struct ap_boot_params, next) == AP_BOOT_NEXT, "next");
_Static_assert(__builtin_offsetof(struct ap_boot_params, gdt) == AP_BOOT_GDT, "gdt");

/* The trampoline's bytes (in .rodata, linked at some address above 1 MiB: copy, don't run). */
extern const char ap_trampoline_start[], ap_trampoline_end[];
/* Where the code enters (offsets from ap_trampoline_start), for the far pointers. */
extern const char ap_trampoline_pm32[], ap_trampoline_lm64[], ap_trampoline_params[];

/*
 * Copies the trampoline to `page` (4 KiB aligned, below 1 MiB) and fills in its parameters;
 * returns the parameter block in the copy (its `next` counts the APs that got in).
 */
volatile struct ap_boot_params *ap_boot_install(uint32_t page, void *stacks, uint64_t stack_size,
					       void (*entry)(unsigned));
#endif

#endif
