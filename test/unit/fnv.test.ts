// FNV-1a, against the published test vectors (and a BigInt reference for the 64-bit halves'
// arithmetic): the runtime directory's key and container ids are made from it, in every process.

import { describe, expect, it } from 'vitest';
import { fnv1a32, fnv1a64Hex } from '../../src/meta/fnv.js';

const reference64 = (text: string) => {
  let h = 0xcbf29ce484222325n;
  for (const byte of Buffer.from(text)) h = BigInt.asUintN(64, (h ^ BigInt(byte)) * 0x100000001b3n);
  return h.toString(16).padStart(16, '0');
};

describe('FNV-1a', () => {
  it('gives the published values', () => {
    expect(fnv1a32(Buffer.from(''))).toBe(0x811c9dc5);
    expect(fnv1a32(Buffer.from('a'))).toBe(0xe40c292c);
    expect(fnv1a32(Buffer.from('foobar'))).toBe(0xbf9cf968);
    expect(fnv1a64Hex('')).toBe('cbf29ce484222325');
    expect(fnv1a64Hex('a')).toBe('af63dc4c8601ec8c');
    expect(fnv1a64Hex('foobar')).toBe('85944171f73967e8');
  });

  it('computes 64 bits in 32-bit halves exactly', () => {
    const texts = ['/run/tsvmm', '/tmp/tsvmm-0', 'é☃\u{1f600}', '\xff'.repeat(300)];
    for (let i = 0; i < 500; i++) texts.push(Array.from({ length: i % 40 }, (_, j) => String.fromCharCode((i * 7919 + j * 104729) % 0x2fff)).join(''));
    for (const text of texts) expect(fnv1a64Hex(text), text).toBe(reference64(text));
  });
});
