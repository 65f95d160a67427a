/*
 * A small virtio 1.x driver core: the virtio-mmio (version 2) transport of spec §4.2.2 and the
 * split virtqueue of §2.7, seen from the driver. Device drivers (virtio.c) sit on top.
 *
 * Everything runs at CPL 0 with interrupts off except where a caller sleeps in sti;hlt. Queue
 * memory comes from the caller (one 4 KiB page per queue, up to VQ_MAX entries).
 */
#ifndef GUESTS_VIRTIO_H
#define GUESTS_VIRTIO_H

#include <stdbool.h>
#include <stdint.h>

/* MMIO registers (§4.2.2) */
#define VIRTIO_MMIO_MAGIC		0x000
#define VIRTIO_MMIO_VERSION		0x004
#define VIRTIO_MMIO_DEVICE_ID		0x008
#define VIRTIO_MMIO_VENDOR_ID		0x00c
#define VIRTIO_MMIO_DEVICE_FEATURES	0x010
#define VIRTIO_MMIO_DEVICE_FEATURES_SEL	0x014
#define VIRTIO_MMIO_DRIVER_FEATURES	0x020
#define VIRTIO_MMIO_DRIVER_FEATURES_SEL	0x024
#define VIRTIO_MMIO_QUEUE_SEL		0x030
#define VIRTIO_MMIO_QUEUE_NUM_MAX	0x034
#define VIRTIO_MMIO_QUEUE_NUM		0x038
#define VIRTIO_MMIO_QUEUE_READY		0x044
#define VIRTIO_MMIO_QUEUE_NOTIFY	0x050
#define VIRTIO_MMIO_INTERRUPT_STATUS	0x060
#define VIRTIO_MMIO_INTERRUPT_ACK	0x064
#define VIRTIO_MMIO_STATUS		0x070
#define VIRTIO_MMIO_QUEUE_DESC_LOW	0x080
#define VIRTIO_MMIO_QUEUE_DESC_HIGH	0x084
#define VIRTIO_MMIO_QUEUE_DRIVER_LOW	0x090
#define VIRTIO_MMIO_QUEUE_DRIVER_HIGH	0x094
#define VIRTIO_MMIO_QUEUE_DEVICE_LOW	0x0a0
#define VIRTIO_MMIO_QUEUE_DEVICE_HIGH	0x0a4
#define VIRTIO_MMIO_CONFIG_GENERATION	0x0fc
#define VIRTIO_MMIO_CONFIG		0x100

#define VIRTIO_MMIO_MAGIC_VALUE 0x74726976 /* "virt" */

/* Device status bits (§2.1) */
#define VIRTIO_STATUS_ACKNOWLEDGE	1
#define VIRTIO_STATUS_DRIVER		2
#define VIRTIO_STATUS_DRIVER_OK		4
#define VIRTIO_STATUS_FEATURES_OK	8
#define VIRTIO_STATUS_NEEDS_RESET	0x40
#define VIRTIO_STATUS_FAILED		0x80

/* InterruptStatus bits */
#define VIRTIO_INT_USED_BUFFER	1
#define VIRTIO_INT_CONFIG	2

/* Feature bits (§6) */
#define VIRTIO_F_INDIRECT_DESC	28
#define VIRTIO_F_EVENT_IDX	29
#define VIRTIO_F_VERSION_1	32

/* Device ids (§5) */
#define VIRTIO_ID_NET		1
#define VIRTIO_ID_BLOCK		2
#define VIRTIO_ID_CONSOLE	3
#define VIRTIO_ID_RNG		4

/* Split virtqueue (§2.7) */
#define VIRTQ_DESC_F_NEXT	1
#define VIRTQ_DESC_F_WRITE	2
#define VIRTQ_DESC_F_INDIRECT	4
#define VIRTQ_AVAIL_F_NO_INTERRUPT 1
#define VIRTQ_USED_F_NO_NOTIFY	1

/* The largest queue we set up (its rings fit one 4 KiB page), and the longest chain we build. */
#define VQ_MAX		128
#define VQ_MAX_SEGS	16

struct virtq_desc {
	uint64_t addr;
	uint32_t len;
	uint16_t flags;
	uint16_t next;
};

struct virtio_dev {
	uint64_t base;		/* guest-physical address of the MMIO window */
	uint64_t size;		/* its length, as the command line gave it */
	unsigned irq;		/* GSI */
	unsigned version;	/* Version register: 2 is virtio-mmio 1.x, 1 is legacy */
	uint32_t device_id;
	uint64_t features;	/* negotiated */
	/* Written by the interrupt handler: */
	volatile uint32_t isr_seen;	/* InterruptStatus bits seen since the last clear */
	volatile uint32_t irqs;		/* interrupts taken */
};

struct vq {
	struct virtio_dev *dev;
	unsigned index;
	uint16_t size;
	volatile struct virtq_desc *desc;
	volatile uint16_t *avail;	/* flags, idx, ring[size], used_event */
	volatile uint8_t *used;		/* flags, idx, ring[size] of (id, len), avail_event */
	bool indirect;			/* use an indirect table for chains of more than one buffer */
	bool event_idx;
	uint16_t free_head, num_free;
	uint16_t avail_idx;		/* what we last wrote (or will write) to avail->idx */
	uint16_t kicked_idx;		/* avail_idx when we last decided whether to notify */
	uint16_t last_used;		/* next used-ring entry to read */
	uint32_t notifies;		/* QueueNotify writes */
	uint16_t link[VQ_MAX];		/* our own copy of the free list and the chains' order */
	uint16_t chain_len[VQ_MAX];
	void *cookie[VQ_MAX];
	/* One indirect table per head descriptor, VQ_MAX_SEGS entries each (needed if indirect). */
	struct virtq_desc (*tables)[VQ_MAX_SEGS];
};

/* A buffer handed to the device. */
struct vbuf {
	const void *addr;
	uint32_t len;
};

static inline uint32_t virtio_read32(const struct virtio_dev *d, uint32_t reg)
{
	return *(volatile uint32_t *)(d->base + reg);
}

static inline void virtio_write32(const struct virtio_dev *d, uint32_t reg, uint32_t v)
{
	*(volatile uint32_t *)(d->base + reg) = v;
}

static inline uint8_t virtio_config8(const struct virtio_dev *d, uint32_t offset)
{
	return *(volatile uint8_t *)(d->base + VIRTIO_MMIO_CONFIG + offset);
}

/* A full memory barrier that the CPL-0 instruction emulator handles (mfence it may not). */
static inline void virtio_mb(void)
{
	__asm__ volatile("lock orl $0, (%%rsp)" : : : "memory", "cc");
}

/* "net", "blk", "console", "rng", or NULL for other ids. */
const char *virtio_kind(uint32_t device_id);

/*
 * Finds the devices the command line announces (`virtio_mmio.device=SIZE@BASE:IRQ`, as Linux
 * reads them) and reads their magic, version and device id. Returns how many were found (at
 * most `max`); entries that do not parse are skipped. A window whose magic is wrong gets
 * device_id 0.
 */
unsigned virtio_probe_cmdline(const char *cmdline, struct virtio_dev *devs, unsigned max);

/* Writes 0 to Status and waits for it to read back 0. */
void virtio_reset(struct virtio_dev *d);

/*
 * Reset, ACKNOWLEDGE, DRIVER, feature negotiation (VERSION_1 always, plus the `wanted` bits the
 * device offers) and FEATURES_OK. Returns NULL on success, else what went wrong (Status is then
 * FAILED).
 */
const char *virtio_begin(struct virtio_dev *d, uint64_t wanted);

/*
 * Sets up queue `index` in `page` (4 KiB, 4 KiB-aligned, zeroed here) with up to `max_size`
 * entries. `tables` holds the indirect tables (VQ_MAX of them) or is NULL. NULL on success.
 */
const char *vq_setup(struct vq *q, struct virtio_dev *d, unsigned index, void *page,
		     unsigned max_size, struct virtq_desc (*tables)[VQ_MAX_SEGS]);

/* Sets DRIVER_OK. */
void virtio_driver_ok(struct virtio_dev *d);

/*
 * Adds a chain: `n_out` device-readable buffers, then `n_in` device-writable ones. Returns the
 * head descriptor, or -1 if the queue has no room. Not visible to the device until vq_kick.
 */
int vq_add(struct vq *q, const struct vbuf *bufs, unsigned n_out, unsigned n_in, void *cookie);

/* Publishes what vq_add added and notifies the device if it wants to be told (§2.7.13). */
void vq_kick(struct vq *q);

/* Whether the used ring holds entries we have not taken yet. */
bool vq_has_used(const struct vq *q);

/*
 * Takes the next used entry: returns true and its cookie and written length, and frees its
 * descriptors. False if there is none, or if the device returned a descriptor that is not the
 * head of a chain in flight (then *cookie is NULL and *len the bad id).
 */
bool vq_get_used(struct vq *q, void **cookie, uint32_t *len);

/*
 * Asks for an interrupt once `count` (>= 1) more used entries have arrived: with EVENT_IDX
 * through used_event, else by clearing VIRTQ_AVAIL_F_NO_INTERRUPT. Followed by a full barrier, so
 * a vq_has_used afterwards does not miss an entry the device added without interrupting.
 */
void vq_want_interrupt(struct vq *q, uint16_t count);

/* Number of chains handed to the device and not yet returned. */
static inline unsigned vq_in_flight(const struct vq *q)
{
	return (uint16_t)(q->avail_idx - q->last_used);
}

/* The device's used->idx, for a driver that reads the used ring itself. */
static inline uint16_t vq_used_idx(const struct vq *q)
{
	return *(volatile uint16_t *)(q->used + 2);
}

/*
 * Asks for no interrupts: with EVENT_IDX, used_event half the index space ahead of q->last_used
 * (call again before last_used has moved by 0x7f00), else VIRTQ_AVAIL_F_NO_INTERRUPT.
 */
static inline void vq_no_interrupts(struct vq *q)
{
	if (q->event_idx)
		q->avail[2 + q->size] = (uint16_t)(q->last_used + 0x7fff);
	else
		q->avail[0] = VIRTQ_AVAIL_F_NO_INTERRUPT;
}

#endif
