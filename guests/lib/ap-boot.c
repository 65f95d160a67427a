/* Installing the AP trampoline (see ap-boot.h). */
#include "ap-boot.h"
#include "lib.h"

volatile struct ap_boot_params *ap_boot_install(uint32_t page, void *stacks, uint64_t stack_size,
					       void (*entry)(unsigned))
{
	char *dst = (char *)(uint64_t)page;
	memcpy(dst, ap_trampoline_start, ap_trampoline_end - ap_trampoline_start);

	volatile struct ap_boot_params *p =
		(volatile struct ap_boot_params *)(dst + (ap_trampoline_params - ap_trampoline_start));
	uint64_t cr3;
	__asm__ volatile("mov %%cr3, %0" : "=r"(cr3));
	p->pm_jump_offset = page + (ap_trampoline_pm32 - ap_trampoline_start);
	p->lm_jump_offset = page + (ap_trampoline_lm64 - ap_trampoline_start);
	p->gdt_base = page + (ap_trampoline_params - ap_trampoline_start) + AP_BOOT_GDT;
	p->cr3 = (uint32_t)cr3;
	p->stacks = (uint64_t)stacks;
	p->stack_size = stack_size;
	p->entry = (uint64_t)entry;
	p->next = 0;
	return p;
}
