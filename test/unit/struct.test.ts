import { describe, expect, it } from 'vitest';
import { array, bytes, struct, u16, u32, u64, u8 } from '../../src/kvm/struct.js';
import { kvm_regs, kvm_sregs } from '../../src/kvm/structs.js';

describe('struct codec', () => {
  const demo = struct('demo', 24, {
    a: [0, u8], b: [2, u16], c: [4, u32], d: [8, u64], e: [16, array(u16, 2)], f: [20, bytes(4)],
  } as const);

  it('round-trips every field kind, little-endian', () => {
    const value = { a: 0x12, b: 0x3456, c: 0x789abcde, d: 0x0123456789abcdefn, e: [1, 0xffff], f: Uint8Array.of(9, 8, 7, 6) };
    const encoded = demo.encode(value);
    expect([...encoded.subarray(0, 8)]).toEqual([0x12, 0, 0x56, 0x34, 0xde, 0xbc, 0x9a, 0x78]);
    expect(demo.decode(encoded)).toEqual(value);
  });

  it('wraps 64-bit values instead of throwing on negative bigints', () => {
    const encoded = demo.encode({ ...demo.zero(), d: -1n });
    expect(demo.decode(encoded).d).toBe(0xffffffffffffffffn);
  });

  it('refuses a field that does not fit and input that is too short', () => {
    expect(() => struct('bad', 4, { x: [2, u32] })).toThrow(/bad.x/);
    expect(() => demo.decode(new Uint8Array(10))).toThrow(/demo needs 24 bytes/);
    expect(() => demo.encode({ ...demo.zero(), e: [1] })).toThrow(/expected 2 elements/);
  });

  it('decodes nested structures (kvm_sregs segments)', () => {
    const sregs = kvm_sregs.zero();
    sregs.cs = { ...sregs.cs, selector: 0x10, l: 1, base: 0x1000n };
    const back = kvm_sregs.decode(kvm_sregs.encode(sregs));
    expect(back.cs.selector).toBe(0x10);
    expect(back.cs.l).toBe(1);
    expect(back.cs.base).toBe(0x1000n);
    expect(kvm_regs.zero().rip).toBe(0n);
  });
});
