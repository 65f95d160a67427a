/*
 * GDT, stacks, the trap entry points and the CPL-3 round trip.
 */
#include "selectors.h"

	.section .data.gdt, "aw"
	.balign 16
	.globl gdt
gdt:
	.quad 0
	.quad 0x00af9a000000ffff	/* KERNEL_CS: 64-bit code, DPL 0 */
	.quad 0x00cf92000000ffff	/* KERNEL_DS: flat data, DPL 0 */
	.quad 0x00cff2000000ffff	/* USER_DS: flat data, DPL 3 */
	.quad 0x00affa000000ffff	/* USER_CS: 64-bit code, DPL 3 */
	.quad 0, 0			/* TSS_SEL: filled in by cpu_init (the base is split up) */
gdt_end:

	/* lgdt operand; in 32-bit mode only the low 4 bytes of the base are read. */
	.balign 8
	.globl gdt_ptr
gdt_ptr:
	.word gdt_end - gdt - 1
	.quad gdt

	.section .bss.stacks, "aw", @nobits
	.balign 4096
	.globl kernel_stack_top, trap_stack_top, user_stack_top
	.space 16384
kernel_stack_top:
	/* RSP0: where the CPU switches when a trap or an interrupt arrives at CPL 3. */
	.space 8192
trap_stack_top:
	.space 65536
user_stack_top:

	.section .bss, "aw", @nobits
	.balign 8
kernel_rsp:	.space 8		/* run_user's kernel stack, for the way back */
	.globl user_cs
user_cs:	.space 8

	.text
	.code64

/* void load_gdt(void): lgdt, then reload every segment register (CS by a far return). */
	.globl load_gdt
	.type load_gdt, @function
load_gdt:
	lgdt gdt_ptr(%rip)
	pushq $KERNEL_CS
	lea 1f(%rip), %rax
	push %rax
	lretq
1:	mov $KERNEL_DS, %eax
	mov %eax, %ds
	mov %eax, %es
	mov %eax, %ss
	xor %eax, %eax
	mov %eax, %fs
	mov %eax, %gs
	ret
	.size load_gdt, . - load_gdt

/*
 * One 16-byte stub per vector, so the IDT entry for vector v is trap_stubs + 16 * v. Each
 * pushes a dummy error code where the CPU pushes none, then the vector number.
 */
	.balign 16
	.globl trap_stubs
trap_stubs:
	.set vec, 0
	.rept IDT_ENTRIES
	.balign 16
	.if vec == 8 || (vec >= 10 && vec <= 14) || vec == 17 || vec == 21 || vec == 29 || vec == 30
	.else
	pushq $0
	.endif
	pushq $vec
	jmp trap_common
	.set vec, vec + 1
	.endr

/*
 * Stack on entry: vector, error code, rip, cs, rflags, rsp, ss (the CPU aligned rsp to 16 before
 * pushing, so after the 15 register pushes below it is 16-byte aligned again for the C call).
 */
trap_common:
	cmpq $3, (%rsp)
	jne 1f
	testb $3, 24(%rsp)
	jnz user_done
1:	push %rax
	push %rcx
	push %rdx
	push %rbx
	push %rbp
	push %rsi
	push %rdi
	push %r8
	push %r9
	push %r10
	push %r11
	push %r12
	push %r13
	push %r14
	push %r15
	mov %rsp, %rdi
	call trap_dispatch
	pop %r15
	pop %r14
	pop %r13
	pop %r12
	pop %r11
	pop %r10
	pop %r9
	pop %r8
	pop %rdi
	pop %rsi
	pop %rbp
	pop %rbx
	pop %rdx
	pop %rcx
	pop %rax
	add $16, %rsp
	iretq

/*
 * int3 from CPL 3: the user function has finished (its result is in rax). Forget the user
 * context and return from run_user on the kernel stack it left.
 */
user_done:
	mov 24(%rsp), %rcx
	mov %rcx, user_cs(%rip)
	mov kernel_rsp(%rip), %rsp
	/* Entering CPL 0 through a gate loaded a null SS, and iretq to CPL 3 nulled DS and ES. */
	mov $KERNEL_DS, %ecx
	mov %ecx, %ss
	mov %ecx, %ds
	mov %ecx, %es
	pop %r15
	pop %r14
	pop %r13
	pop %r12
	pop %rbp
	pop %rbx
	ret

/* uint64_t run_user(uint64_t (*fn)(void *), void *arg) */
	.globl run_user
	.type run_user, @function
run_user:
	push %rbx
	push %rbp
	push %r12
	push %r13
	push %r14
	push %r15
	mov %rsp, kernel_rsp(%rip)
	pushq $USER_DS
	lea user_stack_top(%rip), %rax
	push %rax
	pushq $0x2			/* rflags: IF off, IOPL 0 */
	pushq $USER_CS
	lea user_trampoline(%rip), %rax
	push %rax
	mov %rdi, %rax
	mov %rsi, %rdi
	iretq
	.size run_user, . - run_user

/* Runs at CPL 3. */
user_trampoline:
	call *%rax
	int3
	ud2
