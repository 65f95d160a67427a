/*
 * smp.elf: the interrupt, timer and SMP test guest. In order, each line prefixed "smp: ":
 *   1. finds the CPUs, IOAPIC and interrupt source overrides in the ACPI MADT;
 *   2. starts every AP (INIT, STARTUP, STARTUP) through a real-mode trampoline; each AP reaches
 *      long mode, says hello and parks; the boot CPU waits for all of them;
 *   3. counts 10 ticks of the local APIC timer (periodic), then 10 of the PIT through the IOAPIC;
 *   4. reads a line from COM1 with receive interrupts through the IOAPIC, and shuts down.
 * Every wait has a timeout (measured with the TSC) that says what it waited for and shuts down.
 * See README.md for the exact lines. Lines end in a bare "\n".
 */
#include "lib/acpi.h"
#include "lib/ap-boot.h"
#include "lib/apic.h"
#include "lib/lib.h"
#include "lib/pvh.h"
#include "lib/x86.h"

#define VEC_LAPIC_TIMER	0x40
#define VEC_WATCHDOG	0x41
#define VEC_PIT		0x42
#define VEC_COM1	0x43

#define TICKS		10
#define AP_STACK_SIZE	8192

/* Timeouts: generous, since CPL-0 code is emulated on the target platform (~280 ns/instruction). */
#define AP_TIMEOUT_MS		5000
#define LAPIC_TIMEOUT_MS	3000
#define PIT_TIMEOUT_MS		3000
#define RX_TIMEOUT_S		60

#define IOAPIC_DEFAULT	0xfec00000u
#define PIT_HZ		1193182u
#define PIT_RATE	100u

#define UART_IER 1
#define UART_MCR 4
#define UART_LSR 5
#define LSR_DR	 0x01

static bool verbose;
static uint64_t tsc_khz;
static uint64_t kmain_tsc;
static uint32_t bsp_apic_id;

/* ---- console shared between CPUs: a spinlock taken with xchg (implicitly locked) ---- */

static volatile uint32_t console_lock_word;

static void console_lock(void)
{
	while (__atomic_exchange_n(&console_lock_word, 1, __ATOMIC_ACQUIRE))
		while (console_lock_word)
			x86_pause();
}

static void console_unlock(void)
{
	__atomic_store_n(&console_lock_word, 0, __ATOMIC_RELEASE);
}

/* One whole line (or more) at a time. Never called from an interrupt handler. */
__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	console_lock();
	kvprintf(fmt, ap);
	console_unlock();
	va_end(ap);
}

/* ---- time ---- */

static uint64_t ms_to_tsc(uint64_t ms) { return ms * tsc_khz; }
static uint64_t tsc_to_us(uint64_t t) { return t * 1000 / tsc_khz; }

static void delay_us(uint64_t us)
{
	uint64_t end = x86_rdtsc() + us * tsc_khz / 1000;
	while (x86_rdtsc() < end)
		x86_pause();
}

/* Halts until *counter reaches target (interrupts on while halted) or the TSC passes deadline. */
static bool wait_halted(volatile unsigned *counter, unsigned target, uint64_t deadline)
{
	for (;;) {
		if (*counter >= target)
			return true;
		if (x86_rdtsc() >= deadline)
			return false;
		x86_sti_hlt_cli();
	}
}

/* The same without halting: for when no interrupt is known yet to wake us up. */
static bool wait_spinning(volatile unsigned *counter, unsigned target, uint64_t deadline)
{
	bool ok = true;

	sti();
	while (*counter < target) {
		if (x86_rdtsc() >= deadline) {
			ok = *counter >= target;
			break;
		}
		x86_pause();
	}
	cli();
	return ok;
}

/* ---- command line ---- */

/* Read before the APs start, so the unserialized kprintf of a bad value is safe. */
static uint64_t arg_u64(const char *cmdline, const char *key, uint64_t fallback)
{
	return cmdline_u64(cmdline, "smp", key, fallback);
}

/* ---- step 1: ACPI ---- */

static struct acpi_madt_info madt;

static void find_cpus(const struct hvm_start_info *si)
{
	const char *why = "";
	enum acpi_status status = acpi_read_madt(si, &madt, &why);

	if (status == ACPI_NO_RSDP)
		say("smp: no ACPI tables\n");
	else if (status == ACPI_BAD_TABLES)
		say("smp: bad ACPI tables: %s\n", why);
	else if (!madt.cpus)
		say("smp: no enabled cpus in the MADT\n");
	if (madt.cpus) {
		say("smp: cpus=%u apic-ids=", madt.cpus);
		for (unsigned i = 0; i < madt.cpus; i++)
			say(i ? ",%u" : "%u", madt.apic_ids[i]);
		say("\n");
		if (madt.cpus_ignored)
			say("smp: ignoring %u more cpus (at most %u)\n", madt.cpus_ignored, ACPI_MAX_CPUS);
	} else {
		/* Just ourselves: the id is filled in once the local APIC is up. */
		madt.cpus = 1;
		madt.apic_ids[0] = ~0u;
	}
	for (unsigned i = 0; i < madt.ioapics; i++)
		say("smp: ioapic=0x%x gsi-base=%u\n", madt.ioapic[i].address, madt.ioapic[i].gsi_base);
	if (!madt.ioapics) {
		madt.ioapics = 1;
		madt.ioapic[0] = (struct acpi_ioapic){ .id = 0, .address = IOAPIC_DEFAULT, .gsi_base = 0 };
		say("smp: ioapic=0x%x gsi-base=0 assumed\n", IOAPIC_DEFAULT);
	}
	if (verbose && status == ACPI_OK) {
		say("smp: rsdp=0x%lx (%s) madt=0x%lx lapic=0x%lx\n", madt.rsdp,
		    madt.rsdp_from_start_info ? "start_info" : "scan", madt.madt, madt.lapic_address);
		for (unsigned i = 0; i < madt.overrides; i++)
			say("smp: override bus=%u irq=%u gsi=%u flags=0x%x\n", madt.override[i].bus,
			    madt.override[i].irq, madt.override[i].gsi, madt.override[i].flags);
	}
}

/* The IOAPIC and pin that serve ISA IRQ `irq`, after the MADT's override if any. */
static bool isa_route(uint8_t irq, uint32_t *ioapic, unsigned *pin, uint16_t *flags, uint32_t *gsi)
{
	*gsi = acpi_isa_irq_gsi(&madt, irq, flags);
	for (unsigned i = 0; i < madt.ioapics; i++) {
		uint32_t base = madt.ioapic[i].address, first = madt.ioapic[i].gsi_base;
		unsigned pins = ioapic_pins(base);
		if (*gsi >= first && *gsi < first + pins) {
			*ioapic = base;
			*pin = *gsi - first;
			return true;
		}
	}
	return false;
}

/* ---- step 2: the APs ---- */

static char ap_stacks[ACPI_MAX_CPUS][AP_STACK_SIZE] __attribute__((aligned(16)));
static volatile unsigned aps_online;
/* counter=1: once every CPU is online, each counts on the console (snapshot tests check the sequences). */
static volatile bool counting;
static uint64_t count_pause = 2000;

/* "smp: cpu=ID n=1", "n=2", ... for this CPU, forever, under the console lock. */
static void count_forever(uint32_t id)
{
	for (uint64_t n = 1;; n++) {
		console_lock();
		kprintf("smp: cpu=%u n=%lu\n", id, n);
		console_unlock();
		for (uint64_t i = 0; i < count_pause; i++)
			__asm__ volatile("pause");
	}
}
static uint64_t ap_arrival_tsc[ACPI_MAX_CPUS], first_sipi_tsc;

static void ap_main(unsigned index)
{
	if (index < ACPI_MAX_CPUS)
		ap_arrival_tsc[index] = x86_rdtsc();
	cpu_init_ap();
	lapic_init_ap();
	lapic_enable();
	uint32_t id = lapic_id();

	console_lock();
	kprintf("smp: ap apic-id=%u online\n", id);
	__atomic_add_fetch(&aps_online, 1, __ATOMIC_RELEASE);
	console_unlock();
	if (counting)
		count_forever(id);
	for (;;)
		x86_sti_hlt_cli();
}

/* A free page below 1 MiB for the trampoline: RAM by the memory map, clear of the VMM's tables. */
static uint32_t trampoline_page(const struct hvm_start_info *si)
{
	static const uint32_t candidates[] = { 0x8000, 0x1000, 0x2000, 0x3000, 0x4000, 0x5000,
					       0x10000, 0x30000, 0x40000, 0x50000, 0x60000, 0x70000 };
	const struct hvm_memmap_table_entry *map;
	uint32_t entries = pvh_memmap(si, &map);

	if (!entries)
		return candidates[0];
	for (unsigned c = 0; c < sizeof(candidates) / sizeof(candidates[0]); c++)
		for (uint32_t i = 0; i < entries; i++)
			if (map[i].type == 1 && map[i].addr <= candidates[c] &&
			    candidates[c] + 0x1000 <= map[i].addr + map[i].size)
				return candidates[c];
	return 0;
}

static void send_ipi(uint32_t apic_id, uint32_t icr)
{
	if (!lapic_send_ipi(apic_id, icr, ms_to_tsc(10)))
		say("smp: ipi 0x%x to apic-id=%u still pending after 10 ms\n", icr, apic_id);
}

static void start_aps(const struct hvm_start_info *si)
{
	unsigned cpus = madt.cpus, aps = 0;
	uint32_t targets[ACPI_MAX_CPUS];

	if (madt.apic_ids[0] == ~0u)
		madt.apic_ids[0] = bsp_apic_id;
	bool bsp_listed = false;
	for (unsigned i = 0; i < cpus; i++) {
		uint32_t id = madt.apic_ids[i];
		if (id == bsp_apic_id)
			bsp_listed = true;
		else if (id > 0xff && !lapic_x2apic())
			say("smp: apic-id=%u cannot be reached in xAPIC mode\n", id);
		else
			targets[aps++] = id;
	}
	if (!bsp_listed)
		say("smp: the boot cpu's apic-id=%u is not in the MADT\n", bsp_apic_id);
	unsigned expected = bsp_listed ? cpus - 1 : cpus;

	uint64_t start = x86_rdtsc();
	if (aps) {
		uint32_t page = trampoline_page(si);
		if (!page) {
			say("smp: no free page below 1 MiB for the AP trampoline\n");
			shutdown();
		}
		ap_boot_install(page, ap_stacks, AP_STACK_SIZE, ap_main);
		if (verbose)
			say("smp: trampoline=0x%x\n", page);

		/* INIT (assert, then de-assert as the MP spec has it; x2APIC has no de-assert). */
		for (unsigned i = 0; i < aps; i++) {
			send_ipi(targets[i], ICR_INIT | ICR_LEVEL_ASSERT | ICR_LEVEL_TRIGGER);
			if (!lapic_x2apic())
				send_ipi(targets[i], ICR_INIT | ICR_LEVEL_TRIGGER);
		}
		delay_us(10000);
		first_sipi_tsc = x86_rdtsc();
		for (int round = 0; round < 2; round++) {
			for (unsigned i = 0; i < aps; i++)
				send_ipi(targets[i], ICR_STARTUP | page >> 12);
			delay_us(200);
		}
	}

	/*
	 * Spin, not halt: nothing is known yet to wake us. A loop of a few emulated instructions, and
	 * the APs mostly wait on console exits, so it costs them little.
	 */
	bool ok = wait_spinning(&aps_online, expected, start + ms_to_tsc(AP_TIMEOUT_MS));
	uint64_t end = x86_rdtsc();
	unsigned online = aps_online + (bsp_listed ? 1 : 0);
	unsigned total = expected + (bsp_listed ? 1 : 0);
	if (!ok) {
		say("smp: timeout: %u of %u cpus online\n", online, total);
		shutdown();
	}
	say("smp: all %u cpus online\n", total);
	if (verbose) {
		for (unsigned i = 0; i < aps_online && i < ACPI_MAX_CPUS; i++)
			say("smp: time ap %u reached long mode %lu us after the first STARTUP\n", i,
			    tsc_to_us(ap_arrival_tsc[i] - first_sipi_tsc));
		say("smp: time aps=%lu us (from the first INIT) since-kmain=%lu us\n",
		    tsc_to_us(end - start), tsc_to_us(end - kmain_tsc));
	}
}

/* ---- step 3: timers ---- */

static volatile unsigned lapic_ticks, pit_ticks;
static uint32_t pit_ioapic;
static unsigned pit_pin;

static void lapic_timer_irq(void)
{
	if (++lapic_ticks >= TICKS)
		lapic_write(LAPIC_TIMER_INITIAL, 0); /* stops it */
	lapic_eoi();
}

static void watchdog_irq(void)
{
	lapic_eoi(); /* only here to wake the boot CPU from hlt */
}

static void pit_irq(void)
{
	if (pit_ticks < TICKS && ++pit_ticks == TICKS)
		ioapic_mask(pit_ioapic, pit_pin);
	lapic_eoi();
}

static uint32_t lapic_timer_hz;

static void lapic_timer(void)
{
	/* Calibrate against the TSC: 10 ms of counting down from the top, divided by 16. */
	lapic_write(LAPIC_LVT_TIMER, LVT_MASKED | VEC_LAPIC_TIMER);
	lapic_write(LAPIC_TIMER_DIVIDE, TIMER_DIVIDE_16);
	lapic_write(LAPIC_TIMER_INITIAL, 0xffffffff);
	delay_us(10000);
	uint32_t left = lapic_read(LAPIC_TIMER_CURRENT);
	lapic_write(LAPIC_TIMER_INITIAL, 0);
	lapic_timer_hz = (0xffffffffu - left) * 100u;
	if (verbose)
		say("smp: lapic-timer-hz=%u (divide by 16)\n", lapic_timer_hz);
	if (lapic_timer_hz < 1000) {
		say("smp: the lapic timer does not count (current count 0x%x)\n", left);
		shutdown();
	}

	vector_set_handler(VEC_LAPIC_TIMER, lapic_timer_irq);
	lapic_write(LAPIC_LVT_TIMER, LVT_TIMER_PERIODIC | VEC_LAPIC_TIMER);
	uint64_t start = x86_rdtsc();
	lapic_write(LAPIC_TIMER_INITIAL, lapic_timer_hz / 100);
	if (!wait_spinning(&lapic_ticks, TICKS, start + ms_to_tsc(LAPIC_TIMEOUT_MS))) {
		lapic_write(LAPIC_TIMER_INITIAL, 0);
		say("smp: timeout waiting for lapic timer ticks (%u of %u)\n", lapic_ticks, TICKS);
		shutdown();
	}
	say("smp: lapic timer ticks=%u\n", lapic_ticks);
	if (verbose)
		say("smp: time lapic=%lu us for %u ticks at 100 Hz\n", tsc_to_us(x86_rdtsc() - start),
		    TICKS);
}

/* From here on the local APIC timer ticks at 10 Hz on its own vector, so hlt always wakes up. */
static void start_watchdog(void)
{
	vector_set_handler(VEC_WATCHDOG, watchdog_irq);
	lapic_write(LAPIC_LVT_TIMER, LVT_TIMER_PERIODIC | VEC_WATCHDOG);
	lapic_write(LAPIC_TIMER_INITIAL, lapic_timer_hz / 10);
}

static void stop_watchdog(void)
{
	lapic_write(LAPIC_TIMER_INITIAL, 0);
	lapic_write(LAPIC_LVT_TIMER, LVT_MASKED | VEC_WATCHDOG);
}

static void route_isa_irq(uint8_t irq, uint8_t vector, const char *name, uint32_t *ioapic,
			  unsigned *pin)
{
	uint16_t flags;
	uint32_t gsi;

	if (!isa_route(irq, ioapic, pin, &flags, &gsi)) {
		say("smp: no IOAPIC serves gsi %u (%s, irq %u)\n", gsi, name, irq);
		shutdown();
	}
	if (verbose)
		say("smp: %s irq=%u gsi=%u ioapic=0x%x pin=%u flags=0x%x vector=0x%x\n", name, irq, gsi,
		    *ioapic, *pin, flags, vector);
	ioapic_route(*ioapic, *pin, vector, bsp_apic_id, flags);
}

static void pit_timer(void)
{
	for (unsigned i = 0; i < madt.ioapics; i++) {
		if (!ioapic_pins(madt.ioapic[i].address)) {
			say("smp: no IOAPIC answers at 0x%x\n", madt.ioapic[i].address);
			shutdown();
		}
		ioapic_mask_all(madt.ioapic[i].address);
	}

	vector_set_handler(VEC_PIT, pit_irq);
	route_isa_irq(0, VEC_PIT, "pit", &pit_ioapic, &pit_pin);
	start_watchdog();
	uint64_t start = x86_rdtsc();
	const uint16_t divisor = (PIT_HZ + PIT_RATE / 2) / PIT_RATE;
	outb(0x43, 0x34); /* channel 0, lobyte/hibyte, mode 2 (rate generator), binary */
	outb(0x40, divisor & 0xff);
	outb(0x40, divisor >> 8);
	bool ok = wait_halted(&pit_ticks, TICKS, start + ms_to_tsc(PIT_TIMEOUT_MS));
	uint64_t end = x86_rdtsc();
	ioapic_mask(pit_ioapic, pit_pin);
	outb(0x43, 0x30); /* channel 0, mode 0: stops until a new count is written */
	if (!ok) {
		say("smp: timeout waiting for pit ticks (%u of %u)\n", pit_ticks, TICKS);
		shutdown();
	}
	say("smp: pit ticks=%u\n", pit_ticks);
	if (verbose)
		say("smp: time pit=%lu us for %u ticks at 100 Hz\n", tsc_to_us(end - start), TICKS);
}

/* ---- step 4: serial receive interrupts ---- */

static char rx_line[80];
static volatile unsigned rx_len, rx_done;

static void com1_irq(void)
{
	/* Bounded: where there is no UART, LSR reads 0xff and "data ready" never clears. */
	for (int i = 0; i < 64 && (inb(COM1 + UART_LSR) & LSR_DR); i++) {
		char c = inb(COM1);
		if (rx_done)
			continue;
		if (c == '\r' || c == '\n')
			rx_done = 1;
		else if (c >= 0x20 && c < 0x7f && rx_len < sizeof(rx_line))
			rx_line[rx_len++] = c;
	}
	lapic_eoi();
}

static void serial_input(uint64_t timeout_s)
{
	uint32_t ioapic;
	unsigned pin;

	vector_set_handler(VEC_COM1, com1_irq);
	route_isa_irq(4, VEC_COM1, "com1", &ioapic, &pin);
	say("smp: waiting for input\n");
	/* After the IOAPIC: input that is already waiting raises the line now, an edge it sees. */
	outb(COM1 + UART_MCR, 0x0b); /* DTR | RTS | OUT2 (OUT2 gates the IRQ line on PCs) */
	outb(COM1 + UART_IER, 0x01); /* interrupt on received data */
	bool ok = wait_halted(&rx_done, 1, x86_rdtsc() + ms_to_tsc(timeout_s * 1000));
	outb(COM1 + UART_IER, 0);
	ioapic_mask(ioapic, pin);
	if (!ok) {
		say("smp: timeout waiting for input (%u characters, no end of line)\n", rx_len);
		shutdown();
	}
	say("smp: rx \"%.*s\"\n", (int)rx_len, rx_line);
}

void kmain(const struct hvm_start_info *si)
{
	kmain_tsc = x86_rdtsc();
	console_init(false);
	const char *cmdline = pvh_cmdline(si);
	verbose = arg_u64(cmdline, "verbose", 0) != 0;
	uint64_t rx_timeout = arg_u64(cmdline, "rx-timeout", RX_TIMEOUT_S);
	bool want_x2apic = arg_u64(cmdline, "x2apic", 0) != 0;
	counting = arg_u64(cmdline, "counter", 0) != 0;
	count_pause = arg_u64(cmdline, "pause", count_pause);

	const char *source;
	tsc_khz = tsc_khz_detect(&source);
	if (verbose)
		say("smp: tsc-khz=%lu source=%s\n", tsc_khz, source);

	find_cpus(si);

	if (!lapic_init()) {
		say("smp: no local APIC\n");
		shutdown();
	}
	if (want_x2apic && !lapic_enter_x2apic())
		say("smp: no x2APIC here, staying in xAPIC mode\n");
	bsp_apic_id = lapic_id();
	lapic_enable();
	/*
	 * Interrupts come through the IOAPIC here, so silence the 8259 and the local APIC's LINT0
	 * (its virtual wire) before interrupts are first turned on: firmware may have left the PIT
	 * ticking into an 8259 whose vectors overlap the exceptions (a BIOS puts IRQ 0 at vector 8).
	 */
	pic_disable();
	lapic_write(LAPIC_LVT_LINT0, LVT_MASKED);
	if (verbose)
		say("smp: bsp apic-id=%u x2apic=%u lapic=0x%lx\n", bsp_apic_id, lapic_x2apic(),
		    lapic_base());
	start_aps(si);
	if (counting) {
		stop_watchdog();
		count_forever(bsp_apic_id);
	}

	lapic_timer();
	pit_timer();
	serial_input(rx_timeout);
	stop_watchdog();
	say("smp: done\n");
	shutdown();
}
