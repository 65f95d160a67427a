/*
 * test.elf: the guest tsvmm's tests boot. The command line picks one behaviour (mode=NAME);
 * see README.md for the exact lines each mode prints. Lines end in a bare "\n".
 */
#include "lib/lib.h"
#include "lib/pvh.h"
#include "lib/acpi.h"

static const struct hvm_start_info *start_info;
static const char *cmdline;

static uint64_t arg_u64(const char *key, uint64_t fallback)
{
	return cmdline_u64(cmdline, "test", key, fallback);
}

static void mode_exits(void)
{
	uint64_t count = arg_u64("count", 1000000);
	uint64_t n = count;

	kprintf("exits: start\n");
	/* Three instructions per exit, all emulated: the point is the exits, not this loop. */
	if (n)
		__asm__ volatile("1: outb %%al, $0x80\n\t"
				 "dec %0\n\t"
				 "jnz 1b"
				 : "+c"(n) : "a"(0) : "memory");
	kprintf("exits: done %lu\n", count);
}

struct byte_range {
	const uint8_t *p;
	uint64_t size;
};

/* CPL 3: too slow to do at CPL 0 for a module of any size. */
static uint64_t byte_sum(void *arg)
{
	const struct byte_range *r = arg;
	uint32_t sum = 0;

	for (uint64_t i = 0; i < r->size; i++)
		sum += r->p[i];
	return sum;
}

static void mode_info(void)
{
	const struct hvm_start_info *si = start_info;
	uint32_t nr_modules = si->magic == HVM_START_MAGIC ? si->nr_modules : 0;

	kprintf("info: magic=0x%x version=0x%x cmdline=\"%s\" modules=0x%x\n", si->magic, si->version,
		cmdline, nr_modules);
	const struct hvm_modlist_entry *mods = (const void *)si->modlist_paddr;
	for (uint32_t i = 0; i < nr_modules; i++) {
		struct byte_range r = { (const uint8_t *)mods[i].paddr, mods[i].size };
		uint64_t sum = run_user(byte_sum, &r);
		kprintf("module: addr=0x%lx size=0x%lx sum=0x%lx\n", mods[i].paddr, mods[i].size, sum);
	}
	const struct hvm_memmap_table_entry *map;
	uint32_t entries = pvh_memmap(si, &map);
	for (uint32_t i = 0; i < entries; i++)
		kprintf("memmap: addr=0x%lx size=0x%lx type=0x%x\n", map[i].addr, map[i].size,
			map[i].type);
	kprintf("info: cpl=%u\n", current_cpl());
}

static void mode_triple_fault(void)
{
	kprintf("triple-fault: now\n");
	triple_fault();
}

static void mode_emulation_failure(void)
{
	static volatile uint64_t slot[2] __attribute__((aligned(16)));
	uint64_t lo = 0, hi = 0;

	kprintf("emulation-failure: now\n");
	__asm__ volatile("lock cmpxchg16b %0" : "+m"(slot), "+a"(lo), "+d"(hi) : "b"(1), "c"(2));
	/* Only where the instruction can be emulated (or runs natively) do we get here. */
	kprintf("emulation-failure: survived\n");
}

#define MMIO_LOW  0xd0000000ul  /* in the 32-bit hole below 4 GiB */
#define MMIO_HIGH 0x300000000ul /* 12 GiB: above any RAM a test gives the guest */

static void mode_mmio(void)
{
	uint32_t v = *(volatile uint32_t *)MMIO_LOW;

	kprintf("mmio: read=0x%x\n", v);
	*(volatile uint32_t *)MMIO_LOW = 0x12345678;
	*(volatile uint32_t *)MMIO_HIGH = 0x9abcdef0;
	kprintf("mmio: survived\n");
}

/* A 64-bit LCG (Knuth's MMIX constants): cheap per step, and no compiler can skip the steps. */
static uint64_t lcg_loop(void *arg)
{
	uint64_t n = *(const uint64_t *)arg, x = 0;

	for (uint64_t i = 0; i < n; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		__asm__("" : "+r"(x));
	}
	return x;
}

static void mode_cpl3(void)
{
	uint64_t loops = arg_u64("loops", 100000000);
	uint64_t result = run_user(lcg_loop, &loops);

	kprintf("cpl3: cs=0x%lx result=0x%lx\n", user_cs, result);
}

static void mode_halt(void)
{
	kprintf("halt: now\n");
	for (;;)
		__asm__ volatile("cli; hlt");
}

static uint64_t spin_forever(void *arg)
{
	(void)arg;
	for (;;)
		__asm__ volatile("");
	return 0;
}

static void mode_spin(void)
{
	kprintf("spin: now\n");
	run_user(spin_forever, NULL);
}

/* The FADT, as an OS reads it to power off or reset; NULL (and a line saying why) if absent. */
static const uint8_t *fadt(void)
{
	const char *why = "";
	const uint8_t *f = acpi_find_table(start_info, "FACP", NULL, &why);
	if (!f)
		kprintf("acpi: no FADT (%s)\n", why);
	return f;
}

/* SLP_TYPa for S5 from the DSDT's `Name (_S5, Package (n) { a, ... })`, or -1. */
static int s5_sleep_type(const uint8_t *fadt_table)
{
	const uint8_t *dsdt = (const uint8_t *)(uint64_t)*(const uint32_t *)(fadt_table + 40);
	uint32_t length = *(const uint32_t *)(dsdt + 4);
	for (uint32_t i = 36; i + 8 < length; i++) {
		if (memcmp(dsdt + i, "_S5_", 4) || dsdt[i + 4] != 0x12)
			continue;
		const uint8_t *element = dsdt + i + 7; /* past PackageOp, a one-byte PkgLength, NumElements */
		if (element[0] == 0x0a)
			return element[1]; /* BytePrefix */
		return element[0] <= 1 ? element[0] : -1; /* ZeroOp or OneOp */
	}
	return -1;
}

static void mode_acpi_poweroff(void)
{
	const uint8_t *f = fadt();
	if (!f)
		return;
	uint32_t pm1a_cnt = *(const uint32_t *)(f + 64);
	int slp_typ = s5_sleep_type(f);
	kprintf("acpi: pm1a_cnt=0x%x slp_typ=%d\n", pm1a_cnt, slp_typ);
	if (slp_typ < 0 || !pm1a_cnt)
		return;
	outw((uint16_t)pm1a_cnt, (uint16_t)((slp_typ << 10) | (1 << 13)));
	kprintf("acpi: still running after S5\n");
}

static void mode_acpi_reset(void)
{
	const uint8_t *f = fadt();
	if (!f)
		return;
	uint32_t flags = *(const uint32_t *)(f + 112);
	uint8_t space = f[116];
	uint64_t reg = *(const uint64_t *)(f + 120);
	uint8_t value = f[128];
	kprintf("acpi: reset reg=0x%x value=0x%x supported=%d\n", (unsigned)reg, value, (flags >> 10) & 1);
	if (!(flags & (1 << 10)) || space != 1)
		return;
	outb((uint16_t)reg, value);
	kprintf("acpi: still running after reset\n");
}

static uint8_t cmos(uint8_t index)
{
	outb(0x70, index);
	return inb(0x71);
}

static unsigned bcd(uint8_t v)
{
	return (v >> 4) * 10 + (v & 0xf);
}

/* The date and time in the CMOS RTC, as firmware reads it (BCD, 24-hour: status B says so). */
static void mode_rtc(void)
{
	uint8_t b = cmos(0x0b);
	unsigned s = bcd(cmos(0x00)), m = bcd(cmos(0x02)), h = bcd(cmos(0x04));
	unsigned d = bcd(cmos(0x07)), mo = bcd(cmos(0x08)), y = bcd(cmos(0x09)), c = bcd(cmos(0x32));
	kprintf("rtc: status-b=0x%x valid=%d\n", b, cmos(0x0d) >> 7);
	kprintf("rtc: %u%02u-%02u-%02u %02u:%02u:%02u\n", c, y, mo, d, h, m, s);
}

/*
 * Counts forever (or to max=N): "counter: 1", "counter: 2", ... with a short pause between
 * lines (pause=N iterations, at CPL 0). A snapshot restored anywhere must continue the
 * sequence with no number missing and none repeated.
 */
static void count(void (*step)(uint64_t n))
{
	uint64_t max = arg_u64("max", 0);
	uint64_t delay = arg_u64("pause", 2000);
	for (uint64_t n = 1; !max || n <= max; n++) {
		if (step)
			step(n);
		kprintf("counter: %lu\n", n);
		for (uint64_t i = 0; i < delay; i++)
			__asm__ volatile("pause");
	}
}

static void mode_counter(void)
{
	count(NULL);
}

/*
 * mode=touch bytes=N: writes a tag into the first word of every page of N bytes of RAM from
 * 16 MiB up (at CPL 3, where it runs natively), prints "touch: done N", then counts as
 * mode=counter does. Before line n it checks the tag of page (n - 1) mod pages and that page
 * (n - 2) mod pages holds n - 1 in its second word, then writes n into the second word of page
 * (n - 1) mod pages: the guest keeps writing memory, and notices if a restored snapshot lost it.
 */
#define TOUCH_BASE 0x1000000ull
#define TOUCH_TAG  0x746f756368000000ull /* "touch" */

struct touch_area {
	volatile uint64_t *base;
	uint64_t pages;
};
static struct touch_area touched;

static uint64_t touch_pages(void *arg)
{
	const struct touch_area *t = arg;

	for (uint64_t p = 0; p < t->pages; p++)
		t->base[p * 512] = TOUCH_TAG | p;
	return 0;
}

static void touch_check(uint64_t page, uint64_t word, uint64_t want)
{
	uint64_t got = touched.base[page * 512 + word];

	if (got != want) {
		kprintf("touch: page %lu word %lu holds 0x%lx, not 0x%lx\n", page, word, got, want);
		shutdown();
	}
}

static void touch_step(uint64_t n)
{
	uint64_t page = (n - 1) % touched.pages;

	touch_check(page, 0, TOUCH_TAG | page);
	if (n >= 2)
		touch_check((n - 2) % touched.pages, 1, n - 1);
	touched.base[page * 512 + 1] = n;
}

static void mode_touch(void)
{
	uint64_t bytes = arg_u64("bytes", 0);
	const struct hvm_memmap_table_entry *map;
	uint32_t entries = pvh_memmap(start_info, &map);
	bool ram = false;

	for (uint32_t i = 0; i < entries; i++)
		if (map[i].type == 1 && map[i].addr <= TOUCH_BASE && TOUCH_BASE + bytes <= map[i].addr + map[i].size)
			ram = true;
	if (!bytes || bytes % 4096 || !ram) {
		kprintf("touch: bytes must be a non-zero multiple of 4096 that fits in RAM from 0x%lx\n",
			(uint64_t)TOUCH_BASE);
		return;
	}
	touched = (struct touch_area){ (volatile uint64_t *)TOUCH_BASE, bytes / 4096 };
	run_user(touch_pages, &touched);
	kprintf("touch: done %lu\n", bytes);
	count(touch_step);
}

static const struct {
	const char *name;
	void (*run)(void);
} modes[] = {
	{ "rtc", mode_rtc },
	{ "counter", mode_counter },
	{ "touch", mode_touch },
	{ "acpi-poweroff", mode_acpi_poweroff },
	{ "acpi-reset", mode_acpi_reset },
	{ "exits", mode_exits },
	{ "info", mode_info },
	{ "triple-fault", mode_triple_fault },
	{ "emulation-failure", mode_emulation_failure },
	{ "mmio", mode_mmio },
	{ "cpl3", mode_cpl3 },
	{ "halt", mode_halt },
	{ "spin", mode_spin },
};

void kmain(const struct hvm_start_info *si)
{
	size_t len = 0;
	const char *mode;

	console_init(false);
	start_info = si;
	cmdline = pvh_cmdline(si);
	mode = cmdline_get(cmdline, "mode", &len);
	if (!mode)
		mode = "";
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		if (str_equal(mode, len, modes[i].name)) {
			modes[i].run();
			shutdown();
		}
	}
	kprintf("test: unknown mode \"%.*s\"\n", (int)len, mode);
	shutdown();
}
