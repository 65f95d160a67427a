/*
 * hostile.elf: a guest that does to the VMM's emulated devices what a hostile guest would, then
 * shows that it still runs. No access it makes may end, crash or grow the VMM; the only requests
 * it avoids are the ones a VMM rightly obeys by ending the VM (i8042 reset, ACPI S5 and reset).
 *
 * 1. Ports: every port of the UART, i8042, RTC, POST and ACPI PM blocks gets wild values at every
 *    access size, each followed by reads; then reads across the whole port space, and wild
 *    writes to ranges nobody claims.
 * 2. virtio-mmio, for each device on the command line (`virtio_mmio.device=4K@BASE:IRQ`):
 *    QueueSel = 0x80000000 (and other selectors past the queues) followed by wild writes and reads
 *    of every register; random accesses of every size anywhere in the window; queues set up over a
 *    page of random bytes and at wild addresses, then notified, so the device walks garbage rings.
 * 3. Unassigned MMIO: writes and reads at thousands of distinct addresses in the PCI hole.
 * 4. Proof of life: "hostile: still running after N accesses"; with a virtio-rng device, a reset
 *    and a proper request: "hostile: rng after reset: N bytes". Then shutdown.
 *
 * Command line: seed=N (default 1) varies the random values.
 */
#include "lib/lib.h"
#include "lib/pvh.h"
#include "lib/virtio.h"

static const char *cmdline;
static uint64_t rng_state;
static uint64_t accesses;

static uint64_t next_random(void)
{
	/* xorshift64 */
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static const uint32_t wild[] = {
	0, 1, 2, 0x7f, 0x80, 0xfe, 0xff, 0x7fff, 0x8000, 0xffff,
	0x7fffffff, 0x80000000, 0x80000001, 0xfffffffe, 0xffffffff,
};
#define NWILD (sizeof(wild) / sizeof(wild[0]))

/* ---- port I/O ---- */

static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
static inline uint16_t inw(uint16_t port)
{
	uint16_t v;
	__asm__ volatile("inw %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}
static inline uint32_t inl(uint16_t port)
{
	uint32_t v;
	__asm__ volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
	return v;
}

/* Values that ask the VMM to end the VM, which it then rightly does: turned into harmless ones. */
static uint32_t tame(uint16_t port, uint32_t v)
{
	if (port == 0x64 && ((v & 0xff) == 0xfe || (v & 0xff) == 0xd1))
		return v ^ 0x100 ^ 0x01;		/* pulse reset / write output port */
	if (port == 0x604 && (v & 0x2000) && ((v >> 10) & 7) == 5)
		return v ^ (1 << 10);			/* SLP_EN with SLP_TYP = S5 */
	if (port == 0x608 && (v & 0xff) == 0x01)
		return v ^ 0x02;			/* the ACPI reset value */
	return v;
}

static void port_write(uint16_t port, unsigned size, uint32_t v)
{
	v = tame(port, v);
	if (size == 1)
		outb(port, v);
	else if (size == 2)
		outw(port, v);
	else
		outl(port, v);
	accesses++;
}

static void port_read(uint16_t port, unsigned size)
{
	if (size == 1)
		(void)inb(port);
	else if (size == 2)
		(void)inw(port);
	else
		(void)inl(port);
	accesses++;
}

static const struct { uint16_t base, count; } device_ports[] = {
	{ 0x3f8, 8 },	/* 16550 UART */
	{ 0x60, 5 },	/* i8042 */
	{ 0x70, 2 },	/* CMOS RTC */
	{ 0x80, 1 },	/* POST */
	{ 0x600, 16 },	/* ACPI PM1a event, control, reset */
};

/* Ranges no device claims (nor KVM's in-kernel PIC and PIT): writes must be dropped and counted. */
static const struct { uint16_t base, count; } unclaimed_ports[] = {
	{ 0x100, 0x200 }, { 0xcf8, 8 }, { 0x1000, 0x100 }, { 0xe000, 0x100 },
};

static void ports(void)
{
	for (unsigned d = 0; d < sizeof(device_ports) / sizeof(device_ports[0]); d++) {
		for (uint16_t p = device_ports[d].base; p < device_ports[d].base + device_ports[d].count; p++) {
			for (unsigned size = 1; size <= 4; size *= 2) {
				for (unsigned w = 0; w < NWILD; w++) {
					port_write(p, size, wild[w]);
					port_read(p, size);
				}
				for (unsigned r = 0; r < 8; r++) {
					port_write(p, size, next_random());
					port_read(p, 1 + next_random() % 2);
				}
			}
		}
	}
	/* Every port of the ISA range, then one in 16 above it (each read is an exit). */
	for (uint32_t p = 0; p < 0x10000; p += p < 0x1000 ? 1 : 16)
		port_read(p, 1);
	for (unsigned d = 0; d < sizeof(unclaimed_ports) / sizeof(unclaimed_ports[0]); d++)
		for (uint16_t p = unclaimed_ports[d].base; p < unclaimed_ports[d].base + unclaimed_ports[d].count; p++)
			port_write(p, 1 << (p % 3), next_random());
}

/* The UART as the console needs it again: 8N1, no divisor latch, no loopback, no interrupts. */
static void console_restore(void)
{
	outb(0x3fb, 0x03);
	outb(0x3fc, 0x0b);
	outb(0x3f9, 0x00);
	outb(0x3fa, 0x00);
}

/* ---- MMIO ---- */

static void mmio_write(uint64_t address, unsigned size, uint64_t v)
{
	if (size == 1)
		*(volatile uint8_t *)address = v;
	else if (size == 2)
		*(volatile uint16_t *)address = v;
	else if (size == 4)
		*(volatile uint32_t *)address = v;
	else
		*(volatile uint64_t *)address = v;
	accesses++;
}

static void mmio_read(uint64_t address, unsigned size)
{
	if (size == 1)
		(void)*(volatile uint8_t *)address;
	else if (size == 2)
		(void)*(volatile uint16_t *)address;
	else if (size == 4)
		(void)*(volatile uint32_t *)address;
	else
		(void)*(volatile uint64_t *)address;
	accesses++;
}

/* Rings of random bytes for the devices to walk: descriptors there point almost surely outside RAM. */
static uint8_t garbage[4][4096] __attribute__((aligned(4096)));

static void fill_garbage(void)
{
	for (unsigned i = 0; i < sizeof(garbage) / 8; i++)
		((uint64_t *)garbage)[i] = next_random();
}

/* A queue set up at `desc`, `avail`, `used` with a wild size, made live and notified. */
static void wild_queue(const struct virtio_dev *d, uint32_t queue, uint32_t size, uint64_t desc, uint64_t avail, uint64_t used)
{
	virtio_write32(d, VIRTIO_MMIO_QUEUE_SEL, queue);
	virtio_write32(d, VIRTIO_MMIO_QUEUE_NUM, size);
	virtio_write32(d, VIRTIO_MMIO_QUEUE_DESC_LOW, desc);
	virtio_write32(d, VIRTIO_MMIO_QUEUE_DESC_HIGH, desc >> 32);
	virtio_write32(d, VIRTIO_MMIO_QUEUE_DRIVER_LOW, avail);
	virtio_write32(d, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, avail >> 32);
	virtio_write32(d, VIRTIO_MMIO_QUEUE_DEVICE_LOW, used);
	virtio_write32(d, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, used >> 32);
	virtio_write32(d, VIRTIO_MMIO_QUEUE_READY, 1);
	accesses += 9;
}

static void virtio_wild(const struct virtio_dev *d)
{
	static const uint32_t selectors[] = { 0x80000000, 0xffffffff, 0x80000001, 0x7fffffff, 8, 0 };

	for (unsigned s = 0; s < sizeof(selectors) / sizeof(selectors[0]); s++) {
		for (uint32_t reg = 0; reg < VIRTIO_MMIO_CONFIG; reg += 4) {
			for (unsigned w = 0; w < NWILD; w++) {
				virtio_write32(d, VIRTIO_MMIO_QUEUE_SEL, selectors[s]);
				mmio_write(d->base + reg, 4, wild[w]);
				mmio_read(d->base + (next_random() % VIRTIO_MMIO_CONFIG & ~3u), 4);
			}
		}
	}
	for (unsigned i = 0; i < 4000; i++) {
		uint64_t r = next_random();
		unsigned size = 1u << (r & 3);
		uint64_t address = d->base + ((r >> 8) % 4096 & ~(uint64_t)(size - 1));
		if (r & 4)
			mmio_write(address, size, next_random());
		else
			mmio_read(address, size);
	}
	/* Live queues over garbage and at wild addresses, each notified with a wild value too. */
	for (unsigned round = 0; round < 16; round++) {
		fill_garbage();
		virtio_write32(d, VIRTIO_MMIO_STATUS, 0);
		virtio_write32(d, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
		virtio_write32(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
		virtio_write32(d, VIRTIO_MMIO_DRIVER_FEATURES, 1);	/* VIRTIO_F_VERSION_1 */
		virtio_write32(d, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_FEATURES_OK);
		uint64_t r = next_random();
		if (round % 2 == 0)
			wild_queue(d, round % 4 / 2, 1u << (r % 9), (uint64_t)garbage[0], (uint64_t)garbage[1], (uint64_t)garbage[2]);
		else
			wild_queue(d, r % 3, wild[r % NWILD], next_random(), next_random(), r & 1 ? 0 : next_random());
		virtio_write32(d, VIRTIO_MMIO_STATUS, VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER |
			       VIRTIO_STATUS_FEATURES_OK | VIRTIO_STATUS_DRIVER_OK);
		for (uint32_t q = 0; q < 3; q++)
			virtio_write32(d, VIRTIO_MMIO_QUEUE_NOTIFY, q);
		virtio_write32(d, VIRTIO_MMIO_QUEUE_NOTIFY, wild[r % NWILD]);
		/* A 2-byte notify: no ioeventfd matches it, so it reaches the VMM's register code. */
		*(volatile uint16_t *)(d->base + VIRTIO_MMIO_QUEUE_NOTIFY) = 0;
		virtio_write32(d, VIRTIO_MMIO_INTERRUPT_ACK, wild[(r >> 8) % NWILD]);
		accesses += 12;
	}
	virtio_write32(d, VIRTIO_MMIO_STATUS, 0);
}

static void unassigned_mmio(void)
{
	/* The PCI hole above the virtio windows, below the IOAPIC (0xfec00000) and LAPIC (0xfee00000). */
	for (unsigned i = 0; i < 2048; i++) {
		uint64_t r = next_random();
		unsigned size = 1u << (r & 3);
		uint64_t address = 0xd0000000 + ((r >> 8) % 0x2ec00000 & ~(uint64_t)(size - 1));
		if (r & 4)
			mmio_write(address, size, next_random());
		else
			mmio_read(address, size);
	}
}

/* ---- proof of life ---- */

#define MAX_DEVS 16
static struct virtio_dev devs[MAX_DEVS];
static uint8_t rng_page[4096] __attribute__((aligned(4096)));
static uint8_t rng_buf[64];

static void rng_after_reset(struct virtio_dev *d)
{
	struct vq q;
	const char *err = virtio_begin(d, 0);

	if (!err)
		err = vq_setup(&q, d, 0, rng_page, 8, NULL);
	if (err) {
		kprintf("hostile: rng set-up after reset failed: %s\n", err);
		return;
	}
	virtio_driver_ok(d);
	struct vbuf b = { rng_buf, sizeof(rng_buf) };
	vq_add(&q, &b, 0, 1, rng_buf);
	vq_kick(&q);
	/* Polled: this guest takes no interrupts. ~1 s of emulated CPL-0 loop at most. */
	for (uint32_t spin = 0; spin < 500000 && !vq_has_used(&q); spin++)
		__asm__ volatile("pause");
	void *cookie;
	uint32_t len;
	if (vq_get_used(&q, &cookie, &len))
		kprintf("hostile: rng after reset: %u bytes\n", len);
	else
		kprintf("hostile: rng after reset: no answer\n");
}

void kmain(const struct hvm_start_info *si)
{
	console_init(false);
	cmdline = pvh_cmdline(si);
	rng_state = cmdline_u64(cmdline, "hostile", "seed", 1) * 0x9e3779b97f4a7c15ull | 1;
	kprintf("hostile: start\n");

	unsigned ndevs = virtio_probe_cmdline(cmdline, devs, MAX_DEVS);
	ports();
	console_restore();
	kprintf("hostile: ports done\n");
	for (unsigned i = 0; i < ndevs; i++) {
		virtio_wild(&devs[i]);
		kprintf("hostile: virtio %s at 0x%lx done\n", virtio_kind(devs[i].device_id) ?: "?", devs[i].base);
	}
	unassigned_mmio();
	kprintf("hostile: still running after %lu accesses\n", accesses);
	for (unsigned i = 0; i < ndevs; i++)
		if (devs[i].device_id == VIRTIO_ID_RNG)
			rng_after_reset(&devs[i]);
	shutdown();
}
