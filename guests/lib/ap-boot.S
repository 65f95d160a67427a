/*
 * The AP trampoline (see ap-boot.h). It runs at whatever page it was copied to: real-mode code
 * addresses through CS, and from protected mode on through %ebx = the page's linear address.
 * Nothing here uses a stack until the AP has its own, since several APs may run it at once.
 */
#include "ap-boot.h"

#define OFF(label) ((label) - ap_trampoline_start)
#define PARAM(field) (OFF(ap_trampoline_params) + (field))

	.section .rodata.ap_trampoline, "a"
	.balign 16
	.globl ap_trampoline_start, ap_trampoline_end
	.globl ap_trampoline_pm32, ap_trampoline_lm64, ap_trampoline_params

	.code16
ap_trampoline_start:
	cli
	cld
	mov %cs, %ax
	mov %ax, %ds
	movzwl %ax, %ebx
	shl $4, %ebx			/* linear address of this page */
	lgdtl PARAM(AP_BOOT_GDTR)
	mov %cr0, %eax
	or $1, %eax			/* PE */
	mov %eax, %cr0
	ljmpl *PARAM(AP_BOOT_PM_JUMP)

	.code32
ap_trampoline_pm32:
	mov $AP_BOOT_DS, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	mov %eax, %fs
	mov %eax, %gs
	mov %cr4, %eax
	or $(1 << 5), %eax		/* PAE */
	mov %eax, %cr4
	mov PARAM(AP_BOOT_CR3)(%ebx), %eax
	mov %eax, %cr3
	mov $0xc0000080, %ecx		/* EFER */
	rdmsr
	or $(1 << 8), %eax		/* LME */
	wrmsr
	mov %cr0, %eax
	or $0x80000000, %eax		/* PG */
	mov %eax, %cr0
	ljmp *PARAM(AP_BOOT_LM_JUMP)(%ebx)

	.code64
ap_trampoline_lm64:
	mov %ebx, %ebx			/* the upper half is not guaranteed across the mode switch */
	mov $1, %eax
	lock xadd %eax, PARAM(AP_BOOT_NEXT)(%rbx)
	mov %eax, %edi			/* entry's argument: this AP's index */
	lea 1(%rax), %rcx
	imul PARAM(AP_BOOT_STACK_SIZE)(%rbx), %rcx
	add PARAM(AP_BOOT_STACKS)(%rbx), %rcx
	mov %rcx, %rsp
	xor %ebp, %ebp
	call *PARAM(AP_BOOT_ENTRY)(%rbx)
1:	cli
	hlt
	jmp 1b

	.balign 16
ap_trampoline_params:
	.long 0				/* AP_BOOT_PM_JUMP: offset, filled in */
	.word AP_BOOT_CS32, 0
	.long 0				/* AP_BOOT_LM_JUMP */
	.word AP_BOOT_CS64
	.word 31			/* AP_BOOT_GDTR: limit */
	.long 0				/* base, filled in */
	.long 0				/* padding */
	.long 0, 0			/* AP_BOOT_CR3 */
	.quad 0, 0, 0			/* AP_BOOT_STACKS, AP_BOOT_STACK_SIZE, AP_BOOT_ENTRY */
	.long 0, 0			/* AP_BOOT_NEXT */
	/* AP_BOOT_GDT: accessed bits preset, so loading a segment writes nothing back */
	.quad 0
	.quad 0x00af9b000000ffff	/* 0x08: 64-bit code */
	.quad 0x00cf93000000ffff	/* 0x10: flat data */
	.quad 0x00cf9b000000ffff	/* 0x18: 32-bit code */
ap_trampoline_end:
