// KVM's coalesced I/O ring. Writes to a range registered with KVM_REGISTER_COALESCED_MMIO do not
// exit to the VMM: KVM queues them (address, length, data) in a page of the vCPU mapping that all
// vCPUs of the VM share, and returns to the guest at once. The VMM replays them, oldest first,
// before it handles its next exit, so a device sees every access in the guest's order. A write
// that finds the ring full exits as usual (after the queued ones are replayed, it comes last).
// tsvmm queues the UART's transmit register this way: a console line costs one exit per byte
// (the status read before each byte) instead of two. See README, "Booting Linux".

import { kvm_coalesced_mmio, kvm_coalesced_mmio_ring } from './structs.js';

const PAGE_SIZE = 4096;
const ENTRY = kvm_coalesced_mmio.fields;
const ENTRY_SIZE = kvm_coalesced_mmio.size;
/** KVM_COALESCED_MMIO_MAX: as many entries as fit in the page after the header. */
const CAPACITY = Math.floor((PAGE_SIZE - kvm_coalesced_mmio_ring.size) / ENTRY_SIZE);

export class CoalescedRing {
  readonly #u32: Uint32Array;
  readonly #bytes: Uint8Array;
  readonly #first: number;
  readonly #last: number;

  /** `mapping`: a vCPU's kvm_run mapping; `pageOffset`: what KVM_CAP_COALESCED_MMIO answered. */
  constructor(mapping: ArrayBuffer, pageOffset: number) {
    this.#bytes = new Uint8Array(mapping, pageOffset * PAGE_SIZE, PAGE_SIZE);
    this.#u32 = new Uint32Array(mapping, pageOffset * PAGE_SIZE, PAGE_SIZE / 4);
    this.#first = kvm_coalesced_mmio_ring.fields.first[0] / 4;
    this.#last = kvm_coalesced_mmio_ring.fields.last[0] / 4;
  }

  /** Whether writes wait to be replayed. Two loads: cheap enough for every exit. */
  get pending(): boolean {
    return this.#u32[this.#first] !== this.#u32[this.#last];
  }

  /**
   * Where the ring stands while writes wait (the same number until they are replayed or more are
   * queued), or -1 when it is empty.
   */
  get position(): number {
    const first = this.#u32[this.#first]!;
    const last = this.#u32[this.#last]!;
    return first === last ? -1 : first * 65536 + last;
  }

  /** Hands every queued write to `replay`, oldest first, and frees its slot. */
  drain(replay: (isPio: boolean, address: number, data: Uint8Array) => void): void {
    const u32 = this.#u32;
    let first = u32[this.#first]!;
    const last = u32[this.#last]!;
    while (first !== last && first < CAPACITY) {
      const at = kvm_coalesced_mmio_ring.size + first * ENTRY_SIZE;
      const address = u32[(at + ENTRY.phys_addr[0]) / 4]! + u32[(at + ENTRY.phys_addr[0]) / 4 + 1]! * 2 ** 32;
      const length = Math.min(u32[(at + ENTRY.len[0]) / 4]!, 8);
      const data = this.#bytes.subarray(at + ENTRY.data[0], at + ENTRY.data[0] + length);
      replay(u32[(at + ENTRY.pio[0]) / 4] !== 0, address, data);
      first = (first + 1) % CAPACITY;
      u32[this.#first] = first;
    }
  }
}
