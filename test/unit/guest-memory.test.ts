import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { getHeapStatistics } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { GuestMemory, GuestMemoryError, validateLayout } from '../../src/memory/guest-memory.js';
import { ramLayout, GiB, MiB, memoryMap, E820_RAM, E820_RESERVED } from '../../src/arch/x86/layout.js';

const memory = () => GuestMemory.fromBuffers([
  { start: 0, bytes: new Uint8Array(0x2000) },
  { start: 0x10000, bytes: new Uint8Array(0x1000) },
]);

describe('GuestMemory', () => {
  it('reads and writes little-endian values inside a region', () => {
    const m = memory();
    m.writeU64(0x10ff8, 0x1122334455667788n);
    expect(m.readU32(0x10ff8)).toBe(0x55667788);
    expect(m.readU64(0x10ff8)).toBe(0x1122334455667788n);
    m.write(0x10, Buffer.from('abc\0'));
    expect(m.readCString(0x10, 100)).toBe('abc');
  });

  it('refuses any access that leaves guest memory, even by one byte', () => {
    const m = memory();
    expect(() => m.readU64(0x1ffc)).toThrow(GuestMemoryError);
    expect(() => m.readU8(0x2000)).toThrow(/0x2000\+1 is outside guest memory/);
    expect(() => m.write(0x10fff, Uint8Array.of(1, 2))).toThrow(GuestMemoryError);
    expect(() => m.slice(-1, 1)).toThrow(GuestMemoryError);
    expect(() => m.slice(Number.NaN, 1)).toThrow(GuestMemoryError);
    expect(() => m.slice(2 ** 60, 1)).toThrow(GuestMemoryError);
    // A range that spans two regions is refused too: no view may cross a gap.
    expect(m.contains(0x1ff0, 0x20)).toBe(false);
  });

  it('validates layouts: aligned, non-empty, sorted, disjoint', () => {
    expect(() => validateLayout([])).toThrow(/no regions/);
    expect(() => validateLayout([{ start: 0, size: 0 }])).toThrow(/invalid/);
    expect(() => validateLayout([{ start: 0, size: 100 }])).toThrow(/page-aligned/);
    expect(() => validateLayout([{ start: 0x2000, size: 0x1000 }, { start: 0x1000, size: 0x2000 }])).toThrow(/overlaps/);
    expect(() => validateLayout([{ start: 0, size: 0x1000 }, { start: 0x1000, size: 0x1000 }])).not.toThrow();
  });

  it('leaves the 32-bit PCI hole out of guest RAM', () => {
    expect(ramLayout(256 * MiB)).toEqual([{ start: 0, size: 256 * MiB }]);
    expect(ramLayout(5 * GiB)).toEqual([{ start: 0, size: 3 * GiB }, { start: 4 * GiB, size: 2 * GiB }]);
    expect(memoryMap(ramLayout(5 * GiB))).toEqual([
      { addr: 0, size: 0x9fc00, type: E820_RAM },
      { addr: 0x9fc00, size: 0x60400, type: E820_RESERVED },
      { addr: MiB, size: 3 * GiB - MiB, type: E820_RAM },
      { addr: 4 * GiB, size: 2 * GiB, type: E820_RAM },
    ]);
  });
});

// Real mappings (MAP_NORESERVE: only the pages touched cost memory), larger than any ArrayBuffer.
describe('GuestMemory above 4 GiB', () => {
  it('places each region on the host as it lies in guest-physical space modulo 2 MiB (huge pages for KVM and THP)', () => {
    for (let i = 0; i < 4; i++) {
      const memory = GuestMemory.allocate(ramLayout(5 * GiB + 12 * MiB));
      try {
        for (const r of memory.descriptors) expect(Number(r.hostAddress % BigInt(2 * MiB))).toBe(r.start % (2 * MiB));
      } finally {
        memory.close();
      }
    }
  });

  it.skipIf(!existsSync('/sys/kernel/mm/transparent_hugepage/enabled'))('asks for transparent huge pages behind guest RAM from 2 MiB up, not for the first 2 MiB', () => {
    const memory = GuestMemory.allocate(ramLayout(64 * MiB));
    try {
      const base = memory.descriptors[0]!.hostAddress;
      // The VmFlags of the mappings that hold the guest's first byte and its byte at 2 MiB ("hg": MADV_HUGEPAGE).
      const flagsAt = (address: bigint) => {
        const smaps = readFileSync('/proc/self/smaps', 'utf8').split(/\n(?=[0-9a-f]+-[0-9a-f]+ )/);
        const vma = smaps.find((v) => {
          const [from, to] = v.slice(0, v.indexOf(' ')).split('-').map((h) => BigInt(`0x${h}`));
          return from! <= address && address < to!;
        });
        return vma?.match(/^VmFlags:(.*)$/m)?.[1]?.trim().split(' ') ?? [];
      };
      expect(flagsAt(base)).not.toContain('hg');
      expect(flagsAt(base + BigInt(2 * MiB))).toContain('hg');
      expect(flagsAt(base + BigInt(64 * MiB - 1))).toContain('hg');
    } finally {
      memory.close();
    }
  });

  it('maps 10 GiB of guest RAM in pieces no view of which exceeds 4 GiB, and a range may straddle two', () => {
    const memory = GuestMemory.allocate(ramLayout(10 * GiB));
    try {
      expect(memory.size).toBe(10 * GiB);
      expect(memory.regions.map((r) => [r.start / GiB, r.size / GiB])).toEqual([[0, 3], [4, 2], [6, 2], [8, 2], [10, 1]]);
      for (const r of memory.regions) expect(r.bytes.length).toBeLessThanOrEqual(4 * GiB);
      const boundary = 6 * GiB;
      memory.takeDirty();
      memory.writeU64(boundary - 4, 0x1122334455667788n);
      expect(memory.readU64(boundary - 4)).toBe(0x1122334455667788n);
      expect(memory.readU32(boundary)).toBe(0x11223344);
      // The write marked a page on each side of the boundary, each in its own piece's bitmap.
      const dirty = memory.takeDirty();
      expect(dirty[1]![(GiB * 2 / 4096 - 1) >> 3]).toBe(0x80);
      expect(dirty[2]![0]).toBe(1);
      memory.write(11 * GiB - 3, new Uint8Array([1, 2, 3]));
      expect([...memory.read(11 * GiB - 3, 3)]).toEqual([1, 2, 3]);
      expect(() => memory.read(11 * GiB - 2, 3)).toThrow(GuestMemoryError);
      expect(() => memory.read(3 * GiB, 1)).toThrow(GuestMemoryError);
    } finally {
      memory.close();
    }
  });

  it('is not counted as V8 external memory, which would start a full collection per isolate for every VM', () => {
    const before = getHeapStatistics().external_memory;
    const memory = GuestMemory.allocate(ramLayout(1 * GiB));
    try {
      memory.writeU8(GiB - 1, 7);
      expect(memory.readU8(GiB - 1)).toBe(7);
      expect(getHeapStatistics().external_memory - before).toBeLessThan(16 * MiB);
    } finally {
      memory.close();
    }
  });

  it('maps a snapshot file extent that covers two pieces', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tsvmm-bigmem-'));
    const file = path.join(dir, 'memory');
    const data = Buffer.alloc(8192, 0xab);
    data.fill(0xcd, 4096);
    writeFileSync(file, data);
    const fd = openSync(file, 'r');
    try {
      const memory = GuestMemory.mapFiles(ramLayout(9 * GiB), [{ fd, fileOffset: 0, guestAddress: 6 * GiB - 4096, length: 8192 }]);
      expect(memory.readU8(6 * GiB - 1)).toBe(0xab);
      expect(memory.readU8(6 * GiB)).toBe(0xcd);
      expect(memory.readU8(6 * GiB + 4096)).toBe(0);
      memory.close();
    } finally {
      closeSync(fd);
    }
  });
});
