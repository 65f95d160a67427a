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

  it('reads a 32-bit ELF with a PVH note, and refuses one without', () => {
    const elf32 = parseElf(readFileSync('guests/build/test32.elf'));
    const elf64 = parseElf(readFileSync('guests/build/test.elf'));
    expect(elf32.pvhEntry).toBe(elf64.pvhEntry);
    expect(elf32.segments.map((s) => [s.paddr, s.fileSize, s.memSize])).toEqual(elf64.segments.map((s) => [s.paddr, s.fileSize, s.memSize]));
    const noNote = readFileSync('guests/build/test32.elf');
    // Rename the note "Xen" to "Xem": a 32-bit ELF with no PVH note left.
    noNote[noNote.indexOf(Buffer.from('Xen\0'))! + 2] = 0x6d;
    expect(() => parseElf(noNote, 'kernel k')).toThrow('kernel k: a 32-bit ELF without a PVH entry note');
  });

  it('reads the guests this project builds', () => {
    expect(parseElf(readFileSync('guests/build/hello.elf')).pvhEntry).toBeGreaterThanOrEqual(0x100000);
    const plain = parseElf(readFileSync('guests/build/elf64.elf'));
    expect(plain.pvhEntry).toBeUndefined();
    expect(plain.entry).toBeGreaterThanOrEqual(0x100000);
  });

  const good = buildElf({ entry: 0x100000, segments: [{ paddr: 0x100000, data: code }] });
  const corruptPvh = (mutate: (v: DataView) => void) => {
    const copy = buildElf({ entry: 0x100000, pvhEntry: 0x100000, segments: [{ paddr: 0x100000, data: code }] });
    mutate(new DataView(copy.buffer));
    return copy;
  };
  const corrupt = (mutate: (v: DataView) => void) => {
    const copy = good.slice();
    mutate(new DataView(copy.buffer));
    return copy;
  };

  it.each([
    ['empty file', new Uint8Array(0), /not an ELF file/],
    ['text file', Buffer.from('#!/bin/sh\necho hello, this is not a kernel\n'.repeat(3)), /not an ELF file/],
    ['ARM ELF', buildElf({ entry: 0, machine: 183, segments: [{ paddr: 0x100000, data: code }] }), /not x86-64/],
    // The PVH note (after two program headers) with a 2-byte entry, or sizes past its segment.
    ['a PVH note holding 2 bytes', corruptPvh((v) => v.setUint32(176 + 4, 2, true)), /note segment 0: its PVH entry note holds 2 bytes/],
    ['a note larger than its segment', corruptPvh((v) => v.setUint32(176, 4096, true)), /note segment 0: the note at file offset 0xb0 .* does not fit its segment/],
    ['a PVH entry above 4 GiB', corruptPvh((v) => { v.setUint32(176 + 4, 8, true); v.setUint32(176 + 8 + 4 + 4, 0, true); }), /does not fit|above 4 GiB/],
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
