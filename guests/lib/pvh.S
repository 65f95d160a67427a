/*
 * PVH entry: the VMM starts us in 32-bit protected mode, paging off, flat segments, with
 * ebx = guest-physical address of struct hvm_start_info. We switch to long mode and call
 * kmain(start_info).
 *
 * Every instruction here is emulated on the target platform, so the page tables are not built
 * by a loop at boot: they are assembled into .data (identity map of the first 4 GiB with 2 MiB
 * pages, plus the 2 MiB at 12 GiB that test.elf's mmio mode writes to).
 */
#include "selectors.h"

#define XEN_ELFNOTE_PHYS32_ENTRY 18

/*
 * The note's descriptor is 8 bytes: QEMU 7.2 reads a size_t there, Firecracker and others read
 * 32 bits; the entry is below 4 GiB so both read the same value.
 */
	.section .note.Xen, "a", @note
	.balign 4
	.long 2f - 1f			/* namesz */
	.long 4f - 3f			/* descsz */
	.long XEN_ELFNOTE_PHYS32_ENTRY
1:	.asciz "Xen"
2:	.balign 4
3:	.quad pvh_start
4:	.balign 4

	.section .text.entry, "ax"
	.code32
	.globl pvh_start
	.type pvh_start, @function
pvh_start:
	cli
	/* ebx holds start_info until kmain: nothing below (nor the C ABI) clobbers it. */
	lgdt gdt_ptr
	mov $KERNEL_DS, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	mov %eax, %fs
	mov %eax, %gs
	mov $kernel_stack_top, %esp

	mov %cr4, %eax
	or $(1 << 5), %eax		/* PAE */
	mov %eax, %cr4
	mov $pml4, %eax
	mov %eax, %cr3
	mov $0xc0000080, %ecx		/* EFER */
	rdmsr
	or $(1 << 8), %eax		/* LME */
	wrmsr
	mov %cr0, %eax
	or $0x80000001, %eax		/* PG | PE */
	mov %eax, %cr0
	ljmp $KERNEL_CS, $1f

	.code64
1:	mov $kernel_stack_top, %rsp
	call cpu_init
	mov %ebx, %edi
	call kmain
	call shutdown
	.size pvh_start, . - pvh_start

/*
 * Page-table flags: P | RW | U/S (so CPL-3 code may touch anything) | A, plus PS | D for the
 * 2 MiB leaves. Accessed and dirty are preset so the CPU (here: the emulator) never has to
 * write them back. Above 3 GiB, where VMMs put MMIO, the leaves are uncached (PCD | PWT).
 */
#define TABLE 0x27
#define LEAF  0xe7
#define UNCACHED 0x18

	.section .data.pagetables, "aw"
	.balign 4096
pml4:
	.quad pdpt + TABLE
	.fill 511, 8, 0
pdpt:
	.quad pd + TABLE
	.quad pd + 0x1000 + TABLE
	.quad pd + 0x2000 + TABLE
	.quad pd + 0x3000 + TABLE
	.fill 8, 8, 0
	.quad pd_12g + TABLE		/* 12 GiB: test.elf's mmio mode */
	.fill 499, 8, 0
pd:
	.set addr, 0
	.rept 2048
	.if addr >= 0xc0000000
	.quad addr + LEAF + UNCACHED
	.else
	.quad addr + LEAF
	.endif
	.set addr, addr + 0x200000
	.endr
pd_12g:
	.quad 0x300000000 + LEAF + UNCACHED
	.fill 511, 8, 0
