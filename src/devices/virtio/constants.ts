// Split-virtqueue constants from the virtio 1.x specification (§2.7 and the virtio_ring.h of
// Appendix A), under the specification's own names so they can be looked up there.

/** The buffer continues in the descriptor named by `next`. */
export const VIRTQ_DESC_F_NEXT = 1;
/** The buffer is device-writable (otherwise device-readable). */
export const VIRTQ_DESC_F_WRITE = 2;
/** The buffer holds a table of descriptors. */
export const VIRTQ_DESC_F_INDIRECT = 4;

/** In virtq_avail.flags: the driver does not want used-buffer notifications. */
export const VIRTQ_AVAIL_F_NO_INTERRUPT = 1;
/** In virtq_used.flags: the device does not want available-buffer notifications. */
export const VIRTQ_USED_F_NO_NOTIFY = 1;

/** Feature bits (§6): descriptors may point at indirect tables; used_event/avail_event replace the flags. */
export const VIRTIO_F_INDIRECT_DESC = 28;
export const VIRTIO_F_EVENT_IDX = 29;

/** The largest queue size: the largest power of 2 for which a 16-bit index still tells full from empty. */
export const VIRTQ_MAX_SIZE = 32768;

/** sizeof(struct virtq_desc): le64 addr, le32 len, le16 flags, le16 next. */
export const VIRTQ_DESC_SIZE = 16;
/** sizeof(struct virtq_used_elem): le32 id, le32 len. */
export const VIRTQ_USED_ELEM_SIZE = 8;

/** Minimum alignment of each part of a split virtqueue. */
export const VIRTQ_DESC_ALIGN = 16;
export const VIRTQ_AVAIL_ALIGN = 2;
export const VIRTQ_USED_ALIGN = 4;

/** Bytes in each part for a queue of `size` entries, counting used_event and avail_event. */
export const descTableSize = (size: number): number => VIRTQ_DESC_SIZE * size;
export const availRingSize = (size: number): number => 6 + 2 * size;
export const usedRingSize = (size: number): number => 6 + VIRTQ_USED_ELEM_SIZE * size;
