import { describe, expect, it } from 'vitest';
import { CoalescedRing } from '../../src/kvm/coalesced-ring.js';

// The ring as KVM lays it out (virt/kvm/coalesced_mmio.c): u32 first, u32 last, then 170 entries
// of { u64 phys_addr; u32 len; u32 pio; u8 data[8] }; KVM writes at `last`, the VMM reads at `first`.
const PAGE = 4096;
const CAPACITY = 170;

function kvmSide(mapping: ArrayBuffer, page: number) {
  const view = new DataView(mapping, page * PAGE, PAGE);
  return {
    push(address: number, data: number[], pio = true) {
      const last = view.getUint32(4, true);
      const at = 8 + last * 24;
      view.setBigUint64(at, BigInt(address), true);
      view.setUint32(at + 8, data.length, true);
      view.setUint32(at + 12, pio ? 1 : 0, true);
      data.forEach((b, i) => view.setUint8(at + 16 + i, b));
      view.setUint32(4, (last + 1) % CAPACITY, true);
    },
    get first() { return view.getUint32(0, true); },
  };
}

describe('CoalescedRing', () => {
  it('replays queued writes oldest first, across the wrap-around, and frees their slots', () => {
    const mapping = new ArrayBuffer(3 * PAGE);
    const kvm = kvmSide(mapping, 2);
    const ring = new CoalescedRing(mapping, 2);
    const seen: string[] = [];
    const replay = (isPio: boolean, address: number, data: Uint8Array) => seen.push(`${isPio ? 'pio' : 'mmio'} 0x${address.toString(16)} ${[...data].join(',')}`);
    expect(ring.pending).toBe(false);
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < 100; i++) kvm.push(0x3f8, [(round * 100 + i) & 0xff]);
      expect(ring.pending).toBe(true);
      ring.drain(replay);
      expect(ring.pending).toBe(false);
    }
    expect(seen.length).toBe(300);
    expect(seen.slice(165, 175)).toEqual(Array.from({ length: 10 }, (_, i) => `pio 0x3f8 ${(165 + i) & 0xff}`));
    expect(kvm.first).toBe(300 % CAPACITY);
    kvm.push(0x1_0000_1000, [1, 2, 3, 4], false);
    ring.drain(replay);
    expect(seen.at(-1)).toBe('mmio 0x100001000 1,2,3,4');
  });
});
