// CRC-32 (IEEE 802.3, reflected polynomial 0xedb88320: the one zlib, gzip and PNG use).
// node:zlib's crc32 is native and many times faster, but it first shipped in Node 20.15 and 22.2
// while tsvmm supports every Node 20; so it is used when present and a table-driven version
// (slicing by 8) stands in otherwise. Both take the CRC so far as the second argument, as zlib does.

import * as zlib from 'node:zlib';

const POLY = 0xedb88320;

// Eight tables for slicing by 8: TABLES[k][b] is the CRC register after byte b followed by k zero bytes.
const TABLES: Uint32Array[] = (() => {
  const tables = Array.from({ length: 8 }, () => new Uint32Array(256));
  const t0 = tables[0]!;
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ POLY : c >>> 1;
    t0[n] = c >>> 0;
  }
  for (let k = 1; k < 8; k++) {
    const previous = tables[k - 1]!;
    const table = tables[k]!;
    for (let n = 0; n < 256; n++) table[n] = (previous[n]! >>> 8) ^ t0[previous[n]! & 0xff]!;
  }
  return tables;
})();

/** The portable implementation; exported so the tests can hold it against zlib's. */
export function crc32Portable(data: Uint8Array, previous = 0): number {
  const [t0, t1, t2, t3, t4, t5, t6, t7] = TABLES as [Uint32Array, Uint32Array, Uint32Array, Uint32Array,
    Uint32Array, Uint32Array, Uint32Array, Uint32Array];
  let c = ~previous >>> 0;
  let i = 0;
  const end8 = data.length - (data.length % 8);
  for (; i < end8; i += 8) {
    const lo = (c ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24))) >>> 0;
    c = t7[lo & 0xff]! ^ t6[(lo >>> 8) & 0xff]! ^ t5[(lo >>> 16) & 0xff]! ^ t4[lo >>> 24]!
      ^ t3[data[i + 4]!]! ^ t2[data[i + 5]!]! ^ t1[data[i + 6]!]! ^ t0[data[i + 7]!]!;
  }
  for (; i < data.length; i++) c = (c >>> 8) ^ t0[(c ^ data[i]!) & 0xff]!;
  return ~c >>> 0;
}

const native = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;

export const crc32: (data: Uint8Array, previous?: number) => number = typeof native === 'function'
  ? (data, previous = 0) => native(data, previous) >>> 0
  : crc32Portable;

// Feeding zero bytes through the CRC register is linear over GF(2), so "n zero bytes" is a 32×32 bit
// matrix, built by squaring (as zlib's crc32_combine does). The writer skips all-zero pages, and this
// keeps their CRC from costing a pass over bytes it never writes.
type Matrix = Uint32Array; // 32 columns: column i is the image of the register value 1 << i

function times(matrix: Matrix, vector: number): number {
  let out = 0;
  for (let i = 0; vector !== 0; i++, vector >>>= 1) if (vector & 1) out ^= matrix[i]!;
  return out >>> 0;
}

function square(matrix: Matrix): Matrix {
  const out = new Uint32Array(32);
  for (let i = 0; i < 32; i++) out[i] = times(matrix, matrix[i]!);
  return out;
}

const ONE_ZERO_BYTE: Matrix = (() => {
  const m = new Uint32Array(32);
  for (let i = 0; i < 32; i++) {
    const c = (1 << i) >>> 0;
    m[i] = ((c >>> 8) ^ TABLES[0]![c & 0xff]!) >>> 0;
  }
  return m;
})();

// POWERS[k] is the operator for 2^k zero bytes; 53 of them cover every safe-integer length.
const POWERS: Matrix[] = [ONE_ZERO_BYTE];
for (let k = 1; k < 53; k++) POWERS.push(square(POWERS[k - 1]!));

/** crc32(new Uint8Array(length), previous), without the bytes: O(log length). */
export function crc32Zeros(length: number, previous = 0): number {
  if (!Number.isSafeInteger(length) || length < 0) throw new RangeError(`invalid length ${length}`);
  let c = ~previous >>> 0;
  for (let k = 0; length > 0; k++, length = Math.floor(length / 2)) {
    if (length % 2 === 1) c = times(POWERS[k]!, c);
  }
  return ~c >>> 0;
}
