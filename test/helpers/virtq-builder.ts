// A mock virtio driver: lays out a split virtqueue in plain-buffer guest memory, builds descriptor
// chains (direct and indirect) the way a driver would, and also writes raw, deliberately broken
// descriptors and ring entries, so tests can play both a correct and a hostile guest.

import { GuestMemory } from '../../src/memory/guest-memory.js';
import {
  availRingSize, descTableSize, usedRingSize, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT,
  VIRTQ_DESC_F_WRITE, VIRTQ_DESC_SIZE,
} from '../../src/devices/virtio/constants.js';
import { VirtQueue, type QueueConfig, type QueueState } from '../../src/devices/virtio/queue.js';

export interface RawDescriptor {
  /** A number, or a bigint for addresses beyond 2^53. */
  addr: number | bigint;
  len: number;
  flags: number;
  next: number;
}

export interface DriverOptions {
  size?: number;
  eventIdx?: boolean;
  indirect?: boolean;
  /** Bytes of the first region, which holds the rings and the buffer heap. */
  memorySize?: number;
  /** Further regions, e.g. to put a gap or a second region after the first. */
  extraRegions?: { start: number; size: number }[];
}

/** One buffer of a chain: data for the device to read, or a length for it to write into. */
export type BufferSpec = { read: Uint8Array | number } | { write: number };

const RING_BASE = 0x1000;
const align = (n: number, a: number) => Math.ceil(n / a) * a;

export class MockDriver {
  readonly memory: GuestMemory;
  readonly config: QueueConfig;
  /** The first region's bytes; guest address = index here. */
  readonly ram: Uint8Array;
  readonly #view: DataView;
  readonly #heapStart: number;
  #heap: number;
  #nextDescriptor = 0;
  #availIdx = 0;

  constructor(options: DriverOptions = {}) {
    const size = options.size ?? 16;
    const descTable = RING_BASE;
    const availRing = descTable + descTableSize(size);
    const usedRing = align(availRing + availRingSize(size), 4);
    this.#heapStart = align(usedRing + usedRingSize(size), 0x1000);
    const memorySize = options.memorySize ?? align(this.#heapStart + 0x10000, 0x1000);
    this.ram = new Uint8Array(memorySize);
    this.#view = new DataView(this.ram.buffer);
    this.memory = GuestMemory.fromBuffers([
      { start: 0, bytes: this.ram },
      ...(options.extraRegions ?? []).map(({ start, size: bytes }) => ({ start, bytes: new Uint8Array(bytes) })),
    ]);
    this.#heap = this.#heapStart;
    this.config = {
      size, descTable, availRing, usedRing,
      eventIdx: options.eventIdx ?? false, indirect: options.indirect ?? false,
    };
  }

  get size(): number {
    return this.config.size;
  }

  get heapStart(): number {
    return this.#heapStart;
  }

  queue(): VirtQueue {
    return new VirtQueue(this.memory, this.config);
  }

  restore(state: QueueState): VirtQueue {
    return VirtQueue.restore(this.memory, this.config, state);
  }

  /** Reserves bytes of the first region for buffers or indirect tables. */
  alloc(length: number, alignment = 16): number {
    const address = align(this.#heap, alignment);
    if (address + length > this.ram.length) throw new Error(`mock driver heap exhausted (${length} bytes)`);
    this.#heap = address + length;
    return address;
  }

  /** Forgets every buffer handed out, for tests that go round many times. */
  resetHeap(): void {
    this.#heap = this.#heapStart;
  }

  /** Writes one descriptor at `index` of the queue's table, or of the table at `table`. */
  writeDescriptor(index: number, d: RawDescriptor, table = this.config.descTable): void {
    const at = table + index * VIRTQ_DESC_SIZE;
    this.#view.setBigUint64(at, BigInt.asUintN(64, BigInt(d.addr)), true);
    this.#view.setUint32(at + 8, d.len >>> 0, true);
    this.#view.setUint16(at + 12, d.flags & 0xffff, true);
    this.#view.setUint16(at + 14, d.next & 0xffff, true);
  }

  readDescriptor(index: number, table = this.config.descTable): RawDescriptor {
    const at = table + index * VIRTQ_DESC_SIZE;
    return {
      addr: this.#view.getBigUint64(at, true),
      len: this.#view.getUint32(at + 8, true),
      flags: this.#view.getUint16(at + 12, true),
      next: this.#view.getUint16(at + 14, true),
    };
  }

  /**
   * Lays out a chain and returns its head, without offering it. With `indirect`, the buffers go in
   * an indirect table that one descriptor of the queue's table points at, after `direct` of them
   * have been placed as ordinary descriptors.
   */
  addChain(buffers: BufferSpec[], options: { indirect?: boolean; direct?: number } = {}): number {
    const descriptors = buffers.map((b): RawDescriptor => {
      if ('write' in b) return { addr: this.alloc(b.write, 1), len: b.write, flags: VIRTQ_DESC_F_WRITE, next: 0 };
      const data = typeof b.read === 'number' ? new Uint8Array(b.read) : b.read;
      const addr = this.alloc(data.length, 1);
      this.ram.set(data, addr);
      return { addr, len: data.length, flags: 0, next: 0 };
    });
    if (!options.indirect) return this.#place(descriptors);
    const direct = options.direct ?? 0;
    const inTable = descriptors.slice(direct);
    const table = this.alloc(inTable.length * VIRTQ_DESC_SIZE);
    inTable.forEach((d, i) => {
      const last = i === inTable.length - 1;
      this.writeDescriptor(i, { ...d, flags: d.flags | (last ? 0 : VIRTQ_DESC_F_NEXT), next: last ? 0 : i + 1 }, table);
    });
    return this.#place([
      ...descriptors.slice(0, direct),
      { addr: table, len: inTable.length * VIRTQ_DESC_SIZE, flags: VIRTQ_DESC_F_INDIRECT, next: 0 },
    ]);
  }

  /** Puts heads in the available ring and then, as a driver must, raises idx once for all of them. */
  offer(...heads: number[]): void {
    for (const head of heads) {
      this.setAvailEntry(this.#availIdx, head);
      this.#availIdx = (this.#availIdx + 1) & 0xffff;
    }
    this.setAvailIdx(this.#availIdx);
  }

  /** Moves the driver's own idx counter (to start near the 16-bit wrap, say). */
  startAt(availIdx: number): void {
    this.#availIdx = availIdx & 0xffff;
    this.setAvailIdx(this.#availIdx);
  }

  setAvailEntry(slot: number, head: number): void {
    this.#view.setUint16(this.config.availRing + 4 + 2 * (slot & (this.size - 1)), head & 0xffff, true);
  }

  setAvailIdx(idx: number): void {
    this.#view.setUint16(this.config.availRing + 2, idx & 0xffff, true);
  }

  get availIdx(): number {
    return this.#view.getUint16(this.config.availRing + 2, true);
  }

  setAvailFlags(flags: number): void {
    this.#view.setUint16(this.config.availRing, flags, true);
  }

  setUsedEvent(idx: number): void {
    this.#view.setUint16(this.config.availRing + 4 + 2 * this.size, idx & 0xffff, true);
  }

  get usedFlags(): number {
    return this.#view.getUint16(this.config.usedRing, true);
  }

  get usedIdx(): number {
    return this.#view.getUint16(this.config.usedRing + 2, true);
  }

  get availEvent(): number {
    return this.#view.getUint16(this.config.usedRing + 4 + 8 * this.size, true);
  }

  /** The used element in ring slot `slot` (taken modulo the size). */
  usedElem(slot: number): { id: number; len: number } {
    const at = this.config.usedRing + 4 + 8 * (slot & (this.size - 1));
    return { id: this.#view.getUint32(at, true), len: this.#view.getUint32(at + 4, true) };
  }

  #place(descriptors: RawDescriptor[]): number {
    if (descriptors.length > this.size) throw new Error('mock driver: chain longer than the table');
    const indexes = descriptors.map(() => {
      const index = this.#nextDescriptor;
      this.#nextDescriptor = (this.#nextDescriptor + 1) % this.size;
      return index;
    });
    descriptors.forEach((d, i) => {
      const next = indexes[i + 1];
      this.writeDescriptor(indexes[i]!, next === undefined ? d : { ...d, flags: d.flags | VIRTQ_DESC_F_NEXT, next });
    });
    return indexes[0]!;
  }
}

/** A small seeded PRNG (mulberry32): the same seed gives the same guest, so a failure can be replayed. */
export class Prng {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** A uniform 32-bit unsigned integer. */
  u32(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** An integer in [0, n). */
  below(n: number): number {
    return Math.floor((this.u32() / 0x1_0000_0000) * n);
  }

  chance(p: number): boolean {
    return this.u32() / 0x1_0000_0000 < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.below(items.length)]!;
  }
}
