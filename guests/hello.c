/*
 * hello.elf: tsvmm's demo guest. It greets, shows that it runs at CPL 0, does some real work at
 * CPL 3, then echoes what you type (receive interrupts on IRQ 4 through the 8259) until "exit".
 * It talks to a person at a raw terminal, hence "\r\n" line ends.
 */
#include "lib/lib.h"
#include "lib/pvh.h"

#define COLLATZ_LIMIT 1000000

/*
 * CPL 3, natively: the start below COLLATZ_LIMIT with the longest Collatz chain, and its length.
 * About 130 million steps: a fraction of a second natively, minutes if emulated at CPL 0.
 */
static uint64_t longest_collatz(void *arg)
{
	(void)arg;
	uint64_t best = 1, best_steps = 0;

	for (uint64_t start = 1; start < COLLATZ_LIMIT; start++) {
		uint64_t x = start, steps = 0;
		while (x != 1) {
			x = x & 1 ? 3 * x + 1 : x / 2;
			steps++;
		}
		if (steps > best_steps) {
			best = start;
			best_steps = steps;
		}
	}
	return best << 32 | best_steps;
}

/* ---- the 8259 and the UART's receive interrupt ---- */

#define PIC1 0x20
#define PIC2 0xa0
#define IRQ_COM1 4

#define UART_IER 1
#define UART_MCR 4
#define UART_LSR 5
#define LSR_DR 0x01

static bool pic_init(void)
{
	static const uint8_t master_mask = (uint8_t)~(1 << IRQ_COM1 | 1 << 2); /* COM1 and the cascade */

	outb(PIC1, 0x11); /* ICW1: edge triggered, cascade, ICW4 follows */
	outb(PIC2, 0x11);
	outb(PIC1 + 1, 0x20); /* ICW2: vectors 0x20-0x27 and 0x28-0x2f, clear of the exceptions */
	outb(PIC2 + 1, 0x28);
	outb(PIC1 + 1, 1 << 2); /* ICW3: the slave hangs off IRQ 2 */
	outb(PIC2 + 1, 2);
	outb(PIC1 + 1, 0x01); /* ICW4: 8086 mode */
	outb(PIC2 + 1, 0x01);
	outb(PIC1 + 1, master_mask);
	outb(PIC2 + 1, 0xff);
	/* Where there is no 8259, the mask does not read back (the port floats to 0xff). */
	return inb(PIC1 + 1) == master_mask;
}

static uint64_t rdmsr(uint32_t msr)
{
	uint32_t lo, hi;

	__asm__ volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return (uint64_t)hi << 32 | lo;
}

static void wrmsr(uint32_t msr, uint64_t v)
{
	__asm__ volatile("wrmsr" : : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32)));
}

#define MSR_APIC_BASE 0x1b
#define APIC_BASE_ENABLE (1u << 11)
#define APIC_BASE_X2APIC (1u << 10)
#define APIC_SVR  0xf0
#define APIC_LVT0 0x350

/*
 * The 8259 reaches the CPU through the local APIC's LINT0, and a VMM's LAPIC may well come out
 * of reset with LINT0 masked (QEMU's microvm does). So put the LAPIC in "virtual wire" mode:
 * software-enabled, LINT0 unmasked in ExtINT mode. Without a LAPIC there is nothing in the way.
 */
static void lapic_virtual_wire(void)
{
	uint32_t eax = 1, ebx, ecx, edx;

	__asm__ volatile("cpuid" : "+a"(eax), "=b"(ebx), "=c"(ecx), "=d"(edx));
	if (!(edx & (1 << 9)))
		return;
	uint64_t base = rdmsr(MSR_APIC_BASE);
	if (!(base & APIC_BASE_ENABLE))
		return;
	uint32_t svr = 0x100 | APIC_SPURIOUS_VECTOR, lvt0 = 0x700;
	if (base & APIC_BASE_X2APIC) {
		wrmsr(0x800 + (APIC_SVR >> 4), svr);
		wrmsr(0x800 + (APIC_LVT0 >> 4), lvt0);
	} else {
		volatile uint32_t *apic = (volatile uint32_t *)(base & ~0xfffull);
		apic[APIC_SVR / 4] = svr;
		apic[APIC_LVT0 / 4] = lvt0;
	}
}

/* ---- the line editor ---- */

static char line[80];
static size_t line_len;
static bool last_was_cr;
static volatile bool goodbye;

static void prompt(void)
{
	console_puts("> ");
}

static void run_line(void)
{
	if (str_equal(line, line_len, "exit") || str_equal(line, line_len, "quit") ||
	    str_equal(line, line_len, "poweroff")) {
		goodbye = true;
		return;
	}
	if (str_equal(line, line_len, "help"))
		kprintf("hello: I echo what you type. `exit`, `quit`, `poweroff` or Ctrl-D shut me "
			"down; Ctrl-A X quits the VMM.\n");
	else if (line_len)
		kprintf("hello: you typed \"%.*s\" (%zu characters)\n", (int)line_len, line,
			line_len);
	prompt();
}

static void receive(char c)
{
	bool was_cr = last_was_cr;

	last_was_cr = c == '\r';
	if (goodbye)
		return;
	switch (c) {
	case '\n':
		if (was_cr) /* the second half of a "\r\n" */
			break;
		/* fall through */
	case '\r':
		console_putc('\n');
		run_line();
		line_len = 0;
		break;
	case 0x7f:
	case '\b':
		if (line_len) {
			line_len--;
			console_puts("\b \b");
		}
		break;
	case 0x03: /* Ctrl-C: drop the line */
		console_puts("^C\n");
		line_len = 0;
		prompt();
		break;
	case 0x04: /* Ctrl-D */
		console_puts("^D\n");
		goodbye = true;
		break;
	default:
		if (c >= 0x20 && c < 0x7f && line_len < sizeof(line)) {
			line[line_len++] = c;
			console_putc(c);
		}
	}
}

static void drain_uart(void)
{
	while (inb(COM1 + UART_LSR) & LSR_DR)
		receive(inb(COM1));
}

static void com1_irq(void)
{
	drain_uart();
	outb(PIC1, 0x20); /* EOI */
}

/* ---- the story ---- */

static void greet(const struct hvm_start_info *si)
{
	const struct hvm_memmap_table_entry *map;
	uint32_t entries = pvh_memmap(si, &map);
	uint64_t ram = 0;

	for (uint32_t i = 0; i < entries; i++)
		if (map[i].type == 1)
			ram += map[i].size;

	kprintf("\n"
		"  +-------------------------------------------------+\n"
		"  |  Hello from a tiny x86-64 kernel, run by tsvmm  |\n"
		"  +-------------------------------------------------+\n"
		"\n");
	if (si->magic == HVM_START_MAGIC)
		kprintf("hello: booted through the PVH entry (start_info v%u at 0x%lx)\n", si->version,
			(uint64_t)si);
	else
		kprintf("hello: booted without a valid PVH start_info (magic 0x%x)\n", si->magic);
	if (entries)
		kprintf("hello: memory: %lu MiB of RAM in %u memory map entries\n", ram >> 20, entries);
	else
		kprintf("hello: memory: unknown (no memory map)\n");
	kprintf("hello: command line: \"%s\"\n", pvh_cmdline(si));
	kprintf("hello: running at CPL %u\n", current_cpl());
}

static void work_at_cpl3(void)
{
	kprintf("hello: dropping to CPL 3 to find the longest Collatz chain below %u...\n",
		COLLATZ_LIMIT);
	uint64_t r = run_user(longest_collatz, NULL);
	kprintf("hello: back at CPL %u; the work ran at CPL %lu (cs=0x%lx): %lu takes %lu steps\n",
		current_cpl(), user_cs & 3, user_cs, r >> 32, r & 0xffffffff);
}

void kmain(const struct hvm_start_info *si)
{
	console_init(true);
	greet(si);
	work_at_cpl3();

	kprintf("hello: type something and I echo it; `exit` shuts down; Ctrl-A X quits the VMM.\n");
	prompt();

	bool have_pic = pic_init();
	lapic_virtual_wire();
	irq_set_handler(IRQ_COM1, com1_irq);
	outb(COM1 + UART_MCR, 0x0b); /* DTR | RTS | OUT2 (OUT2 gates the IRQ line on PCs) */
	outb(COM1 + UART_IER, 0x01); /* interrupt on received data */

	if (have_pic) {
		for (;;) {
			cli();
			if (goodbye)
				break;
			/* sti takes effect after hlt starts, so the wake-up cannot slip in between. */
			__asm__ volatile("sti; hlt" : : : "memory");
		}
	} else {
		kprintf("\nhello: no 8259 PIC here, so I poll the UART instead\n");
		prompt();
		while (!goodbye)
			drain_uart();
	}
	kprintf("hello: goodbye!\n");
	shutdown();
}
