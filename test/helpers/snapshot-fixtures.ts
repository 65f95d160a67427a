// Shared pieces of the snapshot tests: a seeded PRNG, small VM contents with a mix of zero and
// random pages, temporary directories, and a forger that edits a snapshot's header or section table
// and recomputes their CRCs, to reach the checks that come after the CRCs.

import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { crc32 } from '../../src/snapshot/crc32.js';
import { ENTRY_SIZE, HEADER_CRC_SPAN, PAGE_SIZE, SectionEntry, SnapshotHeader } from '../../src/snapshot/format.js';
import type { SnapshotContents } from '../../src/snapshot/writer.js';

/** mulberry32: small, seeded, good enough to pick offsets and fill pages. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function randomBytesFrom(random: () => number, length: number): Uint8Array {
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = Math.floor(random() * 256);
  return out;
}

/** A region of `pages` pages where about one page in three is zero, the rest random. */
export function guestRegion(random: () => number, pages: number): Uint8Array {
  const out = new Uint8Array(pages * PAGE_SIZE);
  for (let p = 0; p < pages; p++) {
    if (random() < 0.33) continue;
    out.set(randomBytesFrom(random, PAGE_SIZE), p * PAGE_SIZE);
  }
  return out;
}

export interface SampleVm {
  readonly contents: SnapshotContents;
  readonly ram: Uint8Array;
  readonly high: Uint8Array;
}

export function sampleVm(seed = 1): SampleVm {
  const random = prng(seed);
  const ram = guestRegion(random, 24);
  const high = guestRegion(random, 8);
  return {
    ram,
    high,
    contents: {
      vm: { kernel: 'guests/build/hello.elf', memory: ram.length + high.length, cpus: 2, cmdline: 'console=ttyS0' },
      vcpus: 2,
      states: {
        'vm/clock': randomBytesFrom(random, 48),
        'vcpu0/regs': randomBytesFrom(random, 144),
        'vcpu0/sregs': randomBytesFrom(random, 312),
        'vcpu1/regs': randomBytesFrom(random, 144),
        'vcpu1/empty': new Uint8Array(0),
      },
      devices: {
        serial0: { ier: 1, lcr: 3, fifo: [104, 105], name: 'COM1' },
        i8042: { status: 0x1c, pending: null },
      },
      memory: [
        { name: 'ram', guestAddress: 0, size: ram.length, source: ram },
        { name: 'high', guestAddress: 0x100000, size: high.length, source: high },
      ],
    },
  };
}

export function tempDirectory(): { readonly path: string; remove(): void } {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tsvmm-snapshot-'));
  return { path: dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

export type Header = ReturnType<typeof SnapshotHeader.decode>;
export type Entry = ReturnType<typeof SectionEntry.decode>;

/**
 * Edits a snapshot image's header and section table, then recomputes the table and header CRCs, so
 * the result passes the CRC checks and reaches the structural ones.
 */
export function forge(image: Uint8Array, edit: (header: Header, entries: Entry[], image: Uint8Array) => void): Uint8Array {
  const out = image.slice();
  const view = new DataView(out.buffer);
  const header = SnapshotHeader.decode(out);
  const tableOffset = Number(header.tableOffset);
  const count = header.sectionCount;
  const entries = Array.from({ length: count }, (_, i) => SectionEntry.decode(out, tableOffset + i * ENTRY_SIZE));
  edit(header, entries, out);
  const newTableOffset = Number(header.tableOffset);
  // A table moved out of the file stays where it was: the reader must refuse it before reading it.
  if (newTableOffset + entries.length * ENTRY_SIZE <= out.length) {
    entries.forEach((e, i) => SectionEntry.write(view, newTableOffset + i * ENTRY_SIZE, e));
    header.tableCrc = crc32(out.subarray(newTableOffset, newTableOffset + entries.length * ENTRY_SIZE));
  }
  SnapshotHeader.write(view, 0, header);
  view.setUint32(HEADER_CRC_SPAN, crc32(out.subarray(0, HEADER_CRC_SPAN)), true);
  return out;
}

/** Replaces a section's bytes (same length) and fixes its CRC in the table. */
export function replaceSection(image: Uint8Array, name: string, data: Uint8Array): Uint8Array {
  return forge(image, (_header, entries, out) => {
    const entry = entries.find((e) => new TextDecoder().decode(e.name).replace(/\0+$/, '') === name);
    if (entry === undefined || Number(entry.length) !== data.length) throw new Error(`no section ${name} of ${data.length} bytes`);
    out.set(data, Number(entry.offset));
    entry.crc = crc32(data);
  });
}

export const sectionName = (entry: Entry) => new TextDecoder().decode(entry.name).replace(/\0+$/, '');

/** Byte equality in one native call: vitest's toEqual walks typed arrays element by element. */
export function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(b);
}
