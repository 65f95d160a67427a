import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseElf, KernelImageError } from '../../src/boot/elf.js';
import { buildElf } from '../helpers/elf-builder.js';

const code = Uint8Array.of(0xf4);

describe('ELF kernel parsing', () => {
  it('finds PT_LOAD segments and the PVH entry note', () => {
    const elf = parseElf(buildElf({ entry: 0x100000, pvhEntry: 0x100010, segments: [{ paddr: 0x100000, data: code, memSize: 0x2000 }] }));
    expect(elf.pvhEntry).toBe(0x100010);
    expect(elf.segments).toEqual([{ paddr: 0x100000, fileOffset: expect.any(Number), fileSize: 1, memSize: 0x2000 }]);
  });

  it('reads the guests this project builds', () => {
    expect(parseElf(readFileSync('guests/build/hello.elf')).pvhEntry).toBeGreaterThanOrEqual(0x100000);
    const plain = parseElf(readFileSync('guests/build/elf64.elf'));
    expect(plain.pvhEntry).toBeUndefined();
    expect(plain.entry).toBeGreaterThanOrEqual(0x100000);
  });

  const good = buildElf({ entry: 0x100000, segments: [{ paddr: 0x100000, data: code }] });
  const corrupt = (mutate: (v: DataView) => void) => {
    const copy = good.slice();
    mutate(new DataView(copy.buffer));
    return copy;
  };

  it.each([
    ['empty file', new Uint8Array(0), /not an ELF file/],
    ['text file', Buffer.from('#!/bin/sh\necho hello, this is not a kernel\n'.repeat(3)), /not an ELF file/],
    ['32-bit ELF', buildElf({ entry: 0, elfClass: 1, segments: [{ paddr: 0x100000, data: code }] }), /not a 64-bit/],
    ['ARM ELF', buildElf({ entry: 0, machine: 183, segments: [{ paddr: 0x100000, data: code }] }), /not x86-64/],
    ['truncated program headers', good.subarray(0, 80), /past the end/],
    ['segment past end of file', corrupt((v) => v.setBigUint64(64 + 32, 1n << 20n, true)), /segment 0 extends past the end/],
    ['file size above memory size', corrupt((v) => v.setBigUint64(64 + 40, 0n, true)), /more file bytes/],
    ['no program headers', corrupt((v) => v.setUint16(56, 0, true)), /no program headers/],
    ['absurd offsets', corrupt((v) => v.setBigUint64(32, 1n << 62n, true)), /out of range/],
  ])('refuses %s with a clear message', (_name, image, message) => {
    expect(() => parseElf(image, 'kernel k')).toThrow(KernelImageError);
    expect(() => parseElf(image, 'kernel k')).toThrow(message);
  });
  // Random and mutated images: test/fuzz/parsers.test.ts (fast-check).
});
