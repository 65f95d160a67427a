/* virtio-mmio transport and split virtqueues, driver side. See virtio.h. */
#include "lib.h"
#include "virtio.h"

#define used_idx(q)	(*(volatile uint16_t *)((q)->used + 2))
#define used_flags(q)	(*(volatile uint16_t *)((q)->used))
#define avail_event(q)	(*(volatile uint16_t *)((q)->used + 4 + 8 * (q)->size))
#define used_event(q)	((q)->avail[2 + (q)->size])

const char *virtio_kind(uint32_t device_id)
{
	switch (device_id) {
	case VIRTIO_ID_NET: return "net";
	case VIRTIO_ID_BLOCK: return "blk";
	case VIRTIO_ID_CONSOLE: return "console";
	case VIRTIO_ID_RNG: return "rng";
	default: return NULL;
	}
}

/* Linux's memparse: a number with an optional K, M or G suffix. */
static bool parse_size(const char *s, size_t n, uint64_t *out)
{
	unsigned shift = 0;

	if (n > 1) {
		char c = s[n - 1] | 0x20;
		shift = c == 'k' ? 10 : c == 'm' ? 20 : c == 'g' ? 30 : 0;
	}
	if (!parse_u64(s, shift ? n - 1 : n, out))
		return false;
	*out <<= shift;
	return true;
}

static size_t span_until(const char *s, size_t n, char c)
{
	size_t i = 0;

	while (i < n && s[i] != c)
		i++;
	return i;
}

/* "4K@0xc0000000:5" or "512@0xfeb00e00:12:3" (Linux also takes a platform device id). */
static bool parse_device(const char *s, size_t n, struct virtio_dev *d)
{
	size_t at = span_until(s, n, '@');
	if (at == n || !parse_size(s, at, &d->size))
		return false;
	s += at + 1;
	n -= at + 1;
	size_t colon = span_until(s, n, ':');
	if (colon == n || !parse_u64(s, colon, &d->base))
		return false;
	s += colon + 1;
	n -= colon + 1;
	uint64_t irq;
	if (!parse_u64(s, span_until(s, n, ':'), &irq) || irq > 255)
		return false;
	d->irq = irq;
	return d->size >= 0x100 && d->base && !(d->base & 3);
}

unsigned virtio_probe_cmdline(const char *cmdline, struct virtio_dev *devs, unsigned max)
{
	static const char key[] = "virtio_mmio.device=";
	const size_t keylen = sizeof(key) - 1;
	unsigned count = 0;
	const char *p = cmdline;

	while (*p && count < max) {
		while (*p == ' ' || *p == '\t')
			p++;
		const char *word = p;
		while (*p && *p != ' ' && *p != '\t')
			p++;
		size_t n = p - word;
		if (n <= keylen || memcmp(word, key, keylen))
			continue;
		struct virtio_dev *d = &devs[count];
		memset(d, 0, sizeof(*d));
		if (!parse_device(word + keylen, n - keylen, d))
			continue;
		if (virtio_read32(d, VIRTIO_MMIO_MAGIC) == VIRTIO_MMIO_MAGIC_VALUE) {
			d->version = virtio_read32(d, VIRTIO_MMIO_VERSION);
			d->device_id = virtio_read32(d, VIRTIO_MMIO_DEVICE_ID);
		}
		count++;
	}
	return count;
}

void virtio_reset(struct virtio_dev *d)
{
	virtio_write32(d, VIRTIO_MMIO_STATUS, 0);
	/* §4.2.3.1: the reset is done when Status reads 0. Ours and QEMU's are immediate. */
	for (unsigned i = 0; i < 1000 && virtio_read32(d, VIRTIO_MMIO_STATUS); i++)
		;
}

static uint64_t device_features(struct virtio_dev *d)
{
	virtio_write32(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
	uint64_t hi = virtio_read32(d, VIRTIO_MMIO_DEVICE_FEATURES);
	virtio_write32(d, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
	return hi << 32 | virtio_read32(d, VIRTIO_MMIO_DEVICE_FEATURES);
}

static void add_status(struct virtio_dev *d, uint32_t bits)
{
	virtio_write32(d, VIRTIO_MMIO_STATUS, virtio_read32(d, VIRTIO_MMIO_STATUS) | bits);
}

const char *virtio_begin(struct virtio_dev *d, uint64_t wanted)
{
	if (d->version != 2)
		return "not a virtio-mmio version 2 device";
	virtio_reset(d);
	if (virtio_read32(d, VIRTIO_MMIO_STATUS))
		return "Status does not read 0 after a reset";
	add_status(d, VIRTIO_STATUS_ACKNOWLEDGE);
	add_status(d, VIRTIO_STATUS_DRIVER);
	uint64_t offered = device_features(d);
	if (!(offered & 1ull << VIRTIO_F_VERSION_1)) {
		add_status(d, VIRTIO_STATUS_FAILED);
		return "VERSION_1 is not offered";
	}
	d->features = offered & (wanted | 1ull << VIRTIO_F_VERSION_1);
	virtio_write32(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
	virtio_write32(d, VIRTIO_MMIO_DRIVER_FEATURES, (uint32_t)d->features);
	virtio_write32(d, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
	virtio_write32(d, VIRTIO_MMIO_DRIVER_FEATURES, d->features >> 32);
	add_status(d, VIRTIO_STATUS_FEATURES_OK);
	if (!(virtio_read32(d, VIRTIO_MMIO_STATUS) & VIRTIO_STATUS_FEATURES_OK)) {
		add_status(d, VIRTIO_STATUS_FAILED);
		return "the device did not accept our features";
	}
	return NULL;
}

const char *vq_setup(struct vq *q, struct virtio_dev *d, unsigned index, void *page,
		     unsigned max_size, struct virtq_desc (*tables)[VQ_MAX_SEGS])
{
	virtio_write32(d, VIRTIO_MMIO_QUEUE_SEL, index);
	if (virtio_read32(d, VIRTIO_MMIO_QUEUE_READY))
		return "queue already live";
	unsigned max = virtio_read32(d, VIRTIO_MMIO_QUEUE_NUM_MAX);
	if (!max)
		return "queue not available";
	unsigned size = 1;
	while (size * 2 <= max && size * 2 <= max_size && size * 2 <= VQ_MAX)
		size *= 2;

	memset(q, 0, sizeof(*q));
	/* 4 KiB: descriptors at 0 (16 * 128 = 2 KiB), available ring at 2 KiB, used ring at 2.5 KiB. */
	memset(page, 0, 4096);
	q->dev = d;
	q->index = index;
	q->size = size;
	q->desc = page;
	q->avail = (volatile uint16_t *)((char *)page + 2048);
	q->used = (volatile uint8_t *)page + 2560;
	q->event_idx = d->features >> VIRTIO_F_EVENT_IDX & 1;
	q->indirect = tables && (d->features >> VIRTIO_F_INDIRECT_DESC & 1);
	q->tables = tables;
	q->num_free = size;
	for (unsigned i = 0; i < size; i++)
		q->link[i] = i + 1 < size ? i + 1 : 0;

	uint64_t desc = (uint64_t)q->desc, avail = (uint64_t)q->avail, used = (uint64_t)q->used;
	virtio_write32(d, VIRTIO_MMIO_QUEUE_NUM, size);
	virtio_write32(d, VIRTIO_MMIO_QUEUE_DESC_LOW, (uint32_t)desc);
	virtio_write32(d, VIRTIO_MMIO_QUEUE_DESC_HIGH, desc >> 32);
	virtio_write32(d, VIRTIO_MMIO_QUEUE_DRIVER_LOW, (uint32_t)avail);
	virtio_write32(d, VIRTIO_MMIO_QUEUE_DRIVER_HIGH, avail >> 32);
	virtio_write32(d, VIRTIO_MMIO_QUEUE_DEVICE_LOW, (uint32_t)used);
	virtio_write32(d, VIRTIO_MMIO_QUEUE_DEVICE_HIGH, used >> 32);
	virtio_write32(d, VIRTIO_MMIO_QUEUE_READY, 1);
	if (virtio_read32(d, VIRTIO_MMIO_QUEUE_READY) != 1)
		return "QueueReady does not read back 1";
	return NULL;
}

void virtio_driver_ok(struct virtio_dev *d)
{
	add_status(d, VIRTIO_STATUS_DRIVER_OK);
}

int vq_add(struct vq *q, const struct vbuf *bufs, unsigned n_out, unsigned n_in, void *cookie)
{
	unsigned n = n_out + n_in;
	bool indirect = q->indirect && n > 1;
	unsigned need = indirect ? 1 : n;

	if (n == 0 || n > VQ_MAX_SEGS || need > q->num_free)
		return -1;
	uint16_t head = q->free_head;
	if (indirect) {
		struct virtq_desc *t = q->tables[head];
		for (unsigned i = 0; i < n; i++) {
			t[i].addr = (uint64_t)bufs[i].addr;
			t[i].len = bufs[i].len;
			t[i].flags = (i >= n_out ? VIRTQ_DESC_F_WRITE : 0) | (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0);
			t[i].next = i + 1 < n ? i + 1 : 0;
		}
		q->desc[head].addr = (uint64_t)t;
		q->desc[head].len = n * sizeof(struct virtq_desc);
		q->desc[head].flags = VIRTQ_DESC_F_INDIRECT;
		q->desc[head].next = 0;
		q->free_head = q->link[head];
	} else {
		uint16_t i = head;
		for (unsigned k = 0; k < n; k++) {
			q->desc[i].addr = (uint64_t)bufs[k].addr;
			q->desc[i].len = bufs[k].len;
			q->desc[i].flags = (k >= n_out ? VIRTQ_DESC_F_WRITE : 0) | (k + 1 < n ? VIRTQ_DESC_F_NEXT : 0);
			q->desc[i].next = q->link[i];
			i = q->link[i];
		}
		q->free_head = i;
	}
	q->num_free -= need;
	q->chain_len[head] = need;
	q->cookie[head] = cookie;
	q->avail[2 + (q->avail_idx & (q->size - 1))] = head;
	q->avail_idx++;
	return head;
}

/* virtio_ring.h's vring_need_event: did the index pass `event` going from `old` to `new`? */
static bool need_event(uint16_t event, uint16_t new_idx, uint16_t old)
{
	return (uint16_t)(new_idx - event - 1) < (uint16_t)(new_idx - old);
}

void vq_kick(struct vq *q)
{
	/* The ring entries and descriptors were plain stores; x86 keeps stores in order. */
	__asm__ volatile("" : : : "memory");
	q->avail[1] = q->avail_idx;
	/* §2.7.13.4: the index must be visible before we read whether the device wants a notification. */
	virtio_mb();
	uint16_t old = q->kicked_idx, new_idx = q->avail_idx;
	q->kicked_idx = new_idx;
	if (old == new_idx)
		return;
	bool notify = q->event_idx ? need_event(avail_event(q), new_idx, old)
				   : !(used_flags(q) & VIRTQ_USED_F_NO_NOTIFY);
	if (notify) {
		virtio_write32(q->dev, VIRTIO_MMIO_QUEUE_NOTIFY, q->index);
		q->notifies++;
	}
}

bool vq_has_used(const struct vq *q)
{
	return used_idx(q) != q->last_used;
}

bool vq_get_used(struct vq *q, void **cookie, uint32_t *len)
{
	if (!vq_has_used(q))
		return false;
	/* Loads are not reordered with loads on x86: the entry is read after the index. */
	__asm__ volatile("" : : : "memory");
	volatile uint32_t *elem = (volatile uint32_t *)(q->used + 4 + 8 * (q->last_used & (q->size - 1)));
	uint32_t id = elem[0];
	*len = elem[1];
	q->last_used++;
	if (id >= q->size || !q->chain_len[id]) {
		*cookie = NULL;
		*len = id;
		return true;
	}
	uint16_t last = id;
	for (unsigned k = 1; k < q->chain_len[id]; k++)
		last = q->link[last];
	q->link[last] = q->free_head;
	q->free_head = id;
	q->num_free += q->chain_len[id];
	q->chain_len[id] = 0;
	*cookie = q->cookie[id];
	q->cookie[id] = NULL;
	return true;
}

void vq_want_interrupt(struct vq *q, uint16_t count)
{
	if (q->event_idx)
		used_event(q) = (uint16_t)(q->last_used + count - 1);
	else
		q->avail[0] = 0;
	virtio_mb();
}
