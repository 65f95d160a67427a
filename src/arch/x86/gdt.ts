// Segment descriptors for the boot CPU. The same 64-bit descriptor goes into the guest's GDT
// and, decoded, into the hidden part of the segment registers (kvm_segment), so the two agree.

import type { KvmSegment } from '../../kvm/structs.js';

/** Packs flags (the 12 bits around the limit's high nibble), base and limit into a descriptor. */
export function gdtEntry(flags: number, base: number, limit: number): bigint {
  const b = BigInt(base >>> 0);
  const l = BigInt(limit >>> 0);
  const f = BigInt(flags & 0xf0ff);
  return ((b & 0xff000000n) << 32n)
    | ((f & 0xf0ffn) << 40n)
    | ((l & 0x000f0000n) << 32n)
    | ((b & 0x00ffffffn) << 16n)
    | (l & 0x0000ffffn);
}

/** The hidden segment register state that a descriptor at `index` would load. */
export function segmentFromGdt(entry: bigint, index: number): KvmSegment {
  const bits = (shift: bigint, mask: bigint) => Number((entry >> shift) & mask);
  const base = bits(16n, 0xffffffn) | (bits(56n, 0xffn) << 24);
  const limitRaw = bits(0n, 0xffffn) | (bits(48n, 0xfn) << 16);
  const g = bits(55n, 1n);
  return {
    base: BigInt(base >>> 0),
    // KVM wants the limit in bytes, as the CPU computes it after granularity scaling.
    limit: g ? ((limitRaw << 12) | 0xfff) >>> 0 : limitRaw,
    selector: index * 8,
    type: bits(40n, 0xfn),
    present: bits(47n, 1n),
    dpl: bits(45n, 3n),
    db: bits(54n, 1n),
    s: bits(44n, 1n),
    l: bits(53n, 1n),
    g,
    avl: bits(52n, 1n),
    unusable: bits(47n, 1n) ? 0 : 1,
    padding: 0,
  };
}

/** Descriptor flag words (access byte in bits 0-7, G/DB/L/AVL in bits 12-15). */
export const CODE64 = 0xa09b; // present, DPL 0, code, read/exec, accessed, L=1, G=1
export const CODE32 = 0xc09b; // present, DPL 0, code, read/exec, accessed, D=1, G=1
export const DATA = 0xc093; //   present, DPL 0, data, read/write, accessed, B=1, G=1
export const TSS64 = 0x808b; //  present, busy 64-bit TSS, G=1

/** The boot GDT: null, code, data, TSS. Selector = index * 8. */
export function bootGdt(codeFlags: number): bigint[] {
  return [
    0n,
    gdtEntry(codeFlags, 0, 0xfffff),
    gdtEntry(DATA, 0, 0xfffff),
    gdtEntry(TSS64, 0, 0xfffff),
  ];
}
