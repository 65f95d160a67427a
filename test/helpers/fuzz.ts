// Settings shared by the property and fuzz tests (test/fuzz/). `npm test` runs them briefly;
// `npm run fuzz` runs the same properties many times longer (TSVMM_FUZZ_SCALE, default 1 here).
// fast-check prints the seed and the shrunk counterexample of a failure: keep every one found as
// a plain regression case next to the property it broke.

import fc from 'fast-check';

const SCALE = Math.max(1, Number(process.env.TSVMM_FUZZ_SCALE) || 1);

/** fast-check parameters for a property: `numRuns` scaled for a long run, no time-based limits. */
export function runs(numRuns: number): fc.Parameters<unknown> {
  return { numRuns: numRuns * SCALE };
}

/** A longer timeout for a test whose run count was scaled. */
export function timeout(ms: number): number {
  return ms * SCALE;
}

/** A 32-bit value a hostile guest might write: edges, sign bits, small numbers and anything. */
export const wild32 = fc.oneof(
  fc.constantFrom(0, 1, 2, 3, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x7fffffff, 0x80000000, 0x80000001, 0xfffffffe, 0xffffffff),
  fc.integer({ min: 0, max: 16 }),
  fc.nat({ max: 0xffffffff }),
);

/** Access sizes the CPU can make: what KVM hands a port-I/O or MMIO exit. */
export const accessSize = fc.constantFrom(1, 2, 4, 8);

/** Bytes of `size` holding `value` little-endian (the high bytes of an 8-byte access repeat it). */
export function bytesOf(value: number, size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = (value >>> (8 * (i % 4))) & 0xff;
  return out;
}
