import { describe, expect, it } from 'vitest';
import { ByteRing } from '../../src/vmm/byte-ring.js';

describe('ByteRing', () => {
  it('passes bytes in order across the wrap-around', () => {
    const ring = ByteRing.create(8);
    const out: number[] = [];
    for (let round = 0; round < 10; round++) {
      expect(ring.writeSome(Uint8Array.of(round, round + 1, round + 2, round + 3, round + 4))).toBe(5);
      out.push(...ring.drain());
    }
    expect(out.length).toBe(50);
    expect(out.slice(45)).toEqual([9, 10, 11, 12, 13]);
  });

  it('accepts only what fits and reports how much', () => {
    const ring = ByteRing.create(4);
    expect(ring.writeSome(Uint8Array.of(1, 2, 3, 4, 5, 6))).toBe(4);
    expect(ring.available).toBe(4);
    const into = new Uint8Array(2);
    expect(ring.read(into)).toBe(2);
    expect([...into]).toEqual([1, 2]);
    expect([...ring.drain()]).toEqual([3, 4]);
  });

  it('is shared by another view of the same buffer (as a worker sees it)', async () => {
    const ring = ByteRing.create(16);
    const other = ByteRing.attach(ring.buffer);
    const waiting = other.waitForData();
    ring.write(0x41);
    await waiting;
    expect([...other.drain()]).toEqual([0x41]);
  });

  it('refuses a capacity that is not a power of two', () => {
    expect(() => ByteRing.create(100)).toThrow(RangeError);
  });
});
