/*
 * virtio.elf: small virtio 1.x drivers over virtio-mmio (version 2) for tsvmm's device tests:
 * block, network, entropy and console, plus malformed requests to see a device refuse them.
 * The devices come from the command line (`virtio_mmio.device=4K@0xc0000000:5`, as for Linux);
 * `mode=NAME` picks what to do. See README.md for the lines each mode prints; all end in "\n".
 *
 * Completions arrive as interrupts: the device's GSI goes through the IOAPIC (edge, active high)
 * to the local APIC, and the driver sleeps in sti;hlt until the used ring moves. A periodic local
 * APIC timer (about 100 Hz) wakes it too, so that timeouts (measured with the TSC) are noticed.
 * Work on big buffers (the block pattern) runs at CPL 3, where the platform runs it natively.
 */
#include "lib/apic.h"
#include "lib/lib.h"
#include "lib/pvh.h"
#include "lib/virtio.h"
#include "lib/x86.h"

static const char *cmdline;

/* ---- command line ---- */

static uint64_t arg_u64(const char *key, uint64_t fallback)
{
	return cmdline_u64(cmdline, "virtio", key, fallback);
}

static uint32_t arg_ip(const char *key, const char *fallback)
{
	size_t len;
	const char *v = cmdline_get(cmdline, key, &len);
	uint32_t ip = 0;

	if (!v) {
		v = fallback;
		len = strlen(fallback);
	}
	const char *p = v, *end = v + len;
	for (int part = 0; part < 4; part++) {
		const char *start = p;
		while (p < end && *p != '.')
			p++;
		uint64_t n;
		if (!parse_u64(start, p - start, &n) || n > 255 || (part < 3 ? p == end : p != end))
			goto bad;
		ip = ip << 8 | n;
		p++;
	}
	return ip;
bad:
	kprintf("virtio: bad %s \"%.*s\"\n", key, (int)len, v);
	shutdown();
}

/* ---- printing ---- */

static void put_hex2(uint8_t b)
{
	console_putc("0123456789abcdef"[b >> 4]);
	console_putc("0123456789abcdef"[b & 15]);
}

static void print_mac(const uint8_t *mac)
{
	for (int i = 0; i < 6; i++) {
		if (i)
			console_putc(':');
		put_hex2(mac[i]);
	}
}

static void print_ip(uint32_t ip)
{
	kprintf("%u.%u.%u.%u", ip >> 24, ip >> 16 & 255, ip >> 8 & 255, ip & 255);
}

/* Printable ASCII as is, except `"` and `\`; everything else as \xNN. */
static void print_escaped(const uint8_t *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '"' && s[i] != '\\') {
			console_putc(s[i]);
		} else {
			console_puts("\\x");
			put_hex2(s[i]);
		}
	}
}

/* ---- interrupts: 8259 off, IOAPIC routes, local APIC and its timer; time from the TSC ---- */

#define IOAPIC_BASE	0xfec00000u
/* Vectors: the timer, then one per device (lib's IDT has 0x40-0x4f for such interrupts). */
#define TIMER_VECTOR	0x40
#define DEVICE_VECTOR	0x41
#define MAX_DEVICES	15
/*
 * About 10 ms with a divide of 16 if the APIC timer counts at 1 GHz, as KVM's does. The timer
 * only wakes the CPU from hlt; time itself is read from the TSC.
 */
#define TIMER_COUNT	625000

static bool timer_runs;
static unsigned verbose;
static unsigned ioapic_pin_count;
static uint32_t my_apic_id;
static uint64_t tsc_hz;
static volatile uint32_t timer_ticks;

static void timer_tick(void)
{
	timer_ticks++;
	lapic_eoi();
}

static uint64_t now(void)
{
	return x86_rdtsc();
}

static uint64_t seconds(uint64_t s)
{
	return s * tsc_hz;
}

/* Sleeps until an interrupt (or spins a little without a timer). False once `deadline` passed. */
static bool sleep_until(uint64_t deadline)
{
	if (now() >= deadline)
		return false;
	if (timer_runs) {
		x86_sti_hlt_cli();
	} else {
		for (unsigned i = 0; i < 1000; i++)
			x86_pause();
	}
	return true;
}

static void interrupts_init(void)
{
	const char *source;

	tsc_hz = tsc_khz_detect(&source) * 1000;
	pic_disable();
	if (!lapic_init()) {
		kprintf("virtio: no local APIC\n");
		shutdown();
	}
	lapic_enable();
	my_apic_id = lapic_id();
	ioapic_pin_count = ioapic_pins(IOAPIC_BASE);

	vector_set_handler(TIMER_VECTOR, timer_tick);
	lapic_write(LAPIC_TIMER_DIVIDE, TIMER_DIVIDE_16);
	lapic_write(LAPIC_LVT_TIMER, LVT_TIMER_PERIODIC | TIMER_VECTOR);
	lapic_write(LAPIC_TIMER_INITIAL, TIMER_COUNT);
	uint32_t a = lapic_read(LAPIC_TIMER_CURRENT), b = lapic_read(LAPIC_TIMER_CURRENT);
	timer_runs = a != b;
	if (!timer_runs)
		kprintf("virtio: the local APIC timer does not count; waiting by spinning\n");
	if (verbose >= 2) {
		/* Costs a second: the timer should tick about 100 times in it. */
		uint64_t end = now() + seconds(1);
		uint32_t ticks = timer_ticks;
		while (sleep_until(end))
			;
		kprintf("virtio: tsc=%lu Hz (%s), %u timer ticks in 1 s\n", tsc_hz, source,
			timer_ticks - ticks);
	}
}

/* ---- devices ---- */

static struct virtio_dev devs[MAX_DEVICES];
static unsigned ndevs;
static uint64_t timeout_s;

static void device_isr(unsigned i)
{
	struct virtio_dev *d = &devs[i];
	uint32_t status = virtio_read32(d, VIRTIO_MMIO_INTERRUPT_STATUS);

	if (status)
		virtio_write32(d, VIRTIO_MMIO_INTERRUPT_ACK, status);
	d->isr_seen |= status;
	d->irqs++;
	lapic_eoi();
}

#define ISR(i) static void isr##i(void) { device_isr(i); }
ISR(0) ISR(1) ISR(2) ISR(3) ISR(4) ISR(5) ISR(6) ISR(7) ISR(8) ISR(9) ISR(10) ISR(11) ISR(12) ISR(13)
ISR(14)
static void (*const isrs[MAX_DEVICES])(void) = {
	isr0, isr1, isr2, isr3, isr4, isr5, isr6, isr7, isr8, isr9, isr10, isr11, isr12, isr13, isr14,
};

static unsigned dev_index(const struct virtio_dev *d)
{
	return d - devs;
}

/* Routes the device's GSI to its vector: IOAPIC pin = GSI, fixed, edge, active high, to us. */
static void route_irq(struct virtio_dev *d)
{
	unsigned i = dev_index(d);

	vector_set_handler(DEVICE_VECTOR + i, isrs[i]);
	if (d->irq >= ioapic_pin_count) {
		kprintf("virtio: irq %u is beyond the IOAPIC's %u pins; polling instead\n", d->irq,
			ioapic_pin_count);
		return;
	}
	ioapic_route(IOAPIC_BASE, d->irq, DEVICE_VECTOR + i, my_apic_id, 0);
}

static void unroute_irq(struct virtio_dev *d)
{
	if (d->irq < ioapic_pin_count)
		ioapic_mask(IOAPIC_BASE, d->irq);
}

/* The device of that kind the command line's unit=N picks (the first by default). */
static struct virtio_dev *find_device(uint32_t id)
{
	uint64_t unit = arg_u64("unit", 0);

	for (unsigned i = 0; i < ndevs; i++)
		if (devs[i].device_id == id && unit-- == 0)
			return &devs[i];
	kprintf("virtio: no %s device\n", virtio_kind(id));
	shutdown();
}

/* Starts the device, or says why not and shuts down. */
static void begin(struct virtio_dev *d, uint64_t wanted)
{
	const char *err = virtio_begin(d, wanted);

	if (err) {
		kprintf("virtio: %s at 0x%lx: %s\n", virtio_kind(d->device_id), d->base, err);
		shutdown();
	}
	route_irq(d);
}

static void setup_queue(struct vq *q, struct virtio_dev *d, unsigned index, void *page,
			struct virtq_desc (*tables)[VQ_MAX_SEGS])
{
	const char *err = vq_setup(q, d, index, page, VQ_MAX, tables);

	if (err) {
		kprintf("virtio: %s at 0x%lx queue %u: %s\n", virtio_kind(d->device_id), d->base, index, err);
		shutdown();
	}
}

/*
 * Waits until `count` more used entries are there, asking for one interrupt when the last
 * arrives. False on timeout.
 */
static bool wait_used(struct vq *q, uint16_t count)
{
	uint64_t start = now(), deadline = start + seconds(timeout_s);
	uint32_t irqs = q->dev->irqs, ticks = timer_ticks;
	unsigned sleeps = 0;

	vq_want_interrupt(q, count);
	while ((uint16_t)(*(volatile uint16_t *)(q->used + 2) - q->last_used) < count) {
		if (!sleep_until(deadline))
			return false;
		sleeps++;
	}
	if (verbose >= 2)
		kprintf("virtio: waited for %u: %lu us, %u sleeps, %u interrupts, %u timer ticks\n", count,
			(now() - start) * 1000000 / tsc_hz, sleeps, q->dev->irqs - irqs,
			timer_ticks - ticks);
	return true;
}

static void report_interrupts(const char *prefix, const struct virtio_dev *d, const struct vq *q)
{
	/*
	 * A completion seen before we went to sleep leaves its interrupt pending (and later ones
	 * merge into it): let it in before counting. A short sti window is not enough here, where
	 * CPL 0 is emulated; a hlt is (at worst it waits for the next timer tick).
	 */
	if (timer_runs)
		x86_sti_hlt_cli();
	if (verbose)
		kprintf("%s: irqs=%u notifies=%u features=0x%lx\n", prefix, d->irqs, q->notifies,
			d->features);
	if (!d->irqs && d->irq < ioapic_pin_count)
		kprintf("%s: no interrupt arrived (completions were found by polling)\n", prefix);
}

/* Identity-mapped RAM for the rings: one page per queue. */
static uint8_t queue_pages[2][4096] __attribute__((aligned(4096)));
static struct virtq_desc indirect_tables[VQ_MAX][VQ_MAX_SEGS] __attribute__((aligned(16)));

/* ---- virtio-blk ---- */

#define VIRTIO_BLK_F_SEG_MAX	2
#define VIRTIO_BLK_F_RO		5
#define VIRTIO_BLK_F_BLK_SIZE	6
#define VIRTIO_BLK_F_FLUSH	9
#define VIRTIO_BLK_T_IN		0
#define VIRTIO_BLK_T_OUT	1
#define VIRTIO_BLK_T_FLUSH	4
#define VIRTIO_BLK_T_GET_ID	8
#define SECTOR			512
#define BLK_MAX_SECTORS		1024
#define BLK_REQ_SECTORS		32	/* per request: 16 KiB in four 4 KiB segments */
#define BLK_MAX_REQS		(BLK_MAX_SECTORS / BLK_REQ_SECTORS + 2)

struct blk_req {
	uint32_t type;
	uint32_t reserved;
	uint64_t sector;
	uint8_t status;
	uint8_t pad[15];
};

static struct virtio_dev *blk;
static struct vq blkq;
static struct blk_req blk_reqs[BLK_MAX_REQS] __attribute__((aligned(16)));
static uint8_t blk_data[BLK_MAX_SECTORS * SECTOR] __attribute__((aligned(4096)));
static uint32_t blk_seg_max = VQ_MAX_SEGS - 2;

static uint64_t blk_capacity(void)
{
	uint32_t gen, lo, hi;

	do {
		gen = virtio_read32(blk, VIRTIO_MMIO_CONFIG_GENERATION);
		lo = virtio_read32(blk, VIRTIO_MMIO_CONFIG);
		hi = virtio_read32(blk, VIRTIO_MMIO_CONFIG + 4);
	} while (gen != virtio_read32(blk, VIRTIO_MMIO_CONFIG_GENERATION));
	return (uint64_t)hi << 32 | lo;
}

static void blk_setup(bool indirect, bool event_idx)
{
	uint64_t wanted = 1ull << VIRTIO_BLK_F_SEG_MAX | 1ull << VIRTIO_BLK_F_RO |
			  1ull << VIRTIO_BLK_F_BLK_SIZE | 1ull << VIRTIO_BLK_F_FLUSH;

	if (indirect)
		wanted |= 1ull << VIRTIO_F_INDIRECT_DESC;
	if (event_idx)
		wanted |= 1ull << VIRTIO_F_EVENT_IDX;
	begin(blk, wanted);
	if (indirect && !(blk->features >> VIRTIO_F_INDIRECT_DESC & 1))
		kprintf("blk: the device does not offer INDIRECT_DESC\n");
	if (event_idx && !(blk->features >> VIRTIO_F_EVENT_IDX & 1))
		kprintf("blk: the device does not offer EVENT_IDX\n");
	if (blk->features >> VIRTIO_BLK_F_SEG_MAX & 1) {
		uint32_t seg_max = virtio_read32(blk, VIRTIO_MMIO_CONFIG + 12);
		if (seg_max && seg_max < blk_seg_max)
			blk_seg_max = seg_max;
	}
	setup_queue(&blkq, blk, 0, queue_pages[0], indirect ? indirect_tables : NULL);
	virtio_driver_ok(blk);
}

/*
 * Reads or writes `count` sectors from `sector` through `buf`, up to BLK_REQ_SECTORS per request
 * and as many requests in flight as the queue holds. Returns 0, the first non-zero status, -1 on
 * a timeout, or -2 if the device returned something we never gave it (printed).
 */
static int blk_transfer(bool write, uint64_t sector, uint32_t count, uint8_t *buf)
{
	unsigned nreq = (count + BLK_REQ_SECTORS - 1) / BLK_REQ_SECTORS, next = 0, done = 0;
	int result = 0;

	while (done < nreq) {
		for (; next < nreq; next++) {
			struct blk_req *r = &blk_reqs[next];
			uint32_t n = count - next * BLK_REQ_SECTORS;
			if (n > BLK_REQ_SECTORS)
				n = BLK_REQ_SECTORS;
			r->type = write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN;
			r->reserved = 0;
			r->sector = sector + next * BLK_REQ_SECTORS;
			r->status = 0xff;
			struct vbuf bufs[VQ_MAX_SEGS];
			unsigned nb = 0;
			bufs[nb++] = (struct vbuf){ r, 16 };
			uint8_t *data = buf + (uint64_t)next * BLK_REQ_SECTORS * SECTOR;
			uint32_t bytes = n * SECTOR;
			/* 4 KiB segments while seg_max allows; the last one takes the rest. */
			while (bytes) {
				uint32_t seg = bytes > 4096 && nb < blk_seg_max ? 4096 : bytes;
				bufs[nb++] = (struct vbuf){ data, seg };
				data += seg;
				bytes -= seg;
			}
			bufs[nb++] = (struct vbuf){ &r->status, 1 };
			if (vq_add(&blkq, bufs, write ? nb - 1 : 1, write ? 1 : nb - 1, r) < 0)
				break;
		}
		vq_kick(&blkq);
		if (!vq_in_flight(&blkq)) {
			kprintf("virtio: a block request does not fit in the queue\n");
			return -2;
		}
		if (!wait_used(&blkq, vq_in_flight(&blkq)))
			return -1;
		void *cookie;
		uint32_t len;
		while (vq_get_used(&blkq, &cookie, &len)) {
			struct blk_req *r = cookie;
			if (!r) {
				kprintf("virtio: the block device returned descriptor %u, which is no request\n",
					len);
				return -2;
			}
			if (r->status && !result)
				result = r->status;
			done++;
		}
	}
	return result;
}

/* One request without data (FLUSH) or with a device-writable buffer (GET_ID, a read); as above. */
static int blk_simple(uint32_t type, uint64_t sector, void *buf, uint32_t len, uint32_t *written)
{
	struct blk_req *r = &blk_reqs[BLK_MAX_REQS - 1];
	struct vbuf bufs[3];
	unsigned nb = 0;

	r->type = type;
	r->reserved = 0;
	r->sector = sector;
	r->status = 0xff;
	bufs[nb++] = (struct vbuf){ r, 16 };
	if (len)
		bufs[nb++] = (struct vbuf){ buf, len };
	bufs[nb++] = (struct vbuf){ &r->status, 1 };
	if (vq_add(&blkq, bufs, 1, nb - 1, r) < 0)
		return -2;
	vq_kick(&blkq);
	if (!wait_used(&blkq, 1))
		return -1;
	void *cookie;
	if (!vq_get_used(&blkq, &cookie, written) || cookie != r) {
		kprintf("virtio: the block device returned something we did not give it\n");
		return -2;
	}
	return r->status;
}

struct pattern {
	uint8_t *buf;
	uint64_t seed, first, count;
};

/* byte i of sector s = low byte of (S * 2654435761 + s * 40503 + i * 7). CPL 3. */
static uint64_t pattern_fill(void *arg)
{
	const struct pattern *p = arg;
	uint8_t *b = p->buf;

	for (uint64_t s = p->first; s < p->first + p->count; s++) {
		uint64_t v = p->seed * 2654435761ull + s * 40503;
		for (unsigned i = 0; i < SECTOR; i++, v += 7)
			*b++ = (uint8_t)v;
	}
	return 0;
}

/* CPL 3: 0 if the buffer holds the pattern, else 1 + (sector offset << 16 | byte). */
static uint64_t pattern_check(void *arg)
{
	const struct pattern *p = arg;
	const uint8_t *b = p->buf;

	for (uint64_t s = 0; s < p->count; s++) {
		uint64_t v = p->seed * 2654435761ull + (p->first + s) * 40503;
		for (unsigned i = 0; i < SECTOR; i++, v += 7)
			if (*b++ != (uint8_t)v)
				return 1 + (s << 16 | i);
	}
	return 0;
}

/* True (and says so if it was a timeout) if a request did not complete. */
static bool blk_failed(int st)
{
	if (st == -1)
		kprintf("blk: timeout\n");
	return st < 0;
}

static void mode_blk_stream(void);

static void mode_blk(void)
{
	size_t len;
	const char *op = cmdline_get(cmdline, "op", &len);
	bool write;

	if (op && str_equal(op, len, "stream")) {
		mode_blk_stream();
		return;
	} else if (op && str_equal(op, len, "write")) {
		write = true;
	} else if (op && str_equal(op, len, "verify")) {
		write = false;
	} else {
		kprintf("blk: unknown op \"%.*s\"\n", op ? (int)len : 0, op ? op : "");
		return;
	}
	struct pattern p = { blk_data, arg_u64("seed", 0), arg_u64("start", 0), arg_u64("sectors", 8) };
	if (p.count == 0 || p.count > BLK_MAX_SECTORS) {
		kprintf("blk: sectors must be 1 to %u\n", BLK_MAX_SECTORS);
		return;
	}
	blk = find_device(VIRTIO_ID_BLOCK);
	blk_setup(arg_u64("indirect", 0), arg_u64("eventidx", 0));
	kprintf("blk: capacity=%lu\n", blk_capacity());
	if (blk->features >> VIRTIO_BLK_F_RO & 1)
		kprintf("blk: read-only\n");

	if (write) {
		/* Write, FLUSH, GET_ID in that order; the lines come in the order README gives. */
		run_user(pattern_fill, &p);
		int wst = blk_transfer(true, p.first, p.count, blk_data);
		if (blk_failed(wst))
			return;
		uint32_t n;
		bool flush = blk->features >> VIRTIO_BLK_F_FLUSH & 1;
		int fst = flush ? blk_simple(VIRTIO_BLK_T_FLUSH, 0, NULL, 0, &n) : 0;
		if (blk_failed(fst))
			return;
		static char id[20];
		int ist = blk_simple(VIRTIO_BLK_T_GET_ID, 0, id, sizeof(id), &n);
		if (blk_failed(ist))
			return;
		if (ist) {
			kprintf("blk: get-id status=%d\n", ist);
		} else {
			/* NUL-terminated unless it is all 20 bytes. */
			size_t idlen = 0;
			while (idlen < sizeof(id) && id[idlen])
				idlen++;
			console_puts("blk: id=\"");
			print_escaped((const uint8_t *)id, idlen);
			console_puts("\"\n");
		}
		if (wst)
			kprintf("blk: write status=%d\n", wst);
		else
			kprintf("blk: wrote %lu sectors\n", p.count);
		if (!flush)
			kprintf("blk: the device offers no FLUSH\n");
		else if (fst)
			kprintf("blk: flush status=%d\n", fst);
		else
			kprintf("blk: flushed\n");
	} else {
		/* Poison the buffer first, so a read that moves nothing cannot pass. */
		struct pattern poison = { blk_data, p.seed + 1, p.first, p.count };
		run_user(pattern_fill, &poison);
		int st = blk_transfer(false, p.first, p.count, blk_data);
		if (blk_failed(st))
			return;
		if (st) {
			kprintf("blk: read status=%d\n", st);
			return;
		}
		uint64_t bad = run_user(pattern_check, &p);
		if (bad)
			kprintf("blk: mismatch at sector %lu byte %lu\n", p.first + ((bad - 1) >> 16),
				(bad - 1) & 0xffff);
		else
			kprintf("blk: verified %lu sectors\n", p.count);
	}
	report_interrupts("blk", blk, &blkq);
}

/* ---- virtio-blk streaming: sequential throughput ---- */

/*
 * mode=blk op=stream dir=read|write size=BYTES req=BYTES depth=N (README.md has the rest)
 *
 * On a platform that emulates CPL 0 (about half a microsecond an instruction, two more for one
 * that touches memory, as each access walks the guest's page tables) the driver's work per
 * request limits the rate, so it is cut to the bone. Every chain is built once: header, one data
 * buffer of `req` bytes, status byte (one ring descriptor and a three-entry indirect table, or
 * with indirect=0 three ring descriptors); slot k of the `depth` in flight keeps its header,
 * buffer, status byte and head for good. The available ring is filled ahead with the heads in
 * slot order, so while the device returns chains in the order it got them, the head to offer at
 * index i + depth is already in the ring, where it was put for index i. Per completion the loop
 * compares the used entry (head and written length in one load: the length shows the status
 * byte was written, so it needs no reset) and writes the next sector into the header: two memory
 * accesses. The status bytes sit side by side and are checked eight at a time per batch, before
 * their headers are reused; the index, the notification (EVENT_IDX) and the interrupt also come
 * once per batch. The data is never touched: writes write whatever the buffers hold.
 *
 * Waiting: wait=irq (the default) sleeps in hlt until the device interrupts; wait=poll spins on
 * used->idx with interrupts suppressed. On these machines spinning was not faster even when the
 * driver is the bottleneck: the emulated spin takes CPU from the device's thread (the two
 * host CPUs are not independent), and this device only interrupts once it has emptied the ring.
 */

#define STREAM_BASE		0x800000ull	/* data buffers from 8 MiB: well above the kernel */
#define STREAM_REQ_MAX		(4u << 20)
#define STREAM_DEPTH_MAX_DIRECT	(VQ_MAX / 3)

static const struct hvm_start_info *start_info;
/* Headers by head descriptor (slot k's head is k, or 3k without indirect descriptors). */
static struct blk_req stream_hdrs[VQ_MAX] __attribute__((aligned(32)));
/* Status bytes by slot, read eight at a time (slots beyond depth stay 0). */
static union {
	uint8_t b[VQ_MAX];
	uint64_t q[VQ_MAX / 8];
} stream_status;
static bool stream_is_head[VQ_MAX];
static uint64_t stream_batches, stream_waits, stream_spins;

/* Whether [base, base + len) is RAM by the memory map and holds no boot module. */
static bool ram_free(uint64_t base, uint64_t len)
{
	const struct hvm_memmap_table_entry *map;
	uint32_t n = pvh_memmap(start_info, &map);
	bool ram = false;

	for (uint32_t i = 0; i < n; i++)
		if (map[i].type == 1 && map[i].addr <= base && base + len <= map[i].addr + map[i].size)
			ram = true;
	if (!ram)
		return false;
	const struct hvm_modlist_entry *mods = (const struct hvm_modlist_entry *)start_info->modlist_paddr;
	for (uint32_t i = 0; mods && i < start_info->nr_modules; i++)
		if (mods[i].paddr < base + len && base < mods[i].paddr + mods[i].size)
			return false;
	return true;
}

/* Builds the chain of slot k: its header, its data buffer, its status byte. Returns its head. */
static uint16_t stream_chain(unsigned k, bool write, uint32_t req)
{
	uint16_t head = blkq.indirect ? k : 3 * k;
	struct blk_req *r = &stream_hdrs[head];
	struct virtq_desc d[3] = {
		{ (uint64_t)r, 16, VIRTQ_DESC_F_NEXT, 1 },
		{ STREAM_BASE + (uint64_t)k * req, req, VIRTQ_DESC_F_NEXT | (write ? 0 : VIRTQ_DESC_F_WRITE), 2 },
		{ (uint64_t)&stream_status.b[k], 1, VIRTQ_DESC_F_WRITE, 0 },
	};

	r->type = write ? VIRTIO_BLK_T_OUT : VIRTIO_BLK_T_IN;
	r->reserved = 0;
	stream_status.b[k] = 0;
	if (blkq.indirect) {
		memcpy(indirect_tables[k], d, sizeof(d));
		blkq.desc[head] = (struct virtq_desc){ (uint64_t)indirect_tables[k], sizeof(d),
						       VIRTQ_DESC_F_INDIRECT, 0 };
	} else {
		for (unsigned i = 0; i < 3; i++) {
			blkq.desc[head + i] = d[i];
			blkq.desc[head + i].next = head + d[i].next;
		}
	}
	stream_is_head[head] = true;
	return head;
}

/*
 * Whether the status bytes of the slots that used entries [from, to) name (slot = index % depth,
 * while `ordered`) are all 0, eight at a time (a few neighbours come along: they are 0 or will
 * fail anyway). Else says which failed.
 */
static bool stream_status_ok(uint16_t from, uint16_t to, unsigned depth, unsigned mul, bool ordered)
{
	unsigned nq = (depth + 7) / 8, q, qlast;
	uint64_t bad = 0;

	if (!ordered || (unsigned)(uint16_t)(to - from) + 7 >= depth) {
		/* Without order the entries may name any slot: all of them. */
		q = 0;
		qlast = nq - 1;
	} else {
		q = from % depth / 8;
		qlast = (uint16_t)(to - 1) % depth / 8;
	}
	for (;;) {
		bad |= stream_status.q[q];
		if (q == qlast)
			break;
		q = q + 1 == nq ? 0 : q + 1;
	}
	if (!bad)
		return true;
	for (unsigned k = 0; k < depth; k++) {
		if (stream_status.b[k]) {
			kprintf("blk: stream status=%u at sector %lu\n", stream_status.b[k],
				stream_hdrs[k * mul].sector);
			break;
		}
	}
	return false;
}

/* Off the fast path: a used entry other than the one expected. False (said why) if it is bad. */
static bool __attribute__((noinline)) stream_odd_entry(uint32_t id, uint32_t len, uint32_t want_len)
{
	if (id >= VQ_MAX || !stream_is_head[id]) {
		kprintf("virtio: the block device returned descriptor %u, which is no request\n", id);
		return false;
	}
	if (len != want_len) {
		kprintf("blk: stream: the request at sector %lu came back with %u bytes written, not %u\n",
			stream_hdrs[id].sector, len, want_len);
		return false;
	}
	return true; /* a request that overtook another: fine, but the ring is no longer in order */
}

/*
 * The hot loop: takes up to n used entries while each is the expected one (head `want` + i * mul
 * in the low half, the written length in the high half), writing the next sectors into their
 * headers. Returns how many it took. In assembly, two entries a round, because every instruction
 * counts here: two memory accesses and six instructions an entry.
 */
static inline __attribute__((always_inline)) unsigned
stream_run(const volatile uint64_t *e, uint64_t want, struct blk_req *h, const unsigned mul,
	   unsigned n, uint64_t sector, uint64_t step)
{
	const volatile uint64_t *p = e, *end = e + (n & ~1u);

	if (p != end)
		__asm__ volatile(
			"1:	cmp	%[want], (%[p])\n"
			"	jne	3f\n"
			"	mov	%[sector], 8(%[h])\n"
			"	add	%[step], %[sector]\n"
			"	add	%[mul], %[want]\n"
			"	cmp	%[want], 8(%[p])\n"
			"	jne	2f\n"
			"	mov	%[sector], 8+%c[stride](%[h])\n"
			"	add	%[step], %[sector]\n"
			"	add	%[mul], %[want]\n"
			"	add	$16, %[p]\n"
			"	add	$2*%c[stride], %[h]\n"
			"	cmp	%[end], %[p]\n"
			"	jne	1b\n"
			"	jmp	3f\n"
			"2:	add	$8, %[p]\n"
			"3:\n"
			: [p] "+r"(p), [want] "+r"(want), [h] "+r"(h), [sector] "+r"(sector)
			: [end] "r"(end), [step] "r"(step), [mul] "i"(mul),
			  [stride] "i"(mul * sizeof(struct blk_req))
			: "cc", "memory");
	if (p != end || !(n & 1) || *p != want)
		return p - e;
	h->sector = sector; /* an odd one at the end */
	return n;
}

static void mode_blk_stream(void)
{
	size_t len;
	const char *dir = cmdline_get(cmdline, "dir", &len);
	bool write;

	if (dir && str_equal(dir, len, "write")) {
		write = true;
	} else if (dir && str_equal(dir, len, "read")) {
		write = false;
	} else {
		kprintf("blk: unknown dir \"%.*s\"\n", dir ? (int)len : 0, dir ? dir : "");
		return;
	}
	const char *w = cmdline_get(cmdline, "wait", &len);
	bool poll = false;
	if (w && str_equal(w, len, "poll")) {
		poll = true;
	} else if (w && !str_equal(w, len, "irq")) {
		kprintf("virtio: bad wait \"%.*s\"\n", (int)len, w);
		return;
	}
	uint64_t size = arg_u64("size", 256u << 20), req = arg_u64("req", 128u << 10);
	uint64_t depth = arg_u64("depth", 16), start = arg_u64("start", 0);
	bool indirect = arg_u64("indirect", 1), event_idx = arg_u64("eventidx", 1);
	unsigned depth_max = indirect ? VQ_MAX : STREAM_DEPTH_MAX_DIRECT;
	if (req < SECTOR || req > STREAM_REQ_MAX || req % SECTOR) {
		kprintf("blk: req must be a multiple of %u from %u to %u\n", SECTOR, SECTOR, STREAM_REQ_MAX);
		return;
	}
	if (size == 0 || size % req) {
		kprintf("blk: size must be a non-zero multiple of req\n");
		return;
	}
	if (depth == 0 || depth > depth_max) {
		kprintf("blk: depth must be 1 to %u\n", depth_max);
		return;
	}
	if (!ram_free(STREAM_BASE, depth * req)) {
		kprintf("blk: no room for %lu bytes of buffers at 0x%llx\n", depth * req, STREAM_BASE);
		return;
	}
	blk = find_device(VIRTIO_ID_BLOCK);
	blk_setup(indirect, event_idx);
	if (indirect && !blkq.indirect)
		return;
	uint64_t capacity = blk_capacity();
	if (start + size / SECTOR > capacity) {
		kprintf("blk: %lu bytes from sector %lu do not fit in %lu sectors\n", size, start, capacity);
		return;
	}
	if (depth > (uint64_t)blkq.size / (blkq.indirect ? 1 : 3)) {
		kprintf("blk: depth %lu does not fit in a queue of %u\n", depth, blkq.size);
		return;
	}

	const uint16_t mask = blkq.size - 1, dmask = depth - 1;
	const unsigned mul = blkq.indirect ? 1 : 3;
	const uint32_t want_len = write ? 1 : req + 1, step = req / SECTOR;
	volatile uint16_t *ring = blkq.avail + 2;
	const volatile uint8_t *elems = blkq.used + 4;
	uint16_t heads[VQ_MAX];
	for (unsigned k = 0; k < depth; k++)
		heads[k] = stream_chain(k, write, req);
	/* The ring stays right by itself only if slot order repeats with it: depth a power of 2. */
	bool ordered = !(depth & dmask);
	uint16_t avail = blkq.avail_idx, last = blkq.last_used;
	if (ordered)
		for (unsigned i = 0; i < blkq.size; i++)
			ring[(uint16_t)(avail + i) & mask] = heads[(uint16_t)(avail + i) & dmask];
	kprintf("blk: stream dir=%s size=%lu req=%lu depth=%lu wait=%s%s%s\n", write ? "write" : "read",
		size, req, depth, poll ? "poll" : "irq", blkq.indirect ? " indirect" : "",
		blkq.event_idx ? " eventidx" : "");
	if (poll)
		vq_no_interrupts(&blkq);

	/*
	 * Pass 0 is one untimed lap of `depth` requests over the first sectors, so that the host
	 * has faulted in the pages behind the buffers before the clock starts (the host side of the
	 * benchmark touches its buffer first too); pass 1 is the stream.
	 */
	uint64_t total = size / req, to_post = 0, sector = 0;
	for (int pass = 0; pass < 2; pass++) {
		to_post = pass ? total : (depth < total ? depth : total);
		sector = start;
		if (pass) {
			stream_batches = stream_waits = stream_spins = 0;
			kprintf("blk: stream start\n");
		}
		for (; (uint16_t)(avail - last) < depth && to_post; to_post--) {
			uint16_t head = heads[avail % depth];
			stream_hdrs[head].sector = sector;
			sector += step;
			ring[avail & mask] = head;
			avail++;
		}
		blkq.avail_idx = avail;
		vq_kick(&blkq);

		while (last != avail) {
			uint16_t used = vq_used_idx(&blkq);
			if (used == last) {
				/* Nothing back yet: spin on used->idx (no exits), or sleep until the interrupt. */
				uint64_t deadline = now() + seconds(timeout_s);
				stream_waits++;
				if (poll) {
					vq_no_interrupts(&blkq);
					for (unsigned spins = 1; (used = vq_used_idx(&blkq)) == last; spins++) {
						stream_spins++;
						if (!(spins & 0xfff) && now() > deadline)
							goto timeout;
					}
				} else {
					vq_want_interrupt(&blkq, 1);
					while ((used = vq_used_idx(&blkq)) == last)
						if (!sleep_until(deadline))
							goto timeout;
				}
			}
			stream_batches++;
			/* Entries and status bytes are read after the index (x86 keeps loads in order). */
			__asm__ volatile("" : : : "memory");
			if (!stream_status_ok(last, used, depth, mul, ordered))
				return;
			while (last != used) {
				if (ordered) {
					/* The fast run, up to the end of this lap of the slots. */
					unsigned k = last & dmask, n = (uint16_t)(used - last), got;
					if (n > depth - k)
						n = depth - k;
					const volatile uint64_t *e = (const volatile uint64_t *)(elems + 8 * (last & mask));
					uint64_t want = (uint64_t)want_len << 32 | k * mul;
					got = mul == 1 ? stream_run(e, want, &stream_hdrs[k], 1, n, sector, step)
						       : stream_run(e, want, &stream_hdrs[k * 3], 3, n, sector, step);
					uint64_t posts = got < to_post ? got : to_post;
					sector += (uint64_t)got * step;
					last += got;
					avail += posts;
					to_post -= posts;
					if (got == n)
						continue;
				}
				/* One entry the slow way: unexpected, or with no order to rely on. */
				uint64_t e = *(const volatile uint64_t *)(elems + 8 * (last & mask));
				uint32_t id = (uint32_t)e;
				if (!ordered || id != (last & dmask) * mul || e >> 32 != want_len) {
					if (!stream_odd_entry(id, e >> 32, want_len))
						return;
					ordered = false;
				}
				last++;
				if (to_post) {
					stream_hdrs[id].sector = sector;
					sector += step;
					ring[avail & mask] = id;
					avail++;
					to_post--;
				}
			}
			blkq.last_used = last;
			blkq.avail_idx = avail;
			vq_kick(&blkq);
		}
	}
	kprintf("blk: stream done %lu\n", size);
	if (verbose) /* irqs and notifies count pass 0 too */
		kprintf("blk: irqs=%u notifies=%u batches=%lu waits=%lu spins=%lu features=0x%lx\n",
			blk->irqs, blkq.notifies, stream_batches, stream_waits, stream_spins, blk->features);
	return;
timeout:
	kprintf("blk: timeout (%lu of %lu requests back)\n", total - to_post - (uint16_t)(avail - last), total);
}

/* ---- virtio-rng ---- */

#define RNG_MAX 4096

static uint8_t rng_buf[2][RNG_MAX] __attribute__((aligned(4096)));

static void mode_rng(void)
{
	uint64_t bytes = arg_u64("bytes", 64);
	struct virtio_dev *d;
	struct vq q;
	uint32_t got[2];

	if (bytes == 0 || bytes > RNG_MAX) {
		kprintf("rng: bytes must be 1 to %u\n", RNG_MAX);
		return;
	}
	d = find_device(VIRTIO_ID_RNG);
	begin(d, (arg_u64("eventidx", 0) ? 1ull << VIRTIO_F_EVENT_IDX : 0));
	setup_queue(&q, d, 0, queue_pages[0], NULL);
	virtio_driver_ok(d);
	for (int k = 0; k < 2; k++) {
		struct vbuf b = { rng_buf[k], bytes };
		vq_add(&q, &b, 0, 1, rng_buf[k]);
		vq_kick(&q);
		if (!wait_used(&q, 1)) {
			kprintf("rng: timeout\n");
			return;
		}
		void *cookie;
		if (!vq_get_used(&q, &cookie, &got[k]) || cookie != rng_buf[k]) {
			kprintf("rng: the device returned something else\n");
			return;
		}
		kprintf("rng: got %u bytes\n", got[k]);
	}
	console_puts("rng: first=");
	for (uint32_t i = 0; i < 16 && i < got[0]; i++)
		put_hex2(rng_buf[0][i]);
	console_putc('\n');
	bool same = got[0] == got[1] && !memcmp(rng_buf[0], rng_buf[1], got[0] < bytes ? got[0] : bytes);
	kprintf("rng: %s\n", same ? "same" : "distinct");
	report_interrupts("rng", d, &q);
}

/* ---- virtio-console ---- */

#define CONSOLE_RX_BUFS 4
#define CONSOLE_LINE_MAX 256

static uint8_t console_rx[CONSOLE_RX_BUFS][128];
static char console_tx[CONSOLE_LINE_MAX + 32];

/* Sends s[0..n) through the transmit queue and waits for the device to take it. */
static bool hvc_write(struct vq *tx, const char *s, size_t n)
{
	struct vbuf b = { s, n };
	void *cookie;
	uint32_t len;

	if (vq_add(tx, &b, 1, 0, (void *)s) < 0)
		return false;
	vq_kick(tx);
	if (!wait_used(tx, 1))
		return false;
	return vq_get_used(tx, &cookie, &len) && cookie == s;
}

static void mode_console(void)
{
	static const char hello[] = "console: hello from hvc0\n";
	struct virtio_dev *d = find_device(VIRTIO_ID_CONSOLE);
	static struct vq rx, tx;

	begin(d, 0);
	setup_queue(&rx, d, 0, queue_pages[0], NULL);
	setup_queue(&tx, d, 1, queue_pages[1], NULL);
	virtio_driver_ok(d);
	for (int i = 0; i < CONSOLE_RX_BUFS; i++) {
		struct vbuf b = { console_rx[i], sizeof(console_rx[i]) };
		vq_add(&rx, &b, 0, 1, console_rx[i]);
	}
	vq_kick(&rx);

	if (!hvc_write(&tx, hello, sizeof(hello) - 1)) {
		kprintf("console: timeout sending to hvc0\n");
		return;
	}
	kprintf("console: sent %u bytes to hvc0\n", (unsigned)(sizeof(hello) - 1));

	static uint8_t line[CONSOLE_LINE_MAX];
	size_t n = 0;
	bool complete = false;
	uint64_t deadline = now() + seconds(timeout_s);
	while (!complete) {
		void *cookie;
		uint32_t len;
		vq_want_interrupt(&rx, 1);
		while (!complete && vq_get_used(&rx, &cookie, &len)) {
			uint8_t *b = cookie;
			if (!b) {
				kprintf("console: the device returned descriptor %u, which is no buffer\n", len);
				return;
			}
			if (len > sizeof(console_rx[0]))
				len = sizeof(console_rx[0]);
			for (uint32_t i = 0; i < len && !complete; i++) {
				if (b[i] == '\n' || b[i] == '\r')
					complete = true;
				else if (n < sizeof(line))
					line[n++] = b[i];
			}
			struct vbuf vb = { b, sizeof(console_rx[0]) };
			vq_add(&rx, &vb, 0, 1, b);
			vq_kick(&rx);
		}
		if (!complete && !vq_has_used(&rx) && !sleep_until(deadline)) {
			kprintf("console: timeout waiting for a line on hvc0\n");
			return;
		}
	}

	console_puts("console: rx \"");
	print_escaped(line, n);
	console_puts("\"\n");
	/* The same line on hvc0, bytes outside printable ASCII as they came. */
	static const char prefix[] = "console: rx \"";
	size_t m = sizeof(prefix) - 1;
	memcpy(console_tx, prefix, m);
	memcpy(console_tx + m, line, n);
	m += n;
	console_tx[m++] = '"';
	console_tx[m++] = '\n';
	if (!hvc_write(&tx, console_tx, m))
		kprintf("console: timeout sending to hvc0\n");
	report_interrupts("console", d, &rx);
}

/* ---- virtio-net: ARP and UDP over Ethernet ---- */

#define VIRTIO_NET_F_MAC	5
#define NET_HDR			12	/* virtio_net_hdr with num_buffers (VERSION_1) */
#define NET_BUF			2048
#define NET_RX_BUFS		128
#define NET_TX_BUFS		64
#define ETH_ARP			0x0806
#define ETH_IP			0x0800
#define PAYLOAD_MAX		256

static uint8_t net_rx_bufs[NET_RX_BUFS][NET_BUF] __attribute__((aligned(4096)));
static uint8_t net_tx_bufs[NET_TX_BUFS][NET_BUF] __attribute__((aligned(4096)));
static bool net_tx_busy[NET_TX_BUFS];
static struct vq net_rxq, net_txq;
static struct virtio_dev *net;

static uint8_t my_mac[6], peer_mac[6];
static bool have_peer_mac;
static uint32_t my_ip, peer_ip;
static uint16_t udp_port;
static bool got_udp;
static uint8_t udp_payload[PAYLOAD_MAX];
static size_t udp_len;
static uint32_t udp_from_ip;
static uint16_t udp_from_port;

static uint16_t get16(const uint8_t *p) { return p[0] << 8 | p[1]; }
static uint32_t get32(const uint8_t *p) { return (uint32_t)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }
static void put16(uint8_t *p, uint16_t v) { p[0] = v >> 8; p[1] = v; }
static void put32(uint8_t *p, uint32_t v) { p[0] = v >> 24; p[1] = v >> 16; p[2] = v >> 8; p[3] = v; }

static uint32_t csum_add(uint32_t sum, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		sum += get16(p + i);
	if (n & 1)
		sum += p[n - 1] << 8;
	return sum;
}

static uint16_t csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return ~sum;
}

static void net_reap_tx(void)
{
	void *cookie;
	uint32_t len;

	while (vq_get_used(&net_txq, &cookie, &len))
		if (cookie)
			*(bool *)cookie = false;
}

/* A frame buffer to fill (after the virtio_net_hdr), or NULL if all are in flight. */
static uint8_t *net_tx_buffer(int *slot)
{
	net_reap_tx();
	for (int i = 0; i < NET_TX_BUFS; i++) {
		if (!net_tx_busy[i]) {
			memset(net_tx_bufs[i], 0, NET_HDR + 64);
			*slot = i;
			return net_tx_bufs[i] + NET_HDR;
		}
	}
	return NULL;
}

static void net_send(int slot, size_t frame_len)
{
	if (frame_len < 60)
		frame_len = 60; /* Ethernet's minimum, zero-padded (net_tx_buffer cleared it) */
	struct vbuf b = { net_tx_bufs[slot], NET_HDR + frame_len };
	if (vq_add(&net_txq, &b, 1, 0, &net_tx_busy[slot]) < 0)
		return;
	net_tx_busy[slot] = true;
	vq_kick(&net_txq);
}

static void eth_header(uint8_t *f, const uint8_t *dst, uint16_t type)
{
	memcpy(f, dst, 6);
	memcpy(f + 6, my_mac, 6);
	put16(f + 12, type);
}

static void send_arp(uint16_t op, const uint8_t *dst_mac, const uint8_t *target_mac, uint32_t target_ip)
{
	int slot;
	uint8_t *f = net_tx_buffer(&slot);

	if (!f)
		return;
	eth_header(f, dst_mac, ETH_ARP);
	uint8_t *a = f + 14;
	put16(a, 1);	   /* Ethernet */
	put16(a + 2, ETH_IP);
	a[4] = 6;
	a[5] = 4;
	put16(a + 6, op);
	memcpy(a + 8, my_mac, 6);
	put32(a + 14, my_ip);
	memcpy(a + 18, target_mac, 6);
	put32(a + 24, target_ip);
	net_send(slot, 14 + 28);
}

static size_t udp_frame(uint8_t *f, const uint8_t *payload, size_t n, uint16_t dport);

static void send_udp(const uint8_t *payload, size_t n)
{
	int slot;
	uint8_t *f = net_tx_buffer(&slot);

	if (f)
		net_send(slot, udp_frame(f, payload, n, udp_port));
}

static void net_frame(const uint8_t *f, size_t n)
{
	if (n < 14)
		return;
	uint16_t type = get16(f + 12);
	if (type == ETH_ARP && n >= 14 + 28) {
		const uint8_t *a = f + 14;
		if (get16(a) != 1 || get16(a + 2) != ETH_IP || a[4] != 6 || a[5] != 4)
			return;
		uint16_t op = get16(a + 6);
		uint32_t sender_ip = get32(a + 14), target_ip = get32(a + 24);
		if (sender_ip == peer_ip && !have_peer_mac) {
			memcpy(peer_mac, a + 8, 6);
			have_peer_mac = true;
		}
		if (op == 1 && target_ip == my_ip)
			send_arp(2, a + 8, a + 8, sender_ip);
		return;
	}
	if (type != ETH_IP || n < 14 + 20 || got_udp)
		return;
	const uint8_t *ip = f + 14;
	size_t ihl = (ip[0] & 15) * 4, total = get16(ip + 2);
	if (ip[0] >> 4 != 4 || ihl < 20 || total < ihl + 8 || 14 + total > n || ip[9] != 17)
		return;
	if ((get16(ip + 6) & 0x3fff) || get32(ip + 16) != my_ip)
		return; /* a fragment, or not for us */
	const uint8_t *udp = ip + ihl;
	size_t ulen = get16(udp + 4);
	if (get16(udp + 2) != udp_port || ulen < 8 || ulen > total - ihl)
		return;
	udp_len = ulen - 8 < PAYLOAD_MAX ? ulen - 8 : PAYLOAD_MAX;
	memcpy(udp_payload, udp + 8, udp_len);
	udp_from_ip = get32(ip + 12);
	udp_from_port = get16(udp);
	got_udp = true;
}

/* Handles every received frame (and gives its buffer back), and reclaims sent ones. */
static void net_poll(void)
{
	void *cookie;
	uint32_t len;
	bool reposted = false;

	while (vq_get_used(&net_rxq, &cookie, &len)) {
		uint8_t *b = cookie;
		if (!b) {
			kprintf("net: the device returned descriptor %u, which is no buffer\n", len);
			continue;
		}
		if (len > NET_HDR && len <= NET_BUF)
			net_frame(b + NET_HDR, len - NET_HDR);
		struct vbuf vb = { b, NET_BUF };
		vq_add(&net_rxq, &vb, 0, 1, b);
		reposted = true;
	}
	if (reposted)
		vq_kick(&net_rxq);
	net_reap_tx();
}

/* Runs net_poll until *flag is set; resends with `retry` each second if given. False on timeout. */
static bool net_wait(volatile bool *flag, void (*retry)(void))
{
	uint64_t deadline = now() + seconds(timeout_s), next_retry = now() + seconds(1);

	for (;;) {
		vq_want_interrupt(&net_rxq, 1);
		vq_want_interrupt(&net_txq, 1);
		net_poll();
		if (*flag)
			return true;
		if (retry && now() >= next_retry) {
			retry();
			next_retry = now() + seconds(1);
		}
		if (!vq_has_used(&net_rxq) && !sleep_until(deadline))
			return false;
	}
}

static void arp_request_peer(void)
{
	static const uint8_t broadcast[6] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }, none[6];
	send_arp(1, broadcast, none, peer_ip);
}

/*
 * Brings the device up (MAC from config, NET_RX_BUFS receive buffers posted), then finds the
 * peer's MAC by ARP. False (and a line saying why) if either fails.
 */
static bool net_start(void)
{
	my_ip = arg_ip("ip", "10.0.2.15");
	peer_ip = arg_ip("peer", "10.0.2.2");
	uint64_t port = arg_u64("port", 5555);
	if (port == 0 || port > 65535) {
		kprintf("net: bad port %lu\n", port);
		return false;
	}
	udp_port = port;
	net = find_device(VIRTIO_ID_NET);
	begin(net, 1ull << VIRTIO_NET_F_MAC | (arg_u64("eventidx", 0) ? 1ull << VIRTIO_F_EVENT_IDX : 0));
	if (!(net->features >> VIRTIO_NET_F_MAC & 1)) {
		kprintf("net: the device offers no MAC\n");
		return false;
	}
	for (int i = 0; i < 6; i++)
		my_mac[i] = virtio_config8(net, i);
	console_puts("net: mac=");
	print_mac(my_mac);
	console_putc('\n');
	setup_queue(&net_rxq, net, 0, queue_pages[0], NULL);
	setup_queue(&net_txq, net, 1, queue_pages[1], NULL);
	virtio_driver_ok(net);
	for (int i = 0; i < NET_RX_BUFS; i++) {
		struct vbuf b = { net_rx_bufs[i], NET_BUF };
		vq_add(&net_rxq, &b, 0, 1, net_rx_bufs[i]);
	}
	vq_kick(&net_rxq);

	arp_request_peer();
	if (!net_wait(&have_peer_mac, arp_request_peer)) {
		console_puts("net: timeout waiting for the ARP reply from ");
		print_ip(peer_ip);
		console_putc('\n');
		return false;
	}
	console_puts("net: peer mac=");
	print_mac(peer_mac);
	console_putc('\n');
	return true;
}

/* ---- virtio-net streaming: UDP throughput ---- */

/*
 * mode=net op=stream dir=send|recv ms=T size=BYTES (README.md has the rest)
 *
 * The counterpart of `compare-work udp-send` / `udp-recv` (src/compare/workload.c), with the
 * same rules: the sender knocks ("knock") until the receiver answers ("ready"), sends `size`-byte
 * UDP datagrams (1472 by default: full 1514-byte Ethernet frames) as fast as the queue takes
 * them for T ms, then a few "end"s; the receiver answers knocks, and counts `size`-byte
 * datagrams to its port, from the first to the last, until an "end" or 300 ms with none.
 * Times come from the TSC, in microseconds.
 *
 * As with the block stream, the CPU-0 work per frame is what limits the rate on a platform that
 * emulates CPL 0, so it is small: every transmit buffer holds the same frame, built once
 * (IP and UDP checksums included; the payload is zeros), and a send is one vq_add; the queue is kicked (EVENT_IDX
 * permitting) and interrupts asked for once per batch. A received frame is checked by a handful
 * of loads (type, protocol, port, length) and its buffer posted again, one kick per batch.
 */

#define STREAM_END_MARKS	5
#define STREAM_IDLE_MS		300

/* A UDP datagram my_ip:udp_port → peer_ip:dport in f; its frame's length. */
static size_t udp_frame(uint8_t *f, const uint8_t *payload, size_t n, uint16_t dport)
{
	eth_header(f, peer_mac, ETH_IP);
	uint8_t *ip = f + 14, *udp = ip + 20;
	ip[0] = 0x45;
	ip[1] = 0;
	put16(ip + 2, 20 + 8 + n);
	put16(ip + 4, 1);	/* identification */
	put16(ip + 6, 0x4000);	/* don't fragment */
	ip[8] = 64;
	ip[9] = 17;
	put32(ip + 12, my_ip);
	put32(ip + 16, peer_ip);
	put16(ip + 10, 0);	/* checksums are summed with their own field 0 */
	put16(udp + 6, 0);
	put16(ip + 10, csum_fold(csum_add(0, ip, 20)));
	put16(udp, udp_port);
	put16(udp + 2, dport);
	put16(udp + 4, 8 + n);
	if (payload)
		memcpy(udp + 8, payload, n);
	/* Pseudo-header: source, destination, protocol, UDP length. */
	uint32_t sum = csum_add(0, ip + 12, 8) + 17 + 8 + n;
	uint16_t c = csum_fold(csum_add(sum, udp, 8 + n));
	put16(udp + 6, c ? c : 0xffff);
	return 14 + 20 + 8 + n;
}

static uint64_t tsc_us(uint64_t ticks)
{
	return ticks * 1000000 / tsc_hz;
}

/* Waits (up to timeout_s) until the device has returned every frame handed to it. */
static void net_tx_drain(void)
{
	uint64_t deadline = now() + seconds(timeout_s);

	for (;;) {
		net_reap_tx();
		if (!vq_in_flight(&net_txq))
			return;
		vq_want_interrupt(&net_txq, 1);
		if (!vq_has_used(&net_txq) && !sleep_until(deadline))
			return;
	}
}

static void knock(void)
{
	send_udp((const uint8_t *)"knock", 5);
}

static void net_stream_send(uint64_t ms, size_t size)
{
	static const uint8_t end[3] = "end";
	uint64_t packets = 0;

	/* The receiver answers a knock: then the path works both ways (see compare-work). */
	knock();
	if (!net_wait(&got_udp, knock)) {
		kprintf("net: timeout waiting for the receiver at port %u\n", udp_port);
		return;
	}
	net_tx_drain();
	/*
	 * The payload is zeros, as compare-work's: past its first NET_HDR + 64 bytes no transmit
	 * buffer was ever written (ARP and knocks are shorter), so only those are set, and copied.
	 */
	memset(net_tx_bufs[0], 0, NET_HDR + 64);
	size_t len = udp_frame(net_tx_bufs[0] + NET_HDR, NULL, size, udp_port);
	for (int i = 1; i < NET_TX_BUFS; i++)
		memcpy(net_tx_bufs[i], net_tx_bufs[0], NET_HDR + 64);
	vq_no_interrupts(&net_txq);
	kprintf("net: stream start\n");
	uint64_t t0 = now(), until = t0 + tsc_hz / 1000 * ms, t1 = t0;
	while ((t1 = now()) < until) {
		net_reap_tx();
		unsigned added = 0;
		for (int i = 0; i < NET_TX_BUFS; i++) {
			if (net_tx_busy[i])
				continue;
			struct vbuf b = { net_tx_bufs[i], NET_HDR + len };
			if (vq_add(&net_txq, &b, 1, 0, &net_tx_busy[i]) < 0)
				break;
			net_tx_busy[i] = true;
			added++;
		}
		packets += added;
		if (added) {
			vq_kick(&net_txq);
			continue;
		}
		/* All in flight: sleep until half of them are back. */
		vq_want_interrupt(&net_txq, NET_TX_BUFS / 2);
		if (!vq_has_used(&net_txq))
			sleep_until(until);
		vq_no_interrupts(&net_txq);
	}
	net_tx_drain();
	for (int i = 0; i < STREAM_END_MARKS; i++) {
		int slot;
		uint8_t *f = net_tx_buffer(&slot);
		if (f)
			net_send(slot, udp_frame(f, end, sizeof(end), udp_port));
	}
	net_tx_drain();
	kprintf("net: stream sent packets=%lu bytes=%lu us=%lu\n", packets, packets * size, tsc_us(t1 - t0));
}

/*
 * Whether frame f (n bytes) is a UDP datagram to my_ip:udp_port; if so its UDP payload and
 * length, and its source port.
 */
static bool udp_to_me(const uint8_t *f, size_t n, const uint8_t **payload, size_t *len, uint16_t *sport)
{
	if (n < 14 + 20 + 8 || get16(f + 12) != ETH_IP)
		return false;
	const uint8_t *ip = f + 14, *udp = ip + 20;
	if (ip[0] != 0x45 || ip[9] != 17 || get32(ip + 16) != my_ip || get16(udp + 2) != udp_port)
		return false;
	size_t ulen = get16(udp + 4);
	if (ulen < 8 || 14 + 20 + ulen > n)
		return false;
	*payload = udp + 8;
	*len = ulen - 8;
	*sport = get16(udp);
	return true;
}

static void net_stream_recv(size_t size)
{
	uint64_t packets = 0, first = 0, last = 0, deadline = now() + seconds(timeout_s);
	bool ended = false;

	kprintf("net: stream ready\n");
	while (!ended) {
		void *cookie;
		uint32_t len;
		unsigned reposted = 0;

		while (vq_get_used(&net_rxq, &cookie, &len)) {
			uint8_t *b = cookie;
			if (!b)
				continue;
			const uint8_t *p;
			size_t n;
			uint16_t sport;
			if (len > NET_HDR && len <= NET_BUF) {
				if (udp_to_me(b + NET_HDR, len - NET_HDR, &p, &n, &sport)) {
					if (n == size) {
						last = now();
						if (!packets++)
							first = last;
					} else if (n == 5 && !memcmp(p, "knock", 5) && !packets) {
						int slot;
						uint8_t *f = net_tx_buffer(&slot);
						if (f)
							net_send(slot, udp_frame(f, (const uint8_t *)"ready", 5, sport));
					} else if (n == 3 && !memcmp(p, "end", 3) && packets) {
						ended = true;
					}
				} else {
					net_frame(b + NET_HDR, len - NET_HDR); /* ARP */
				}
			}
			struct vbuf vb = { b, NET_BUF };
			vq_add(&net_rxq, &vb, 0, 1, b);
			reposted++;
		}
		if (reposted)
			vq_kick(&net_rxq);
		net_reap_tx();
		if (packets)
			deadline = last + seconds(1) / 1000 * STREAM_IDLE_MS;
		if (ended)
			break;
		vq_want_interrupt(&net_rxq, 1);
		if (!vq_has_used(&net_rxq) && !sleep_until(deadline))
			break;
	}
	if (!packets) {
		kprintf("net: timeout waiting for a stream to port %u\n", udp_port);
		return;
	}
	kprintf("net: stream received packets=%lu bytes=%lu us=%lu\n", packets, packets * size, tsc_us(last - first));
}

static void net_stream(void)
{
	size_t len;
	const char *dir = cmdline_get(cmdline, "dir", &len);
	bool send = dir && str_equal(dir, len, "send");
	uint64_t ms = arg_u64("ms", 2000), size = arg_u64("size", 1472);

	if (!send && !(dir && str_equal(dir, len, "recv"))) {
		kprintf("net: stream: dir=send or dir=recv\n");
		return;
	}
	if (size < 16 || size > NET_BUF - NET_HDR - 14 - 20 - 8 || ms == 0 || ms > 3600000) {
		kprintf("net: stream: size=%lu or ms=%lu out of range\n", size, ms);
		return;
	}
	if (send)
		net_stream_send(ms, size);
	else
		net_stream_recv(size);
	report_interrupts("net", net, &net_rxq);
}

static void mode_net(void)
{
	static const char hello[] = "hello from tsvmm guest";
	size_t len;
	const char *op = cmdline_get(cmdline, "op", &len);

	if (!net_start())
		return;
	if (op && str_equal(op, len, "stream")) {
		net_stream();
		return;
	}
	send_udp((const uint8_t *)hello, sizeof(hello) - 1);
	kprintf("net: sent \"%s\" to ", hello);
	print_ip(peer_ip);
	kprintf(":%u\n", udp_port);
	if (!net_wait(&got_udp, NULL)) {
		kprintf("net: timeout waiting for a UDP datagram to port %u\n", udp_port);
		return;
	}
	console_puts("net: rx \"");
	print_escaped(udp_payload, udp_len);
	console_puts("\" from ");
	print_ip(udp_from_ip);
	kprintf(":%u\n", udp_from_port);
	kprintf("net: done\n");
	report_interrupts("net", net, &net_rxq);
}

/* ---- malformed requests on virtio-blk ---- */

static void mode_hostile(void)
{
	size_t len;
	const char *c = cmdline_get(cmdline, "case", &len);
	enum { LOOP, OOB, BADNEXT, RESET } kind;

	if (c && str_equal(c, len, "loop")) {
		kind = LOOP;
	} else if (c && str_equal(c, len, "oob")) {
		kind = OOB;
	} else if (c && str_equal(c, len, "badnext")) {
		kind = BADNEXT;
	} else if (c && str_equal(c, len, "reset")) {
		kind = RESET;
	} else {
		kprintf("hostile: unknown case \"%.*s\"\n", c ? (int)len : 0, c ? c : "");
		return;
	}
	blk = find_device(VIRTIO_ID_BLOCK);
	blk_setup(false, false);
	uint32_t n;
	int st = blk_simple(VIRTIO_BLK_T_IN, 0, blk_data, SECTOR, &n);
	if (st) {
		kprintf("hostile: the first, valid read failed (%d)\n", st);
		return;
	}

	if (kind == RESET) {
		kprintf("hostile: resetting a working device\n");
	} else {
		/* A bad chain, written straight into the table: header, data buffer, status byte. */
		struct blk_req *r = &blk_reqs[0];
		r->type = VIRTIO_BLK_T_IN;
		r->sector = 0;
		r->status = 0xff;
		volatile struct virtq_desc *desc = blkq.desc;
		desc[0] = (struct virtq_desc){ (uint64_t)r, 16, VIRTQ_DESC_F_NEXT, 1 };
		desc[1] = (struct virtq_desc){ (uint64_t)blk_data, SECTOR,
					       VIRTQ_DESC_F_NEXT | VIRTQ_DESC_F_WRITE, 2 };
		desc[2] = (struct virtq_desc){ (uint64_t)&r->status, 1, VIRTQ_DESC_F_WRITE, 0 };
		if (kind == LOOP)
			desc[0].next = 0;		/* the header names itself as next */
		else if (kind == OOB)
			desc[1].addr = 0x700000000ull;	/* 28 GiB: no RAM there */
		else
			desc[1].next = blkq.size;	/* one past the end of the table */
		blk->isr_seen = 0;
		blkq.avail[2 + (blkq.avail_idx & (blkq.size - 1))] = 0;
		blkq.avail_idx++;
		vq_kick(&blkq);
		kprintf("hostile: placed the bad chain (case=%.*s)\n", (int)len, c);

		/* Poll Status for up to the timeout, sleeping between looks. */
		uint64_t deadline = now() + seconds(timeout_s);
		uint32_t status;
		while (!((status = virtio_read32(blk, VIRTIO_MMIO_STATUS)) & VIRTIO_STATUS_NEEDS_RESET))
			if (!sleep_until(deadline))
				break;
		if (status & VIRTIO_STATUS_NEEDS_RESET) {
			/* The configuration-change interrupt should come with it; give it a moment. */
			uint64_t grace = now() + tsc_hz / 2;
			while (!(blk->isr_seen & VIRTIO_INT_CONFIG) && sleep_until(grace))
				;
			kprintf("hostile: device needs reset\n");
			kprintf("hostile: %s\n", blk->isr_seen & VIRTIO_INT_CONFIG ?
				"config change interrupt" : "no config change interrupt");
		} else {
			kprintf("hostile: device did not flag the bad request\n");
			kprintf("hostile: status=0x%x\n", status);
			if (vq_has_used(&blkq))
				kprintf("hostile: it returned the chain (status byte 0x%x)\n", r->status);
		}
	}

	/* Reset and set up again at once, as a driver would; settle=MS waits in between. */
	unroute_irq(blk);
	uint64_t settle = arg_u64("settle", 0);
	if (settle) {
		virtio_reset(blk);
		uint64_t until = now() + tsc_hz / 1000 * settle;
		while (sleep_until(until))
			;
	}
	blk_setup(false, false);
	memset(blk_data, 0, SECTOR);
	st = blk_simple(VIRTIO_BLK_T_IN, 0, blk_data, SECTOR, &n);
	if (st == 0 && n == SECTOR + 1)
		kprintf("hostile: recovered\n");
	else if (st == 0)
		kprintf("hostile: the read after the reset wrote %u bytes, not %u\n", n, SECTOR + 1);
	else if (st == -1)
		kprintf("hostile: timeout reading after the reset\n");
	else
		kprintf("hostile: the read after the reset failed (%d)\n", st);
}

/* ---- main ---- */

static const struct {
	const char *name;
	void (*run)(void);
} modes[] = {
	{ "blk", mode_blk },
	{ "rng", mode_rng },
	{ "net", mode_net },
	{ "console", mode_console },
	{ "hostile", mode_hostile },
};

void kmain(const struct hvm_start_info *si)
{
	size_t len = 0;
	const char *mode;

	console_init(false);
	start_info = si;
	cmdline = pvh_cmdline(si);
	verbose = arg_u64("verbose", 0);
	mode = cmdline_get(cmdline, "mode", &len);
	if (!mode)
		mode = "";
	/* Waits for the far side of a network or a console get longer by default. */
	bool slow = str_equal(mode, len, "net") || str_equal(mode, len, "console");
	timeout_s = arg_u64("timeout", slow ? 10 : 5);
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		if (!str_equal(mode, len, modes[i].name))
			continue;
		interrupts_init();
		ndevs = virtio_probe_cmdline(cmdline, devs, MAX_DEVICES);
		for (unsigned k = 0; k < ndevs; k++) {
			const struct virtio_dev *d = &devs[k];
			const char *kind = virtio_kind(d->device_id);
			if (!d->device_id)
				continue; /* no device behind the window (or not virtio at all) */
			if (kind)
				kprintf("virtio: found %s at 0x%lx irq %u", kind, d->base, d->irq);
			else
				kprintf("virtio: found device id %u at 0x%lx irq %u", d->device_id, d->base,
					d->irq);
			if (d->version == 2)
				kprintf("\n");
			else
				kprintf(" (version %u)\n", d->version);
		}
		modes[i].run();
		shutdown();
	}
	kprintf("virtio: unknown mode \"%.*s\"\n", (int)len, mode);
	shutdown();
}
