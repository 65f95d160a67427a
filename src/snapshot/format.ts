// The tsvmm snapshot file, format 1.0. One file holds a whole VM; all integers are little-endian,
// offsets and lengths count bytes from the start of the file.
//
//   0        header, 64 bytes
//   64       section table: one 80-byte entry per section
//   ...      manifest, state, device and pagemap sections, back to back
//   ...      memory sections, each at a 4096-aligned offset and a whole number of pages long,
//            so a restorer can mmap(MAP_PRIVATE) guest RAM straight from the file
//
//   header                                      section table entry
//    0  magic "TSVMMSNP"                          0  type u32: 1 manifest 2 state 3 device 4 pagemap 5 memory
//    8  major u16 = 1                             4  flags u32 = 0
//   10  minor u16 = 0                             8  offset u64
//   12  flags u32: bit 0 = diff snapshot         16  length u64
//   16  header size u32 = 64                     24  crc32 u32 of the section's bytes
//   20  section count u32                        28  reserved u32 = 0
//   24  section table offset u64                 32  name, 48 bytes: ASCII [A-Za-z0-9._:/-], zero-padded
//   32  file size u64
//   40  snapshot id, 16 random bytes
//   56  crc32 u32 of the section table
//   60  crc32 u32 of header bytes 0..59
//
// Sections (names are unique per type):
//   manifest  exactly one, named "manifest": UTF-8 JSON, SnapshotManifest below (VM config, format,
//             creation time, tsvmm version, vCPU count, memory layout, parent of a diff).
//   state     opaque bytes by name: raw kernel structures of the VM and each vCPU ("vcpu0/regs").
//   device    UTF-8 JSON by name: what a device's save() returned.
//   memory    one per guest RAM region, named as in the manifest. In a full snapshot, the region's
//             bytes; in a diff, only the pages its pagemap marks, ascending and packed. Pages that are
//             all zero are never written, so they are holes in a sparse file and read back as zeros.
//   pagemap   diffs only, one per region and named like it: bit i (byte i >> 3, bit i & 7, LSB
//             first, which is KVM's dirty-log layout on x86) is set when page i is stored. Bits past
//             the region's last page are zero.
//
// A diff's manifest names its parent: { path (relative to the diff's directory), id, checksum },
// the checksum being the parent's header CRC, which covers its section table and through it the
// CRC of every section. Restoring a region maps the base's memory section, then each diff's pages
// on top (reader.ts: memoryExtents).
//
// What a reader must refuse (reader.ts does, each with a SnapshotError code):
//   - a different major version or a newer minor one;
//   - a header, section table, manifest, state, device or pagemap section whose CRC does not match:
//     these are always checked. A memory section's CRC is checked only on request (verifyMemory),
//     since reading all of guest RAM would defeat mapping it on demand;
//   - a file whose size is not the header's file size: that catches truncation anywhere, even
//     inside memory sections whose CRC is not checked;
//   - sections outside the file, overlapping each other, the header or the table; a gap between
//     sections (alignment padding) of a page or more, or not zero; bytes after the last section;
//   - a manifest or state section over its size cap, too many sections;
//   - a diff whose parent is missing, is not the file it was taken against, has another memory
//     layout, or leads back to a file already in the chain.

import { TsvmmError } from '../errors.js';
import { bytes, struct, u16, u32, u64 } from '../kvm/struct.js';

export const FORMAT_MAJOR = 1;
export const FORMAT_MINOR = 0;
export const MAGIC = new TextEncoder().encode('TSVMMSNP');
export const PAGE_SIZE = 4096;
export const HEADER_SIZE = 64;
export const ENTRY_SIZE = 80;
export const NAME_BYTES = 48;
export const FLAG_DIFF = 1;
export const KNOWN_FLAGS = FLAG_DIFF;
export const MANIFEST_NAME = 'manifest';

export const SectionType = { manifest: 1, state: 2, device: 3, pagemap: 4, memory: 5 } as const;
export type SectionKind = keyof typeof SectionType;
export const SECTION_KINDS = Object.keys(SectionType) as SectionKind[];

export function sectionKind(type: number): SectionKind | undefined {
  return SECTION_KINDS.find((k) => SectionType[k] === type);
}

export const SnapshotHeader = struct('tsvmm_snapshot_header', HEADER_SIZE, {
  magic: [0, bytes(8)],
  major: [8, u16],
  minor: [10, u16],
  flags: [12, u32],
  headerSize: [16, u32],
  sectionCount: [20, u32],
  tableOffset: [24, u64],
  fileSize: [32, u64],
  id: [40, bytes(16)],
  tableCrc: [56, u32],
  headerCrc: [60, u32],
} as const);

export const SectionEntry = struct('tsvmm_snapshot_section', ENTRY_SIZE, {
  type: [0, u32],
  flags: [4, u32],
  offset: [8, u64],
  length: [16, u64],
  crc: [24, u32],
  reserved: [28, u32],
  name: [32, bytes(NAME_BYTES)],
} as const);

/** The bytes of the header the header CRC covers. */
export const HEADER_CRC_SPAN = 60;

export interface SnapshotLimits {
  /** Entries in the section table. */
  readonly maxSections: number;
  readonly maxManifestBytes: number;
  /** Each state or device section. */
  readonly maxStateBytes: number;
  /** Everything read when a file is opened: manifest, state, device and pagemap sections. */
  readonly maxEagerBytes: number;
  /** Files in a chain of diffs, the base included. */
  readonly maxChainDepth: number;
}

const MiB = 1024 * 1024;

export const DEFAULT_LIMITS: SnapshotLimits = {
  maxSections: 4096,
  maxManifestBytes: 16 * MiB,
  maxStateBytes: 64 * MiB,
  maxEagerBytes: 256 * MiB,
  maxChainDepth: 64,
};

export const MAX_VCPUS = 1024;
export const MAX_REGIONS = 256;

export type SnapshotErrorCode =
  | 'SNAPSHOT_UNREADABLE'      // the file cannot be opened or read
  | 'SNAPSHOT_NOT_A_SNAPSHOT'  // bad magic
  | 'SNAPSHOT_VERSION'         // another major version, or a newer minor one
  | 'SNAPSHOT_TRUNCATED'       // shorter than its header says
  | 'SNAPSHOT_CORRUPT'         // a CRC mismatch, or padding that is not zero
  | 'SNAPSHOT_BAD_LAYOUT'      // CRCs match but the structure is invalid: overlaps, out of bounds, ...
  | 'SNAPSHOT_TOO_LARGE'       // a section or the table over its cap
  | 'SNAPSHOT_BAD_MANIFEST'    // the manifest or a device section is not valid JSON of the right shape
  | 'SNAPSHOT_PARENT_MISSING'  // a diff whose parent file does not exist
  | 'SNAPSHOT_PARENT_MISMATCH' // the parent is another file than the one the diff was taken against
  | 'SNAPSHOT_CHAIN_CYCLE'     // a chain of diffs that leads back into itself
  | 'SNAPSHOT_CHAIN_TOO_LONG'
  | 'SNAPSHOT_NO_SUCH_SECTION' // asked the reader for a state, device or region the file lacks
  | 'SNAPSHOT_BAD_INPUT'       // the writer was given something it cannot store
  | 'SNAPSHOT_WRITE_FAILED'    // an I/O error or a failing memory source; the target is untouched
  | 'SNAPSHOT_ABORTED';        // the caller's AbortSignal fired; the target is untouched

export class SnapshotError extends TsvmmError {
  declare readonly code: SnapshotErrorCode;

  constructor(code: SnapshotErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
    this.name = 'SnapshotError';
  }
}

const NAME_PATTERN = /^[A-Za-z0-9._:/-]+$/;

/** Why a section name is invalid, or undefined if it is fine. */
export function checkSectionName(name: string): string | undefined {
  if (name.length === 0) return 'is empty';
  if (name.length > NAME_BYTES) return `is longer than ${NAME_BYTES} characters`;
  if (!NAME_PATTERN.test(name)) return 'may only hold letters, digits and . _ : / -';
  return undefined;
}

export function encodeName(name: string): Uint8Array {
  return new TextEncoder().encode(name);
}

/** The name in a table entry, or undefined if it is not zero-padded ASCII of the allowed set. */
export function decodeName(field: Uint8Array): string | undefined {
  const end = field.indexOf(0);
  const length = end === -1 ? field.length : end;
  for (let i = length; i < field.length; i++) if (field[i] !== 0) return undefined;
  const name = String.fromCharCode(...field.subarray(0, length));
  return checkSectionName(name) === undefined ? name : undefined;
}

export const hex = (n: number) => `0x${n.toString(16).padStart(8, '0')}`;
export const idToHex = (id: Uint8Array) => Buffer.from(id).toString('hex');
export const checksumToHex = (crc: number) => crc.toString(16).padStart(8, '0');

// --- The manifest --------------------------------------------------------------------------------

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export interface ManifestRegion {
  /** Also the name of the region's memory section (and of its pagemap in a diff). */
  readonly name: string;
  readonly guestAddress: number;
  readonly size: number;
}

export interface ParentReference {
  /** As written: relative to the diff's own directory unless absolute. */
  readonly path: string;
  readonly id: string;
  readonly checksum: string;
}

export interface SnapshotManifest {
  readonly format: { readonly name: 'tsvmm-snapshot'; readonly major: number; readonly minor: number; readonly pageSize: number };
  readonly id: string;
  readonly createdAt: string;
  readonly tsvmmVersion: string;
  readonly vcpus: number;
  readonly memory: readonly ManifestRegion[];
  readonly parent: ParentReference | null;
  /** The VM's configuration, as the VMM chose to record it; the format does not look inside. */
  readonly vm: JsonValue;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isHex = (v: unknown, digits: number): v is string => typeof v === 'string' && new RegExp(`^[0-9a-f]{${digits}}$`).test(v);
const isCount = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/**
 * Checks a parsed manifest's shape and returns it typed; `problem` names the first thing wrong.
 * Consistency with the section table is the reader's job.
 */
export function checkManifest(value: unknown): { manifest: SnapshotManifest } | { problem: string } {
  if (!isRecord(value)) return { problem: 'not a JSON object' };
  const { format, id, createdAt, tsvmmVersion, vcpus, memory, parent } = value;
  if (!isRecord(format) || format.name !== 'tsvmm-snapshot') return { problem: 'no tsvmm-snapshot format' };
  if (!isCount(format.major) || !isCount(format.minor)) return { problem: 'invalid format version' };
  if (format.pageSize !== PAGE_SIZE) return { problem: `page size ${String(format.pageSize)}, not ${PAGE_SIZE}` };
  if (!isHex(id, 32)) return { problem: 'invalid id' };
  if (typeof createdAt !== 'string' || Number.isNaN(Date.parse(createdAt))) return { problem: 'invalid creation time' };
  if (typeof tsvmmVersion !== 'string') return { problem: 'no tsvmm version' };
  if (!isCount(vcpus) || vcpus < 1 || vcpus > MAX_VCPUS) return { problem: `invalid vCPU count ${String(vcpus)}` };
  if (!('vm' in value)) return { problem: 'no VM configuration' };
  if (!Array.isArray(memory) || memory.length === 0 || memory.length > MAX_REGIONS) {
    return { problem: `not 1 to ${MAX_REGIONS} memory regions` };
  }
  const names = new Set<string>();
  let end = 0;
  for (const [i, r] of memory.entries()) {
    if (!isRecord(r) || typeof r.name !== 'string' || checkSectionName(r.name) !== undefined) {
      return { problem: `memory region ${i} has an invalid name` };
    }
    if (names.has(r.name)) return { problem: `memory region "${r.name}" is listed twice` };
    names.add(r.name);
    const { guestAddress, size } = r;
    if (!isCount(guestAddress) || !isCount(size) || size === 0 || guestAddress % PAGE_SIZE !== 0 || size % PAGE_SIZE !== 0
      || !Number.isSafeInteger(guestAddress + size)) {
      return { problem: `memory region "${r.name}" has an invalid address or size` };
    }
    if (guestAddress < end) return { problem: `memory region "${r.name}" overlaps or is out of order` };
    end = guestAddress + size;
  }
  if (parent !== null) {
    if (!isRecord(parent) || typeof parent.path !== 'string' || parent.path.length === 0 || parent.path.length > 4096
      || parent.path.includes('\0') || !isHex(parent.id, 32) || !isHex(parent.checksum, 8)) {
      return { problem: 'invalid parent reference' };
    }
  }
  return { manifest: value as unknown as SnapshotManifest };
}

// --- Page bitmaps --------------------------------------------------------------------------------

export const pagemapBytes = (pages: number) => Math.ceil(pages / 8);

/** Pages set in a bitmap of `pages` pages, or undefined if a bit past the last page is set. */
export function countPages(bitmap: Uint8Array, pages: number): number | undefined {
  let count = 0;
  for (let i = 0; i < bitmap.length; i++) {
    let b = bitmap[i]!;
    if (b === 0) continue;
    const valid = pages - i * 8;
    if (valid < 8 && (valid <= 0 || b >>> valid !== 0)) return undefined;
    while (b !== 0) {
      b &= b - 1;
      count++;
    }
  }
  return count;
}

/** Runs of set bits, as [first page, page count], in ascending order. */
export function* pageRuns(bitmap: Uint8Array, pages: number): Generator<[number, number]> {
  let start = -1;
  for (let i = 0; i < bitmap.length; i++) {
    const b = bitmap[i]!;
    // Whole bytes of 0 or 0xff only extend or leave a run: the common case in dirty logs.
    if (b === 0 && start === -1) continue;
    if (b === 0xff && start !== -1 && i * 8 + 8 <= pages) continue;
    for (let bit = 0; bit < 8; bit++) {
      const page = i * 8 + bit;
      if (page >= pages) break;
      if (b & (1 << bit)) {
        if (start === -1) start = page;
      } else if (start !== -1) {
        yield [start, page - start];
        start = -1;
      }
    }
  }
  if (start !== -1) yield [start, Math.min(pages, bitmap.length * 8) - start];
}

export const alignUp = (n: number, to: number) => Math.ceil(n / to) * to;
