// Guest-physical memory: host mappings that KVM uses as memory slots, and bounds-checked access
// for the VMM. Every address a guest hands us goes through here, and a range that is not wholly
// inside one region is refused: the VMM never reads or writes host memory on a guest's behalf.
//
// What the VMM writes here is also marked, page by page, in a bitmap every thread's view of a
// region shares: KVM's dirty log sees only what vCPUs write, and a diff snapshot needs the pages
// the device thread filled (disk reads, received bytes, used rings) too. See vmm/snapshot.ts.

import {
  addon, errnoName, MADV_HUGEPAGE, MAP_ANONYMOUS, MAP_FIXED, MAP_NORESERVE, MAP_PRIVATE, PROT_READ, PROT_WRITE,
} from '../kvm/addon.js';
import type { VmFd } from '../kvm/kvm.js';
import type { KvmUserspaceMemoryRegion } from '../kvm/structs.js';
import { TsvmmError } from '../errors.js';

export class GuestMemoryError extends TsvmmError {
  constructor(message: string) {
    super('GUEST_MEMORY', message);
    this.name = 'GuestMemoryError';
  }
}

/** Where a region sits in guest-physical space, and the host mapping behind it. */
export interface GuestRegionDescriptor {
  readonly start: number;
  readonly size: number;
  readonly hostAddress: bigint;
  /**
   * Bytes reachable from hostAddress: `size`, or more when the region is one piece of a larger
   * mapping (see MAX_PIECE) and the mapping goes on into the pieces after it.
   */
  readonly window: number;
  /** The pages of the region the VMM wrote, one bit each, shared by every thread (see dirtyBitmapBytes). */
  readonly dirty: SharedArrayBuffer;
}

export interface GuestRegion extends GuestRegionDescriptor {
  /** `window` bytes from the region's start: a range that starts in this region may run on into the next pieces. */
  readonly bytes: Uint8Array;
  readonly view: DataView;
  /** `dirty` as words: page p is bit p % 32 of word p / 32, the layout of KVM's dirty log on x86-64. */
  readonly dirtyWords: Int32Array;
}

const PAGE = 4096;
const GiB = 1024 * 1024 * 1024;
/**
 * No ArrayBuffer may exceed 4 GiB, so guest RAM beyond that is cut into pieces of MAX_PIECE
 * bytes, each a region of its own (and a KVM memory slot), over one host mapping. Each piece's
 * view reaches MAX_PIECE further into the mapping (its `window`): any range up to MAX_PIECE long
 * that starts in a piece is inside that piece's view, so guest buffers may straddle pieces.
 */
export const MAX_PIECE = 2 * GiB;
const MAX_WINDOW = 2 * MAX_PIECE;

/**
 * Cuts a mapping of `size` bytes at guest address `start` into regions: one if it fits a view,
 * else MAX_PIECE-sized pieces, each with a window into the ones after it.
 */
function pieces(start: number, size: number, hostAddress: bigint): { start: number; size: number; hostAddress: bigint; window: number }[] {
  if (size <= MAX_WINDOW) return [{ start, size, hostAddress, window: size }];
  const out = [];
  for (let offset = 0; offset < size; offset += MAX_PIECE) {
    out.push({
      start: start + offset, size: Math.min(MAX_PIECE, size - offset),
      hostAddress: hostAddress + BigInt(offset), window: Math.min(MAX_WINDOW, size - offset),
    });
  }
  return out;
}

const HUGE_PAGE = 2 * 1024 * 1024;

/**
 * Fresh anonymous memory for guest RAM, `offset` bytes past a 2 MiB boundary as the guest-physical
 * address it backs is (0 for every run of RAM tsvmm lays out). KVM maps guest memory with 2 MiB
 * pages in its EPT/NPT only where the host and the guest address agree modulo 2 MiB, and
 * transparent huge pages back memory only on 2 MiB boundaries. A plain mmap is merely
 * page-aligned: most runs' guests got 4 KiB mappings, a fault each. Nested under TCG that was
 * ~25 000 more exits to L1's KVM in a Linux boot, and its early steps that fill memory (struct
 * pages, per-CPU areas) 2-5x slower than under QEMU, which aligns its RAM too. Maps 2 MiB more
 * and gives back the ends; the address, or -errno.
 */
function mapAligned(size: number, offset: number): bigint | number {
  const native = addon();
  const address = native.mmap(size + HUGE_PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (typeof address === 'number') return address;
  const huge = BigInt(HUGE_PAGE);
  const start = (address + huge - 1n - BigInt(offset)) / huge * huge + BigInt(offset);
  const head = Number(start - address);
  if (head > 0) native.munmap(address, head);
  if (HUGE_PAGE - head > 0) native.munmap(start + BigInt(size), HUGE_PAGE - head);
  return start;
}

/**
 * Asks for transparent huge pages behind guest RAM from 2 MiB up (guest-physical), for hosts
 * whose THP setting is `madvise` (Ubuntu's default, and these machines'): there, memory nobody
 * advised gets 4 KiB pages only, and so do the guest's NPT/EPT mappings of it. QEMU advises all
 * of its RAM. The first 2 MiB are left out: they hold what the VMM writes for a boot (boot GDT,
 * zero page or PVH start info, identity page tables, command line, ACPI tables) and a small kernel
 * loaded at 1 MiB such as the test guests', which a huge page would make 2 MiB of resident memory
 * for every VM, however small (+1.8 MiB for the tiny guest's run here). A relocatable Linux is
 * loaded at its pref_address, 16 MiB for x86-64 distribution kernels, and lives above. A host
 * without THP refuses the advice; nothing depends on it.
 */
function adviseHugePages(address: bigint, start: number, size: number): void {
  const skip = Math.max(0, HUGE_PAGE - start);
  if (size > skip) addon().madvise(address + BigInt(skip), size - skip, MADV_HUGEPAGE);
}

/** KVM's memory slot `slot` for a region. */
function memorySlot(r: GuestRegionDescriptor, slot: number, flags: number): KvmUserspaceMemoryRegion {
  return { slot, flags, guest_phys_addr: BigInt(r.start), memory_size: BigInt(r.size), userspace_addr: r.hostAddress };
}

/** Joins regions that touch in guest-physical space: each run becomes one host mapping. */
function runs(layout: readonly { start: number; size: number }[]): { start: number; size: number }[] {
  const out: { start: number; size: number }[] = [];
  for (const { start, size } of layout) {
    const last = out[out.length - 1];
    if (last && last.start + last.size === start) last.size += size;
    else out.push({ start, size });
  }
  return out;
}

/** Part of a file to appear at a guest-physical address (see GuestMemory.mapFiles). */
export interface MemoryExtent {
  fd: number;
  fileOffset: number;
  guestAddress: number;
  length: number;
}
const hex = (n: number) => `0x${n.toString(16)}`;

/** Bytes of a dirty-page bitmap for `size` bytes of memory: one bit a page, in whole 64-bit words, as KVM_GET_DIRTY_LOG fills it. */
export function dirtyBitmapBytes(size: number): number {
  return Math.ceil(size / PAGE / 64) * 8;
}

/** Checks a layout: page-aligned, non-empty, sorted, not overlapping, addressable as JS numbers. */
export function validateLayout(layout: readonly { start: number; size: number }[]): void {
  if (layout.length === 0) throw new GuestMemoryError('guest memory has no regions');
  let end = 0;
  for (const { start, size } of layout) {
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(size) || start < 0 || size <= 0) {
      throw new GuestMemoryError(`invalid region ${hex(start)}+${hex(size)}`);
    }
    if (start % PAGE !== 0 || size % PAGE !== 0) {
      throw new GuestMemoryError(`region ${hex(start)}+${hex(size)} is not page-aligned`);
    }
    if (start < end) throw new GuestMemoryError(`region at ${hex(start)} overlaps or is out of order`);
    if (!Number.isSafeInteger(start + size)) throw new GuestMemoryError(`region at ${hex(start)} is too large`);
    end = start + size;
  }
}

export class GuestMemory {
  readonly regions: readonly GuestRegion[];
  /** The host mappings this object made and unmaps on close (none if it wraps another's). */
  readonly #mappings: readonly { address: bigint; size: number }[];
  #closed = false;

  private constructor(regions: GuestRegion[], mappings: readonly { address: bigint; size: number }[] = []) {
    this.regions = regions;
    this.#mappings = mappings;
  }

  /** Maps fresh anonymous memory for each region. Pages are allocated when the guest touches them. */
  static allocate(layout: readonly { start: number; size: number }[]): GuestMemory {
    validateLayout(layout);
    const native = addon();
    const regions: GuestRegion[] = [];
    const mappings: { address: bigint; size: number }[] = [];
    for (const { start, size } of runs(layout)) {
      const address = mapAligned(size, start % HUGE_PAGE);
      if (typeof address === 'number') {
        for (const m of mappings) native.munmap(m.address, m.size);
        throw new GuestMemoryError(`cannot map ${size} bytes of guest memory: ${errnoName(-address)}`);
      }
      mappings.push({ address, size });
      adviseHugePages(address, start, size);
      for (const piece of pieces(start, size, address)) regions.push(wrap({ ...piece, dirty: newBitmap(piece.size) }));
    }
    return new GuestMemory(regions, mappings);
  }

  /**
   * Guest RAM backed by files, for restoring a snapshot: each region starts as zero-filled
   * memory and the given extents of files are mapped over it, privately. Pages come from the
   * file only when the guest touches them, and the guest's writes never reach the file, so one
   * snapshot can be restored many times at once. Extents later in the list cover earlier ones
   * (a diff snapshot over its parent). Offsets and lengths must be page-aligned.
   */
  static mapFiles(layout: readonly { start: number; size: number }[], extents: readonly MemoryExtent[]): GuestMemory {
    const memory = GuestMemory.allocate(layout);
    const native = addon();
    try {
      for (const e of extents) {
        // An extent may cover several pieces of one mapping: it needs only to stay inside the mapping.
        const region = memory.#regionAt(e.guestAddress);
        const inside = region !== undefined && memory.#mappingEnd(region) >= e.guestAddress + e.length;
        if (!region || !inside || e.length <= 0 || [e.guestAddress, e.length, e.fileOffset].some((n) => n % PAGE !== 0)) {
          throw new GuestMemoryError(`snapshot memory extent ${hex(e.guestAddress)}+${hex(e.length)} at file offset ${hex(e.fileOffset)} does not fit guest memory`);
        }
        const at = region.hostAddress + BigInt(e.guestAddress - region.start);
        const rc = native.mmap(e.length, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED | MAP_NORESERVE, e.fd, e.fileOffset, at);
        if (typeof rc === 'number') throw new GuestMemoryError(`cannot map snapshot memory at ${hex(e.guestAddress)}: ${errnoName(-rc)}`);
      }
    } catch (error) {
      memory.close();
      throw error;
    }
    return memory;
  }

  /** Wraps mappings made by another thread of this process (a vCPU worker does this). */
  static attach(descriptors: readonly GuestRegionDescriptor[]): GuestMemory {
    validateLayout(descriptors);
    return new GuestMemory(descriptors.map(wrap));
  }

  /** Wraps plain buffers: for unit tests of code that only reads and writes guest memory. */
  static fromBuffers(layout: readonly { start: number; bytes: Uint8Array }[]): GuestMemory {
    return new GuestMemory(layout.map(({ start, bytes }) => {
      const dirty = newBitmap(bytes.length);
      return {
        start, size: bytes.length, hostAddress: 0n, window: bytes.length, bytes, dirty, dirtyWords: new Int32Array(dirty),
        view: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength),
      };
    }));
  }

  get descriptors(): GuestRegionDescriptor[] {
    return this.regions.map(({ start, size, hostAddress, window, dirty }) => ({ start, size, hostAddress, window, dirty }));
  }

  /** Total bytes of guest RAM. */
  get size(): number {
    return this.regions.reduce((sum, r) => sum + r.size, 0);
  }

  /**
   * Registers every region as a KVM memory slot, numbered from 0. Registering again with other
   * flags (KVM_MEM_LOG_DIRTY_PAGES) changes only the flags; the guest's memory stays as it is.
   */
  registerWith(vm: VmFd, flags = 0): void {
    this.regions.forEach((r, slot) => vm.setUserMemoryRegion(memorySlot(r, slot, flags)));
  }

  /**
   * registerWith, each slot on a thread of its own (VmFd.setUserMemoryRegionInBackground): returns
   * the join, which throws the first slot's error, if any. No vCPU may run before it returns.
   */
  registerInBackground(vm: VmFd): () => void {
    const joins = this.regions.map((r, slot) => vm.setUserMemoryRegionInBackground(memorySlot(r, slot, 0)));
    return () => { for (const join of joins) join(); };
  }

  /**
   * Records that the VMM wrote [address, address+length): every writing method here calls it, and
   * so must code that writes guest memory through a view it keeps (a virtqueue's used ring).
   */
  markDirty(address: number, length: number): void {
    if (length > 0) this.#mark(this.#region(address, length), address, length);
  }

  #mark(r: GuestRegion, address: number, length: number): void {
    // A range that runs on past this piece's end marks pages of the pieces after it.
    for (let i = this.regions.indexOf(r), at = address, end = address + length; at < end; i++) {
      const piece = this.regions[i]!;
      const to = Math.min(end, piece.start + piece.size);
      const first = Math.floor((at - piece.start) / PAGE);
      const last = Math.floor((to - 1 - piece.start) / PAGE);
      for (let page = first; page <= last; page++) Atomics.or(piece.dirtyWords, page >>> 5, 1 << (page & 31));
      at = to;
    }
  }

  /**
   * The pages the VMM wrote since the last call, per region (bitmaps laid out like KVM's dirty
   * log, dirtyBitmapBytes long), and starts over. Call it while nothing writes (a paused VM).
   */
  takeDirty(): Uint8Array[] {
    return this.regions.map((r) => {
      const out = new Int32Array(r.dirtyWords.length);
      for (let i = 0; i < out.length; i++) if (r.dirtyWords[i] !== 0) out[i] = Atomics.exchange(r.dirtyWords, i, 0);
      return new Uint8Array(out.buffer);
    });
  }

  /** Marks the pages set in `bitmaps` (one per region, as takeDirty returns them): gives back what a failed diff took. */
  markDirtyPages(bitmaps: readonly Uint8Array[]): void {
    this.regions.forEach((r, i) => {
      const bitmap = bitmaps[i];
      if (!bitmap) return;
      const words = new Int32Array(bitmap.buffer, bitmap.byteOffset, Math.min(bitmap.byteLength >> 2, r.dirtyWords.length));
      words.forEach((w, j) => { if (w !== 0) Atomics.or(r.dirtyWords, j, w); });
    });
  }

  /**
   * The region where [address, address+length) starts, if the whole range is inside its view
   * (which may reach into the pieces after it); undefined if the range leaves guest RAM.
   */
  regionOf(address: number, length: number): GuestRegion | undefined {
    if (!Number.isSafeInteger(address) || !Number.isSafeInteger(length) || address < 0 || length < 0) return undefined;
    const r = this.#regionAt(address);
    return r && address + length <= r.start + r.window ? r : undefined;
  }

  #regionAt(address: number): GuestRegion | undefined {
    return this.regions.find((r) => address >= r.start && address < r.start + r.size);
  }

  /** Where the host mapping `r` is part of ends, in guest-physical space. */
  #mappingEnd(r: GuestRegion): number {
    let i = this.regions.indexOf(r);
    while (this.regions[i + 1] && this.regions[i + 1]!.hostAddress === this.regions[i]!.hostAddress + BigInt(this.regions[i]!.size)
      && this.regions[i + 1]!.start === this.regions[i]!.start + this.regions[i]!.size) i++;
    return this.regions[i]!.start + this.regions[i]!.size;
  }

  contains(address: number, length = 1): boolean {
    return this.regionOf(address, length) !== undefined;
  }

  /**
   * A live view of guest memory (no copy) for the caller to write into: its pages count as
   * written (markDirty). Throws if the range is not inside one region.
   */
  slice(address: number, length: number): Uint8Array {
    const r = this.#region(address, length);
    if (length > 0) this.#mark(r, address, length);
    const offset = address - r.start;
    return r.bytes.subarray(offset, offset + length);
  }

  /** A live view of guest memory for reading only: nothing written through it reaches a diff snapshot. */
  readView(address: number, length: number): Uint8Array {
    const r = this.#region(address, length);
    const offset = address - r.start;
    return r.bytes.subarray(offset, offset + length);
  }

  read(address: number, length: number): Uint8Array {
    return this.readView(address, length).slice();
  }

  write(address: number, data: Uint8Array): void {
    this.slice(address, data.length).set(data);
  }

  fill(address: number, length: number, value = 0): void {
    this.slice(address, length).fill(value);
  }

  readU8(address: number): number {
    const r = this.#region(address, 1);
    return r.view.getUint8(address - r.start);
  }

  readU16(address: number): number {
    const r = this.#region(address, 2);
    return r.view.getUint16(address - r.start, true);
  }

  readU32(address: number): number {
    const r = this.#region(address, 4);
    return r.view.getUint32(address - r.start, true);
  }

  readU64(address: number): bigint {
    const r = this.#region(address, 8);
    return r.view.getBigUint64(address - r.start, true);
  }

  writeU8(address: number, value: number): void {
    const r = this.#region(address, 1);
    r.view.setUint8(address - r.start, value);
    this.#mark(r, address, 1);
  }

  writeU16(address: number, value: number): void {
    const r = this.#region(address, 2);
    r.view.setUint16(address - r.start, value, true);
    this.#mark(r, address, 2);
  }

  writeU32(address: number, value: number): void {
    const r = this.#region(address, 4);
    r.view.setUint32(address - r.start, value, true);
    this.#mark(r, address, 4);
  }

  writeU64(address: number, value: bigint): void {
    const r = this.#region(address, 8);
    r.view.setBigUint64(address - r.start, BigInt.asUintN(64, value), true);
    this.#mark(r, address, 8);
  }

  /** A NUL-terminated string of at most `max` bytes. */
  readCString(address: number, max: number): string {
    const out: number[] = [];
    for (let i = 0; i < max; i++) {
      const byte = this.readU8(address + i);
      if (byte === 0) break;
      out.push(byte);
    }
    return Buffer.from(out).toString('latin1');
  }

  /** Unmaps the regions if this object mapped them. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#mappings.length === 0) return;
    const native = addon();
    for (const m of this.#mappings) native.munmap(m.address, m.size);
  }

  #region(address: number, length: number): GuestRegion {
    if (this.#closed) throw new GuestMemoryError('guest memory is closed');
    const r = this.regionOf(address, length);
    if (!r) {
      throw new GuestMemoryError(`guest address ${Number.isSafeInteger(address) ? hex(address) : String(address)}+${length} is outside guest memory`);
    }
    return r;
  }
}

function wrap(d: GuestRegionDescriptor): GuestRegion {
  const buffer = addon().arrayBuffer(d.hostAddress, d.window);
  return { ...d, bytes: new Uint8Array(buffer), view: new DataView(buffer), dirtyWords: new Int32Array(d.dirty) };
}

function newBitmap(size: number): SharedArrayBuffer {
  return new SharedArrayBuffer(dirtyBitmapBytes(size));
}
