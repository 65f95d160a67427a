import * as zlib from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { crc32, crc32Portable, crc32Zeros } from '../../src/snapshot/crc32.js';
import { countPages, pageRuns } from '../../src/snapshot/format.js';
import fc from 'fast-check';
import { runs } from '../helpers/fuzz.js';

const nativeCrc = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;

describe('CRC-32', () => {
  it('gives the standard check values', () => {
    const check = new TextEncoder().encode('123456789');
    expect(crc32Portable(check)).toBe(0xcbf43926);
    expect(crc32(check)).toBe(0xcbf43926);
    expect(crc32Portable(new Uint8Array(0))).toBe(0);
    expect(crc32Portable(new Uint8Array(32))).toBe(0x190a55ad);
  });

  it('agrees with zlib, whole and in pieces, at every length and alignment', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 300 }), fc.nat({ max: 7 }), fc.nat(), (bytes, align, cutAt) => {
      // A view at every alignment of its buffer: the word-at-a-time path must not care.
      const buffer = new Uint8Array(bytes.length + 8);
      buffer.set(bytes, align);
      const data = buffer.subarray(align, align + bytes.length);
      const whole = crc32Portable(data);
      if (nativeCrc) expect(whole).toBe(nativeCrc(data) >>> 0);
      const cut = cutAt % (data.length + 1);
      expect(crc32Portable(data.subarray(cut), crc32Portable(data.subarray(0, cut)))).toBe(whole);
      expect(crc32(data.subarray(cut), crc32(data.subarray(0, cut)))).toBe(whole);
    }), runs(1000));
  });

  it('extends a CRC over zero bytes without reading them', () => {
    fc.assert(fc.property(
      fc.oneof(fc.constantFrom(0, 1, 2, 3, 7, 8, 4095, 4096, 4097, 65536, 1 << 20, 3 * (1 << 20) + 5), fc.nat({ max: 70000 })),
      fc.nat({ max: 0xffffffff }),
      (length, previous) => {
        expect(crc32Zeros(length, previous)).toBe(crc32Portable(new Uint8Array(length), previous));
      },
    ), runs(100));
    expect(crc32Zeros(2 ** 40, 5)).toBe(crc32Zeros(2 ** 39, crc32Zeros(2 ** 39, 5)));
  });
});

describe('page bitmaps', () => {
  it('finds runs and counts pages, LSB first', () => {
    const bitmap = Uint8Array.of(0b0000_0110, 0xff, 0b1000_0001, 0);
    expect([...pageRuns(bitmap, 32)]).toEqual([[1, 2], [8, 9], [23, 1]]);
    expect(countPages(bitmap, 32)).toBe(12);
    expect([...pageRuns(Uint8Array.of(0xff, 0xff), 16)]).toEqual([[0, 16]]);
    expect([...pageRuns(Uint8Array.of(0xff, 0x07), 11)]).toEqual([[0, 11]]);
  });

  it('refuses bits past the last page', () => {
    expect(countPages(Uint8Array.of(0xff, 0x07), 11)).toBe(11);
    expect(countPages(Uint8Array.of(0xff, 0x08), 11)).toBeUndefined();
    expect(countPages(Uint8Array.of(0xff, 0, 0, 1), 11)).toBeUndefined();
    expect(countPages(Uint8Array.of(0xff, 0, 0, 0), 11)).toBe(8);
  });
});
