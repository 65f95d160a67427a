/* GDT/TSS/IDT set-up, trap dispatch, shutdown. */
#include "lib.h"

struct tss64 {
	uint32_t reserved0;
	uint64_t rsp0, rsp1, rsp2;
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iomap_base;
} PACKED;

struct idt_gate {
	uint16_t offset_low;
	uint16_t selector;
	uint8_t ist;
	uint8_t type_attr;
	uint16_t offset_mid;
	uint32_t offset_high;
	uint32_t reserved;
} PACKED;

struct table_ptr {
	uint16_t limit;
	uint64_t base;
} PACKED;

/* What trap_common pushed, lowest address first. */
struct trap_frame {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rdi, rsi, rbp, rbx, rdx, rcx, rax;
	uint64_t vector, error;
	uint64_t rip, cs, rflags, rsp, ss;
};

extern uint64_t gdt[GDT_ENTRIES];
extern char trap_stubs[], trap_stack_top[];
void load_gdt(void);
void trap_dispatch(struct trap_frame *f);

static struct tss64 tss __attribute__((aligned(16)));
static struct idt_gate idt[IDT_ENTRIES] __attribute__((aligned(16)));
static void (*irq_handlers[16])(void);
static void (*vector_handlers[IDT_ENTRIES])(void);
static struct table_ptr idtr;

void cpu_init(void)
{
	uint64_t base = (uint64_t)&tss;

	/*
	 * No I/O bitmap (iomap_base past the end): port I/O at CPL 3 faults. The loader zeroed .bss,
	 * so only the fields that matter are written.
	 */
	tss.rsp0 = (uint64_t)trap_stack_top;
	tss.iomap_base = sizeof(tss);
	gdt[TSS_SEL / 8] = (sizeof(tss) - 1) | (base & 0xffffff) << 16 | 0x89ull << 40 |
			   (base >> 24 & 0xff) << 56;
	gdt[TSS_SEL / 8 + 1] = base >> 32;
	load_gdt();
	__asm__ volatile("ltr %w0" : : "r"(TSS_SEL));

	for (unsigned v = 0; v < IDT_ENTRIES; v++) {
		uint64_t addr = (uint64_t)trap_stubs + 16 * v;

		idt[v].offset_low = addr;
		idt[v].selector = KERNEL_CS;
		/* Interrupt gates; only int3 may be raised from CPL 3 (it is how user code returns). */
		idt[v].type_attr = v == 3 ? 0xee : 0x8e;
		idt[v].offset_mid = addr >> 16;
		idt[v].offset_high = addr >> 32;
	}
	idtr = (struct table_ptr){ sizeof(idt) - 1, (uint64_t)idt };
	__asm__ volatile("lidt %0" : : "m"(idtr));
}

void cpu_init_ap(void)
{
	load_gdt();
	__asm__ volatile("lidt %0" : : "m"(idtr));
}

void irq_set_handler(unsigned irq, void (*handler)(void))
{
	irq_handlers[irq] = handler;
}

void vector_set_handler(unsigned vector, void (*handler)(void))
{
	if (vector >= 0x30 && vector < IDT_ENTRIES && vector != APIC_SPURIOUS_VECTOR)
		vector_handlers[vector] = handler;
}

/* Reads the 8259's in-service register: a spurious IRQ 7 or 15 has its bit clear. */
static uint8_t pic_isr(uint16_t cmd_port)
{
	outb(cmd_port, 0x0b);
	return inb(cmd_port);
}

static void irq_dispatch(unsigned irq)
{
	if (irq_handlers[irq]) {
		irq_handlers[irq]();
		return;
	}
	if (irq == 7 && !(pic_isr(0x20) & 0x80))
		return;
	if (irq == 15 && !(pic_isr(0xa0) & 0x80)) {
		outb(0x20, 0x20); /* the master did see the cascade line */
		return;
	}
	if (irq >= 8)
		outb(0xa0, 0x20);
	outb(0x20, 0x20);
}

static const char *const exception_names[32] = {
	"#DE divide error", "#DB debug", "NMI", "#BP breakpoint", "#OF overflow",
	"#BR bound range", "#UD invalid opcode", "#NM no FPU", "#DF double fault", "coprocessor overrun",
	"#TS invalid TSS", "#NP segment not present", "#SS stack fault", "#GP general protection",
	"#PF page fault", "reserved", "#MF x87 error", "#AC alignment check", "#MC machine check",
	"#XM SIMD error", "#VE virtualization", "#CP control protection",
};

void trap_dispatch(struct trap_frame *f)
{
	if (f->vector == APIC_SPURIOUS_VECTOR) /* needs no EOI */
		return;
	if (f->vector >= 0x20 && f->vector < 0x30) {
		irq_dispatch(f->vector - 0x20);
		return;
	}
	if (f->vector < IDT_ENTRIES && vector_handlers[f->vector]) {
		vector_handlers[f->vector]();
		return;
	}
	uint64_t cr2;
	__asm__ volatile("mov %%cr2, %0" : "=r"(cr2));
	const char *name = f->vector >= 32 ? "unexpected interrupt" :
			   exception_names[f->vector] ? exception_names[f->vector] : "reserved";
	/* Start a fresh line: the exception may have hit in the middle of one. */
	kprintf("\nexception: vector=0x%lx (%s) error=0x%lx rip=0x%lx cs=0x%lx rsp=0x%lx cr2=0x%lx\n",
		f->vector, name, f->error, f->rip, f->cs, f->rsp, cr2);
	shutdown();
}

NORETURN void triple_fault(void)
{
	static const struct table_ptr no_idt = { 0, 0 };

	__asm__ volatile("lidt %0\n\tud2" : : "m"(no_idt));
	__builtin_unreachable();
}

NORETURN void shutdown(void)
{
	outb(0x64, 0xfe);
	triple_fault();
}
