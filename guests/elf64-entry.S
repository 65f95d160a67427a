/*
 * elf64.elf's entry: no PVH note, so the VMM enters e_entry directly in 64-bit mode at CPL 0,
 * paging on (first 4 GiB identity-mapped by the VMM), rsi = boot_params. The VMM promises no
 * stack, so setting one up comes first; the GDT and IDT are our own too.
 */
	.section .text.entry, "ax"
	.code64
	.globl _start
	.type _start, @function
_start:
	cli
	lea kernel_stack_top(%rip), %rsp
	mov %rsi, %rbx			/* callee-saved across cpu_init */
	call cpu_init
	mov %rbx, %rdi
	call elf64_main
	call shutdown
	.size _start, . - _start
