// The split virtqueue (virtio 1.x §2.7), seen from the device. The rings live in guest memory and
// the driver writes them from another CPU while we read, so nothing in them is trusted: a chain is
// walked in a bounded number of steps, every index and length is checked, and every buffer must lie
// inside guest memory before a device sees it. A malformed chain is the guest's fault and comes back
// as a VirtQueueError; it never makes us touch memory outside the guest.

import { TsvmmError } from '../../errors.js';
import { bool, object, u16, type StateReader } from '../persist.js';
import type { GuestMemory } from '../../memory/guest-memory.js';
import {
  availRingSize, descTableSize, usedRingSize,
  VIRTQ_AVAIL_ALIGN, VIRTQ_AVAIL_F_NO_INTERRUPT, VIRTQ_DESC_ALIGN, VIRTQ_DESC_F_INDIRECT,
  VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE, VIRTQ_DESC_SIZE, VIRTQ_MAX_SIZE, VIRTQ_USED_ALIGN,
  VIRTQ_USED_F_NO_NOTIFY,
} from './constants.js';

export class VirtQueueError extends TsvmmError {
  /**
   * Set when pop() consumed a malformed chain: the device should hand the head back with
   * push(head, 0) so the driver gets its descriptors back, and the queue goes on. Undefined when
   * nothing was consumed: the queue is then broken (VirtQueue.broken) or the call itself was wrong.
   */
  readonly head: number | undefined;

  constructor(message: string, head?: number) {
    super('VIRTQUEUE', message);
    this.name = 'VirtQueueError';
    this.head = head;
  }
}

/** Where the driver put the queue and what was negotiated for it. */
export interface QueueConfig {
  size: number;
  descTable: number;
  availRing: number;
  usedRing: number;
  /** VIRTIO_F_EVENT_IDX was negotiated. */
  eventIdx: boolean;
  /** VIRTIO_F_INDIRECT_DESC was negotiated. */
  indirect: boolean;
}

/** A guest-physical buffer, already checked to lie inside guest memory. */
export interface DescriptorSegment {
  address: number;
  length: number;
}

export interface DescriptorChain {
  /** Index of the head descriptor: what push() takes back. */
  head: number;
  /** Device-readable buffers, in order. */
  readable: DescriptorSegment[];
  /** Device-writable buffers, in order; in the chain they all came after the readable ones. */
  writable: DescriptorSegment[];
  readableLength: number;
  writableLength: number;
}

/** What a snapshot keeps of a queue; the rings themselves are in guest memory. */
export interface QueueState {
  /** Free-running 16-bit index of the next available-ring entry to pop. */
  nextAvail: number;
  /** Free-running 16-bit index of the next used-ring entry to fill (equals used->idx). */
  nextUsed: number;
  /** nextUsed when needsInterrupt() last ran: the event-index test needs where the last batch began. */
  signalledUsed: number;
  notificationsEnabled: boolean;
}

/** Checks a QueueState read from a snapshot (VirtQueue.restore then checks it against the queue). */
export const readQueueState: StateReader<QueueState> = object({
  nextAvail: u16, nextUsed: u16, signalledUsed: u16, notificationsEnabled: bool,
});

/** The most readSegments() copies in one call; a chain can describe up to 4 GiB. */
export const MAX_READ_LENGTH = 16 * 1024 * 1024;

const U32_MAX = 0xffff_ffff;

// Typed-array views use the host's byte order and the rings are little-endian; tsvmm runs on x86-64
// only, but a wrong answer here would be silent, so check once.
const LITTLE_ENDIAN = new Uint8Array(Uint16Array.of(1).buffer)[0] === 1;

const hex = (n: number) => `0x${n.toString(16)}`;
const hex64 = (hi: number, lo: number) => (hi === 0 ? hex(lo) : `0x${hi.toString(16)}${lo.toString(16).padStart(8, '0')}`);

/**
 * The event-index test of virtio_ring.h: whether `eventIdx` lies in [oldIdx, newIdx), all modulo
 * 2^16, i.e. whether the other side asked to be told once the index passed `eventIdx`.
 */
export function vringNeedEvent(eventIdx: number, newIdx: number, oldIdx: number): boolean {
  return ((newIdx - eventIdx - 1) & 0xffff) < ((newIdx - oldIdx) & 0xffff);
}

export class VirtQueue {
  readonly config: Readonly<QueueConfig>;
  readonly #memory: GuestMemory;
  readonly #size: number;
  readonly #desc: DataView;
  /** flags, idx, ring[size], used_event. */
  readonly #avail: Uint16Array;
  /** flags, idx, then (id, len) pairs as u16 halves, then avail_event at 2 + 4 * size. */
  readonly #used16: Uint16Array;
  /** flags|idx, then id, len for each element. */
  readonly #used32: Uint32Array;
  #nextAvail = 0;
  #nextUsed = 0;
  #signalledUsed = 0;
  #notify = true;
  #broken: string | undefined;

  /** Checks the layout; the views made here stay valid because guest memory never moves. */
  constructor(memory: GuestMemory, config: QueueConfig) {
    const { size, descTable, availRing, usedRing, eventIdx, indirect } = config;
    if (!Number.isInteger(size) || size < 1 || size > VIRTQ_MAX_SIZE || (size & (size - 1)) !== 0) {
      throw new VirtQueueError(`queue size ${String(size)} is not a power of 2 between 1 and ${VIRTQ_MAX_SIZE}`);
    }
    if (typeof eventIdx !== 'boolean' || typeof indirect !== 'boolean') {
      throw new VirtQueueError('queue config: eventIdx and indirect must be booleans');
    }
    if (!LITTLE_ENDIAN) throw new VirtQueueError('virtqueues need a little-endian host');
    this.config = Object.freeze({ size, descTable, availRing, usedRing, eventIdx, indirect });
    this.#memory = memory;
    this.#size = size;
    const desc = ringView(memory, 'descriptor table', descTable, descTableSize(size), VIRTQ_DESC_ALIGN);
    const avail = ringView(memory, 'available ring', availRing, availRingSize(size), VIRTQ_AVAIL_ALIGN);
    const used = ringView(memory, 'used ring', usedRing, usedRingSize(size), VIRTQ_USED_ALIGN);
    this.#desc = new DataView(desc.buffer, desc.byteOffset, desc.byteLength);
    this.#avail = new Uint16Array(avail.buffer, avail.byteOffset, avail.byteLength / 2);
    this.#used16 = new Uint16Array(used.buffer, used.byteOffset, used.byteLength / 2);
    this.#used32 = new Uint32Array(used.buffer, used.byteOffset, 1 + 2 * size);
  }

  /** Rebuilds a queue from a snapshot; the state is checked as untrusted input. */
  static restore(memory: GuestMemory, config: QueueConfig, state: QueueState): VirtQueue {
    const queue = new VirtQueue(memory, config);
    if (typeof state !== 'object' || state === null) throw new VirtQueueError('queue state is not an object');
    const { nextAvail, nextUsed, signalledUsed, notificationsEnabled } = state as Partial<QueueState>;
    const index = (name: string, value: unknown): number => {
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 0xffff) {
        throw new VirtQueueError(`queue state: ${name} ${String(value)} is not a 16-bit index`);
      }
      return value;
    };
    const avail = index('nextAvail', nextAvail);
    const used = index('nextUsed', nextUsed);
    const signalled = index('signalledUsed', signalledUsed);
    if (typeof notificationsEnabled !== 'boolean') {
      throw new VirtQueueError('queue state: notificationsEnabled is not a boolean');
    }
    // The used ring can only ever be behind the available ring by the chains the device holds,
    // and pop() never lets those exceed the queue size.
    if (((avail - used) & 0xffff) > config.size) {
      throw new VirtQueueError(`queue state: ${(avail - used) & 0xffff} chains in flight on a queue of ${config.size}`);
    }
    queue.#nextAvail = avail;
    queue.#nextUsed = used;
    queue.#signalledUsed = signalled;
    queue.#notify = notificationsEnabled;
    return queue;
  }

  save(): QueueState {
    return {
      nextAvail: this.#nextAvail,
      nextUsed: this.#nextUsed,
      signalledUsed: this.#signalledUsed,
      notificationsEnabled: this.#notify,
    };
  }

  /** Why the queue stopped, once the driver corrupted the available ring; the device needs a reset. */
  get broken(): string | undefined {
    return this.#broken;
  }

  /** Chains popped (including malformed ones) and not yet pushed back. */
  get inFlight(): number {
    return (this.#nextAvail - this.#nextUsed) & 0xffff;
  }

  /**
   * The next available chain, or undefined when the driver has offered none. Throws VirtQueueError
   * with `head` set for a malformed chain (consumed; hand it back and go on), and without `head`
   * when the available ring is corrupt (the queue is broken from then on) or when the device
   * already holds `size` chains (nothing consumed; push some back first).
   */
  pop(): DescriptorChain | undefined {
    if (this.#broken !== undefined) throw new VirtQueueError(this.#broken);
    const size = this.#size;
    // Acquire: the driver wrote the ring entry and descriptors before it raised idx (§2.7.13).
    const availIdx = Atomics.load(this.#avail, 1);
    const pending = (availIdx - this.#nextAvail) & 0xffff;
    if (pending === 0) return undefined;
    if (pending > size) {
      return this.#break(`available index moved from ${this.#nextAvail} to ${availIdx}, more than the queue size ${size}`);
    }
    // A driver has only `size` descriptors to make heads of; more in flight means it offered a
    // head the device still holds, and a device that kept popping would hold chains without bound.
    if (this.inFlight >= size) {
      throw new VirtQueueError(`the device already holds ${size} chains: the driver offered a descriptor still in use`);
    }
    const head = this.#avail[2 + (this.#nextAvail & (size - 1))]!;
    if (head >= size) {
      // Not consumed: a head that is no descriptor cannot be handed back, so the ring is unusable.
      return this.#break(`available ring entry ${this.#nextAvail} names descriptor ${head}, beyond the queue size ${size}`);
    }
    this.#nextAvail = (this.#nextAvail + 1) & 0xffff;
    // With event index the driver notifies when it adds the entry we name here: keep it at the
    // next one while notifications are wanted, so the driver does not stop notifying.
    if (this.config.eventIdx && this.#notify) {
      Atomics.store(this.#used16, 2 + 4 * size, this.#nextAvail);
      this.#usedRingWritten();
    }
    return this.#walk(head);
  }

  /** Returns a chain to the driver with the number of bytes written into its writable buffers. */
  push(head: number, writtenLength: number): void {
    const size = this.#size;
    if (!Number.isInteger(head) || head < 0 || head >= size) {
      throw new VirtQueueError(`cannot return descriptor ${String(head)}: the queue has ${size}`);
    }
    if (!Number.isInteger(writtenLength) || writtenLength < 0 || writtenLength > U32_MAX) {
      throw new VirtQueueError(`written length ${String(writtenLength)} does not fit in 32 bits`);
    }
    if (this.inFlight === 0) throw new VirtQueueError(`cannot return descriptor ${head}: no chain is in flight`);
    const slot = this.#nextUsed & (size - 1);
    this.#used32[1 + 2 * slot] = head;
    this.#used32[2 + 2 * slot] = writtenLength;
    this.#nextUsed = (this.#nextUsed + 1) & 0xffff;
    // Release: the element must be visible before the index that hands it over.
    Atomics.store(this.#used16, 1, this.#nextUsed);
    this.#usedRingWritten();
  }

  /**
   * Whether to interrupt the driver for what was pushed since the last call. Counts the pushes as
   * signalled either way, so call it once per batch.
   */
  needsInterrupt(): boolean {
    const used = this.#nextUsed;
    const old = this.#signalledUsed;
    this.#signalledUsed = used;
    if (used === old) return false;
    // The Atomics.store of used->idx in push() and these loads are sequentially consistent: the
    // full barrier between publishing idx and reading the driver's wish that §2.7.10 asks for.
    if (this.config.eventIdx) return vringNeedEvent(Atomics.load(this.#avail, 2 + this.#size), used, old);
    return (Atomics.load(this.#avail, 0) & VIRTQ_AVAIL_F_NO_INTERRUPT) === 0;
  }

  /**
   * Asks the driver to notify (or not) when it adds buffers. A driver may have added a chain just
   * before it saw notifications come back on, so call pop() again after enabling them.
   */
  setNotificationsEnabled(on: boolean): void {
    this.#notify = on;
    if (this.config.eventIdx) {
      // There is no "off" with event index: leaving avail_event behind the driver's index stops
      // notifications once it has passed it (at worst one more comes).
      if (on) Atomics.store(this.#used16, 2 + 4 * this.#size, this.#nextAvail);
    } else {
      Atomics.store(this.#used16, 0, on ? 0 : VIRTQ_USED_F_NO_NOTIFY);
    }
    this.#usedRingWritten();
  }

  /** The used ring is written through views kept since the start, which GuestMemory does not see: tell it, for diff snapshots. */
  #usedRingWritten(): void {
    this.#memory.markDirty(this.config.usedRing, usedRingSize(this.#size));
  }

  /**
   * Copies `length` readable bytes of a chain, starting `offset` bytes in. Throws VirtQueueError for a
   * range beyond the readable bytes or longer than MAX_READ_LENGTH (read a large chain in windows).
   */
  readSegments(chain: DescriptorChain, offset = 0, length = chain.readableLength - offset): Uint8Array {
    if (!Number.isInteger(offset) || !Number.isInteger(length) || offset < 0 || length < 0
      || offset + length > chain.readableLength) {
      throw new VirtQueueError(`cannot read ${String(length)} bytes at ${String(offset)} of a chain with ${chain.readableLength} readable bytes`);
    }
    if (length > MAX_READ_LENGTH) {
      throw new VirtQueueError(`refusing to copy ${length} bytes of a chain at once (limit ${MAX_READ_LENGTH})`);
    }
    const out = new Uint8Array(length);
    let skip = offset;
    let done = 0;
    for (const { address, length: segment } of chain.readable) {
      if (done === length) break;
      if (skip >= segment) {
        skip -= segment;
        continue;
      }
      const n = Math.min(segment - skip, length - done);
      out.set(this.#memory.readView(address + skip, n), done);
      done += n;
      skip = 0;
    }
    return out;
  }

  /**
   * Writes `data` into a chain's writable buffers, starting `offset` bytes into them. Stops at the
   * end of the chain and returns how many bytes fitted.
   */
  writeSegments(chain: DescriptorChain, data: Uint8Array, offset = 0): number {
    if (!Number.isInteger(offset) || offset < 0) throw new VirtQueueError(`invalid offset ${String(offset)} into a chain`);
    let skip = offset;
    let done = 0;
    for (const { address, length: segment } of chain.writable) {
      if (done === data.length) break;
      if (skip >= segment) {
        skip -= segment;
        continue;
      }
      const n = Math.min(segment - skip, data.length - done);
      this.#memory.slice(address + skip, n).set(data.subarray(done, done + n));
      done += n;
      skip = 0;
    }
    return done;
  }

  #break(reason: string): never {
    this.#broken = reason;
    throw new VirtQueueError(reason);
  }

  /**
   * Follows a chain from `head` (< size). Each descriptor is read once into locals and only those
   * are used, so a driver rewriting the table meanwhile cannot slip an unchecked value past us.
   */
  #walk(head: number): DescriptorChain {
    const size = this.#size;
    const readable: DescriptorSegment[] = [];
    const writable: DescriptorSegment[] = [];
    let readableLength = 0;
    let writableLength = 0;
    let table = this.#desc;
    let base = 0;
    let tableSize = size;
    // A chain without loops visits each descriptor of a table at most once, so a step budget of
    // the table's size ends every loop without remembering where we have been.
    let steps = size;
    let inIndirect = false;
    let index = head;
    const fail = (what: string) => new VirtQueueError(
      `chain at descriptor ${head}: ${inIndirect ? `indirect descriptor ${index}` : `descriptor ${index}`} ${what}`, head);

    for (;;) {
      if (steps === 0) throw fail(`makes the chain longer than its table of ${tableSize}: a loop`);
      steps--;
      const at = base + index * VIRTQ_DESC_SIZE;
      const low = table.getUint32(at, true);
      const high = table.getUint32(at + 4, true);
      const length = table.getUint32(at + 8, true);
      const flags = table.getUint16(at + 12, true);
      const next = table.getUint16(at + 14, true);
      // Past 2^53 this is inexact, but never below 2^53, and GuestMemory refuses any address that
      // is not a safe integer: such a buffer is refused, never aliased to a low address.
      const address = high * 0x1_0000_0000 + low;

      if (flags & VIRTQ_DESC_F_INDIRECT) {
        if (!this.config.indirect) throw fail('is indirect, but VIRTIO_F_INDIRECT_DESC was not negotiated');
        if (inIndirect) throw fail('is indirect inside an indirect table');
        // The spec forbids INDIRECT with NEXT; some devices follow NEXT after the table, others
        // ignore it. Refusing is the only reading that cannot surprise a correct driver.
        if (flags & VIRTQ_DESC_F_NEXT) throw fail('has both INDIRECT and NEXT');
        if (length === 0 || length % VIRTQ_DESC_SIZE !== 0) {
          throw fail(`points at an indirect table of ${length} bytes, not a whole number of descriptors`);
        }
        // "A driver MUST NOT create a descriptor chain longer than the Queue Size of the device."
        if (length / VIRTQ_DESC_SIZE > size) {
          throw fail(`points at an indirect table of ${length / VIRTQ_DESC_SIZE} descriptors, more than the queue size ${size}`);
        }
        const region = this.#memory.regionOf(address, length);
        if (!region) throw fail(`points at an indirect table ${hex64(high, low)}+${length} outside guest memory`);
        // The table needs no alignment (the spec asks for none), so it is read through the region's
        // DataView rather than a typed array; the WRITE flag of this descriptor means nothing.
        table = region.view;
        base = address - region.start;
        tableSize = steps = length / VIRTQ_DESC_SIZE;
        inIndirect = true;
        index = 0;
        continue;
      }

      if (!this.#memory.contains(address, length)) throw fail(`has a buffer ${hex64(high, low)}+${length} outside guest memory`);
      if (readable.length + writable.length === size) throw fail(`makes the chain longer than the queue size ${size}`);
      if (flags & VIRTQ_DESC_F_WRITE) {
        writable.push({ address, length });
        writableLength += length;
      } else {
        if (writable.length > 0) throw fail('is device-readable but follows a device-writable one');
        readable.push({ address, length });
        readableLength += length;
      }
      if (readableLength + writableLength > U32_MAX) throw fail('makes the chain longer than 2^32-1 bytes');
      if (!(flags & VIRTQ_DESC_F_NEXT)) return { head, readable, writable, readableLength, writableLength };
      if (next >= tableSize) throw fail(`names next descriptor ${next}, beyond its table of ${tableSize}`);
      index = next;
    }
  }
}

/** A view of one ring, after checking that it is aligned and wholly inside one region of guest memory. */
function ringView(memory: GuestMemory, name: string, address: number, length: number, align: number): Uint8Array {
  if (!Number.isSafeInteger(address) || address < 0) throw new VirtQueueError(`${name} address ${String(address)} is invalid`);
  if (address % align !== 0) throw new VirtQueueError(`${name} at ${hex(address)} is not ${align}-byte aligned`);
  if (!memory.contains(address, length)) {
    throw new VirtQueueError(`${name} at ${hex(address)}+${length} is not inside guest memory`);
  }
  // Read-only as far as GuestMemory knows: the queue marks what it writes into the used ring itself.
  const view = memory.readView(address, length);
  // Typed-array views need the host offset aligned too; mmap'd regions are, test buffers may not be.
  if (view.byteOffset % align !== 0) {
    throw new VirtQueueError(`${name} at ${hex(address)} is not ${align}-byte aligned in host memory`);
  }
  return view;
}
