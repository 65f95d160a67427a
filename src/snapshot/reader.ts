// Reads snapshot files (format.ts). Every byte of the file is untrusted: the header, the section
// table and every section but guest memory are checked (bounds, overlaps, CRCs, caps, the manifest's
// shape and its agreement with the table) before anything is handed out. Guest memory is left in the
// file, to be mapped on demand; its CRCs are checked only when asked (verifyMemory).
//
// A diff is opened with its whole chain of parents, each checked the same way and against the id and
// checksum the diff recorded, so memoryExtents can lay each diff's pages over its parent's.

import { constants } from 'node:fs';
import { open, realpath, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { crc32 } from './crc32.js';
import { ioReason } from './io-reason.js';
import {
  checkManifest, checksumToHex, countPages, decodeName, DEFAULT_LIMITS, ENTRY_SIZE, FLAG_DIFF, FORMAT_MAJOR,
  FORMAT_MINOR, hex, HEADER_CRC_SPAN, HEADER_SIZE, idToHex, KNOWN_FLAGS, MAGIC, MANIFEST_NAME, PAGE_SIZE,
  pagemapBytes, pageRuns, SectionEntry, sectionKind, SnapshotError, SnapshotHeader, type JsonValue,
  type ManifestRegion, type SectionKind, type SnapshotErrorCode, type SnapshotLimits, type SnapshotManifest,
} from './format.js';

export interface SnapshotSection {
  readonly kind: SectionKind;
  readonly name: string;
  readonly offset: number;
  readonly length: number;
  readonly crc: number;
}

/** A run of guest memory to map: `length` bytes of the file `path` (open as `fd`) at `fileOffset`. */
export interface MemoryExtent {
  readonly path: string;
  readonly fd: number;
  /** Page-aligned, as mmap wants it. */
  readonly fileOffset: number;
  /** From the start of the region. */
  readonly guestOffset: number;
  readonly length: number;
}

export interface VerifyProgress {
  readonly bytesDone: number;
  readonly bytesTotal: number;
  readonly path: string;
  readonly region: string;
}

export interface OpenOptions {
  /** Also check the CRC of every memory section in the chain: reads all of guest memory. */
  readonly verifyMemory?: boolean;
  readonly onProgress?: (progress: VerifyProgress) => void;
  readonly limits?: Partial<SnapshotLimits>;
}

const fail = (code: SnapshotErrorCode, file: string, message: string, cause?: unknown) =>
  new SnapshotError(code, `${file}: ${message}`, cause === undefined ? undefined : { cause });

const crcMismatch = (file: string, what: string, actual: number, expected: number) =>
  fail('SNAPSHOT_CORRUPT', file, `${what} is corrupt (CRC ${hex(actual)}, expected ${hex(expected)})`);

function describeSection(kind: SectionKind, name: string): string {
  return kind === 'manifest' ? 'the manifest' : `${kind} section "${name}"`;
}

/** One snapshot file, opened and checked; its memory stays in the file. */
export class SnapshotFile {
  readonly path: string;
  readonly id: string;
  /** The header's CRC: what a diff of this file records as its parent's checksum. */
  readonly checksum: string;
  readonly version: { readonly major: number; readonly minor: number };
  readonly isDiff: boolean;
  readonly fileSize: number;
  readonly manifest: SnapshotManifest;
  readonly sections: readonly SnapshotSection[];
  readonly #handle: FileHandle;
  readonly #states: ReadonlyMap<string, Uint8Array>;
  readonly #devices: ReadonlyMap<string, JsonValue>;
  readonly #pagemaps: ReadonlyMap<string, Uint8Array>;

  /** @internal use openSnapshot */
  constructor(init: {
    path: string; id: string; checksum: string; version: { major: number; minor: number }; isDiff: boolean; fileSize: number;
    manifest: SnapshotManifest; sections: SnapshotSection[]; handle: FileHandle; states: Map<string, Uint8Array>;
    devices: Map<string, JsonValue>; pagemaps: Map<string, Uint8Array>;
  }) {
    this.path = init.path;
    this.id = init.id;
    this.checksum = init.checksum;
    this.version = init.version;
    this.isDiff = init.isDiff;
    this.fileSize = init.fileSize;
    this.manifest = init.manifest;
    this.sections = init.sections;
    this.#handle = init.handle;
    this.#states = init.states;
    this.#devices = init.devices;
    this.#pagemaps = init.pagemaps;
  }

  get fd(): number {
    return this.#handle.fd;
  }

  get stateNames(): string[] {
    return [...this.#states.keys()];
  }

  get deviceNames(): string[] {
    return [...this.#devices.keys()];
  }

  /** A copy, so the caller may keep or change it. */
  state(name: string): Uint8Array {
    const data = this.#states.get(name);
    if (data === undefined) throw fail('SNAPSHOT_NO_SUCH_SECTION', this.path, `has no state "${name}"`);
    return data.slice();
  }

  device(name: string): JsonValue {
    if (!this.#devices.has(name)) throw fail('SNAPSHOT_NO_SUCH_SECTION', this.path, `has no device "${name}"`);
    return structuredClone(this.#devices.get(name)!);
  }

  memorySection(region: string): SnapshotSection {
    const section = this.sections.find((s) => s.kind === 'memory' && s.name === region);
    if (section === undefined) throw fail('SNAPSHOT_NO_SUCH_SECTION', this.path, `has no memory region "${region}"`);
    return section;
  }

  /** Diffs only: which pages of the region this file stores (format.ts: pagemap). */
  pagemap(region: string): Uint8Array | undefined {
    return this.#pagemaps.get(region)?.slice();
  }

  /** @internal */
  pagemapView(region: string): Uint8Array | undefined {
    return this.#pagemaps.get(region);
  }

  /** Reads `length` bytes at `position`; a file that shrank since it was opened is reported as truncated. */
  async read(position: number, length: number, into = new Uint8Array(length)): Promise<Uint8Array> {
    return readExact(this.#handle, this.path, position, length, into);
  }

  /** Checks the CRC of each memory section. */
  async verifyMemory(onProgress?: (done: number, region: string) => void): Promise<void> {
    const chunk = new Uint8Array(Math.min(4 * 1024 * 1024, Math.max(PAGE_SIZE, ...this.sections.map((s) => s.length))));
    for (const s of this.sections) {
      if (s.kind !== 'memory') continue;
      let crc = 0;
      for (let done = 0; done < s.length;) {
        const length = Math.min(chunk.length, s.length - done);
        const bytes = await this.read(s.offset + done, length, chunk.subarray(0, length));
        crc = crc32(bytes, crc);
        done += length;
        onProgress?.(length, s.name);
      }
      if (crc !== s.crc) throw crcMismatch(this.path, describeSection('memory', s.name), crc, s.crc);
    }
  }

  /** @internal */
  async close(): Promise<void> {
    await this.#handle.close();
  }
}

/** A snapshot and, for a diff, the chain of parents under it. */
export class Snapshot {
  /** The base snapshot first, the file that was opened last. */
  readonly chain: readonly SnapshotFile[];
  readonly #extents = new Map<string, MemoryExtent[]>();
  #closed = false;

  /** @internal use openSnapshot */
  constructor(chain: SnapshotFile[]) {
    this.chain = chain;
  }

  /** The file that was opened: its manifest, state and devices are the VM's. */
  get file(): SnapshotFile {
    return this.chain[this.chain.length - 1]!;
  }

  get manifest(): SnapshotManifest {
    return this.file.manifest;
  }

  get regions(): readonly ManifestRegion[] {
    return this.file.manifest.memory;
  }

  get stateNames(): string[] {
    return this.file.stateNames;
  }

  get deviceNames(): string[] {
    return this.file.deviceNames;
  }

  state(name: string): Uint8Array {
    return this.file.state(name);
  }

  device(name: string): JsonValue {
    return this.file.device(name);
  }

  /**
   * Where each page of a region lives: sorted, disjoint, page-aligned extents that together cover
   * the region. The base snapshot's memory, with each diff's pages over it, newest on top; adjacent
   * runs of one file are merged, so a full snapshot gives one extent per region.
   */
  memoryExtents(region: string): readonly MemoryExtent[] {
    this.#checkOpen();
    const cached = this.#extents.get(region);
    if (cached !== undefined) return cached;
    const info = this.regions.find((r) => r.name === region);
    if (info === undefined) throw fail('SNAPSHOT_NO_SUCH_SECTION', this.file.path, `has no memory region "${region}"`);
    let extents: MemoryExtent[] = [];
    for (const file of this.chain) {
      const section = file.memorySection(region);
      const at = { path: file.path, fd: file.fd };
      const pagemap = file.pagemapView(region);
      if (pagemap === undefined) {
        extents = [{ ...at, fileOffset: section.offset, guestOffset: 0, length: info.size }];
        continue;
      }
      const top: MemoryExtent[] = [];
      let stored = 0;
      for (const [first, count] of pageRuns(pagemap, info.size / PAGE_SIZE)) {
        top.push({ ...at, fileOffset: section.offset + stored * PAGE_SIZE, guestOffset: first * PAGE_SIZE, length: count * PAGE_SIZE });
        stored += count;
      }
      extents = overlay(extents, top);
    }
    this.#extents.set(region, extents);
    return extents;
  }

  /** Copies guest memory out of the chain: for restoring without mmap, and for tests. */
  async readMemory(region: string, offset: number, length: number): Promise<Uint8Array> {
    const info = this.regions.find((r) => r.name === region);
    if (info === undefined) throw fail('SNAPSHOT_NO_SUCH_SECTION', this.file.path, `has no memory region "${region}"`);
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > info.size) {
      throw new RangeError(`${offset}+${length} is outside region "${region}" (${info.size} bytes)`);
    }
    const out = new Uint8Array(length);
    const byFd = new Map(this.chain.map((f) => [f.fd, f]));
    for (const e of this.memoryExtents(region)) {
      const start = Math.max(offset, e.guestOffset);
      const end = Math.min(offset + length, e.guestOffset + e.length);
      if (start >= end) continue;
      await byFd.get(e.fd)!.read(e.fileOffset + (start - e.guestOffset), end - start, out.subarray(start - offset, end - offset));
    }
    return out;
  }

  /** Checks the CRC of every memory section of every file in the chain. */
  async verifyMemory(onProgress?: (progress: VerifyProgress) => void): Promise<void> {
    this.#checkOpen();
    const bytesTotal = this.chain.reduce((sum, f) => sum + f.sections.reduce((n, s) => n + (s.kind === 'memory' ? s.length : 0), 0), 0);
    let bytesDone = 0;
    for (const file of this.chain) {
      await file.verifyMemory((length, region) => {
        bytesDone += length;
        onProgress?.({ bytesDone, bytesTotal, path: file.path, region });
      });
    }
  }

  /** Closes the files; the extents' file descriptors are no longer valid after this. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all(this.chain.map((f) => f.close()));
  }

  #checkOpen(): void {
    if (this.#closed) throw new Error('snapshot is closed');
  }
}

/** Opens a snapshot and, for a diff, its chain of parents; everything but memory is checked. */
export async function openSnapshot(file: string, options: OpenOptions = {}): Promise<Snapshot> {
  const limits: SnapshotLimits = { ...DEFAULT_LIMITS, ...options.limits };
  const files: SnapshotFile[] = [];
  try {
    let current = await openFile(file, limits, 'SNAPSHOT_UNREADABLE');
    files.push(current);
    const seen = new Map([[await realpath(file), current.id]]);
    for (let parent = current.manifest.parent; parent !== null; parent = current.manifest.parent) {
      const parentPath = path.resolve(path.dirname(current.path), parent.path);
      const shown = path.isAbsolute(parent.path) ? parent.path : path.join(path.dirname(current.path), parent.path);
      let real: string;
      try {
        real = await realpath(parentPath);
      } catch (error) {
        throw fail((error as NodeJS.ErrnoException).code === 'ENOENT' ? 'SNAPSHOT_PARENT_MISSING' : 'SNAPSHOT_UNREADABLE',
          current.path, `its parent snapshot ${shown}: ${ioReason(error)}`, error);
      }
      if (seen.has(real) || [...seen.values()].includes(parent.id)) {
        const loop = [...files.map((f) => f.path), shown].join(' -> ');
        throw fail('SNAPSHOT_CHAIN_CYCLE', file, `the chain of diffs loops: ${loop}`);
      }
      if (files.length >= limits.maxChainDepth) {
        throw fail('SNAPSHOT_CHAIN_TOO_LONG', file, `the chain of diffs is longer than ${limits.maxChainDepth} files`);
      }
      const next = await openFile(shown, limits, 'SNAPSHOT_PARENT_MISSING');
      files.push(next);
      if (next.id !== parent.id || next.checksum !== parent.checksum) {
        throw fail('SNAPSHOT_PARENT_MISMATCH', current.path,
          `its parent ${shown} is not the snapshot it was taken from (id ${next.id.slice(0, 8)}, checksum ${next.checksum};`
          + ` expected id ${parent.id.slice(0, 8)}, checksum ${parent.checksum})`);
      }
      if (!sameLayout(next.manifest.memory, current.manifest.memory)) {
        throw fail('SNAPSHOT_PARENT_MISMATCH', current.path, `its parent ${shown} has another memory layout`);
      }
      seen.set(real, next.id);
      current = next;
    }
    const snapshot = new Snapshot(files.reverse());
    if (options.verifyMemory) await snapshot.verifyMemory(options.onProgress);
    return snapshot;
  } catch (error) {
    await Promise.all(files.map((f) => f.close().catch(() => undefined)));
    throw error;
  }
}

/** `tsvmm verify`: opens the chain and checks every CRC, memory included. */
export async function verifySnapshot(file: string, options: Omit<OpenOptions, 'verifyMemory'> = {}): Promise<{
  files: number; memoryBytes: number;
}> {
  const snapshot = await openSnapshot(file, { ...options, verifyMemory: true });
  const memoryBytes = snapshot.chain.reduce((sum, f) => sum + f.sections.reduce((n, s) => n + (s.kind === 'memory' ? s.length : 0), 0), 0);
  await snapshot.close();
  return { files: snapshot.chain.length, memoryBytes };
}

function sameLayout(a: readonly ManifestRegion[], b: readonly ManifestRegion[]): boolean {
  return a.length === b.length
    && a.every((r, i) => r.name === b[i]!.name && r.guestAddress === b[i]!.guestAddress && r.size === b[i]!.size);
}

/** Lays `top` over `base`: both sorted and disjoint; the result is too, with adjacent runs merged. */
export function overlay(base: readonly MemoryExtent[], top: readonly MemoryExtent[]): MemoryExtent[] {
  const pieces: MemoryExtent[] = [];
  const cut = (e: MemoryExtent, from: number, to: number): MemoryExtent =>
    ({ ...e, fileOffset: e.fileOffset + (from - e.guestOffset), guestOffset: from, length: to - from });
  let first = 0; // top runs before this one end before the current base extent starts
  for (const b of base) {
    const end = b.guestOffset + b.length;
    while (first < top.length && top[first]!.guestOffset + top[first]!.length <= b.guestOffset) first++;
    let cursor = b.guestOffset;
    for (let k = first; cursor < end; k++) {
      const t = top[k];
      if (t === undefined || t.guestOffset >= end) {
        pieces.push(cut(b, cursor, end));
        break;
      }
      if (t.guestOffset > cursor) pieces.push(cut(b, cursor, t.guestOffset));
      cursor = Math.max(cursor, t.guestOffset + t.length);
    }
  }
  const all = [...pieces, ...top].sort((x, y) => x.guestOffset - y.guestOffset);
  const merged: MemoryExtent[] = [];
  for (const e of all) {
    const last = merged[merged.length - 1];
    if (last !== undefined && last.fd === e.fd && last.path === e.path && last.guestOffset + last.length === e.guestOffset
      && last.fileOffset + last.length === e.fileOffset) {
      merged[merged.length - 1] = { ...last, length: last.length + e.length };
    } else {
      merged.push(e);
    }
  }
  return merged;
}

// --- One file ------------------------------------------------------------------------------------

async function openFile(file: string, limits: SnapshotLimits, missing: SnapshotErrorCode): Promise<SnapshotFile> {
  let handle: FileHandle;
  try {
    // Non-blocking, so a path that names a FIFO is refused instead of waiting for a writer forever.
    handle = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code === 'ENOENT' ? missing : 'SNAPSHOT_UNREADABLE';
    throw fail(code, file, `cannot open snapshot: ${ioReason(error)}`, error);
  }
  try {
    return await parseFile(handle, file, limits);
  } catch (error) {
    await handle.close().catch(() => undefined);
    if (error instanceof SnapshotError) throw error;
    throw fail('SNAPSHOT_UNREADABLE', file, `cannot read snapshot: ${ioReason(error)}`, error);
  }
}

async function readExact(handle: FileHandle, file: string, position: number, length: number, into: Uint8Array): Promise<Uint8Array> {
  for (let done = 0; done < length;) {
    const { bytesRead } = await handle.read(into, done, length - done, position + done);
    if (bytesRead === 0) throw fail('SNAPSHOT_TRUNCATED', file, `is truncated: it ends before byte ${position + length}`);
    done += bytesRead;
  }
  return into;
}

interface Span { readonly start: number; readonly end: number; readonly what: string }

async function parseFile(handle: FileHandle, file: string, limits: SnapshotLimits): Promise<SnapshotFile> {
  const read = (position: number, length: number) => readExact(handle, file, position, length, new Uint8Array(length));
  const stat = await handle.stat();
  if (!stat.isFile()) throw fail('SNAPSHOT_NOT_A_SNAPSHOT', file, 'is not a regular file');
  const size = stat.size;
  if (size === 0) throw fail('SNAPSHOT_NOT_A_SNAPSHOT', file, 'is empty, not a tsvmm snapshot');

  // --- Header: magic, version, CRC, then its fields.
  const head = await read(0, Math.min(size, HEADER_SIZE));
  const magicLength = Math.min(head.length, MAGIC.length);
  if (!MAGIC.subarray(0, magicLength).every((b, i) => head[i] === b)) {
    throw fail('SNAPSHOT_NOT_A_SNAPSHOT', file, 'is not a tsvmm snapshot (no TSVMMSNP magic)');
  }
  if (size < HEADER_SIZE) throw fail('SNAPSHOT_TRUNCATED', file, `is truncated: ${size} bytes, less than its ${HEADER_SIZE}-byte header`);
  const header = SnapshotHeader.decode(head);
  // The version comes before the CRC: a later format may lay its header out differently, and
  // "newer than this tsvmm supports" is the message that helps then.
  if (header.major !== FORMAT_MAJOR) {
    const relation = header.major > FORMAT_MAJOR ? 'newer than' : 'older than';
    throw fail('SNAPSHOT_VERSION', file,
      `snapshot format ${header.major}.${header.minor} is ${relation} this tsvmm supports (${FORMAT_MAJOR}.x)`);
  }
  if (header.minor > FORMAT_MINOR) {
    throw fail('SNAPSHOT_VERSION', file,
      `snapshot format ${header.major}.${header.minor} is newer than this tsvmm supports (${FORMAT_MAJOR}.${FORMAT_MINOR})`);
  }
  const headerCrc = crc32(head.subarray(0, HEADER_CRC_SPAN));
  if (headerCrc !== header.headerCrc) throw crcMismatch(file, 'the header', headerCrc, header.headerCrc);
  const layout = (message: string) => fail('SNAPSHOT_BAD_LAYOUT', file, message);
  if (header.headerSize !== HEADER_SIZE) throw layout(`has a header of ${header.headerSize} bytes, not ${HEADER_SIZE}`);
  if ((header.flags & ~KNOWN_FLAGS) !== 0) throw layout(`has unknown flags ${hex(header.flags)}`);
  const fileSize = toNumber(header.fileSize);
  if (fileSize === undefined) throw layout('has an impossible file size');
  if (size < fileSize) throw fail('SNAPSHOT_TRUNCATED', file, `is truncated: ${size} bytes of ${fileSize}`);
  if (size > fileSize) throw layout(`has ${size - fileSize} bytes after its end (${fileSize} bytes)`);

  // --- Section table.
  const count = header.sectionCount;
  if (count === 0) throw layout('has no sections');
  if (count > limits.maxSections) throw fail('SNAPSHOT_TOO_LARGE', file, `has ${count} sections, more than ${limits.maxSections}`);
  const tableOffset = toNumber(header.tableOffset);
  const tableEnd = tableOffset === undefined ? undefined : tableOffset + count * ENTRY_SIZE;
  if (tableOffset === undefined || tableEnd === undefined || tableOffset < HEADER_SIZE || tableEnd > fileSize) {
    throw layout('has its section table outside the file');
  }
  const table = await read(tableOffset, count * ENTRY_SIZE);
  const tableCrc = crc32(table);
  if (tableCrc !== header.tableCrc) throw crcMismatch(file, 'the section table', tableCrc, header.tableCrc);

  const sections: SnapshotSection[] = [];
  const tableView = new DataView(table.buffer);
  for (let i = 0; i < count; i++) {
    const entry = SectionEntry.read(tableView, i * ENTRY_SIZE);
    const kind = sectionKind(entry.type);
    if (kind === undefined) throw layout(`section ${i} has unknown type ${entry.type}`);
    const name = decodeName(entry.name);
    if (name === undefined) throw layout(`section ${i} has an invalid name`);
    const what = describeSection(kind, name);
    if (entry.flags !== 0 || entry.reserved !== 0) throw layout(`${what} has reserved fields set`);
    const offset = toNumber(entry.offset);
    const length = toNumber(entry.length);
    const cap = kind === 'manifest' ? limits.maxManifestBytes : kind === 'state' || kind === 'device' ? limits.maxStateBytes : undefined;
    if (cap !== undefined && (length === undefined || length > cap)) {
      throw fail('SNAPSHOT_TOO_LARGE', file, `${what} is ${entry.length} bytes, more than ${cap}`);
    }
    if (offset === undefined || length === undefined || offset + length > fileSize) {
      throw layout(`${what} extends past the end of the file`);
    }
    if (sections.some((s) => s.kind === kind && s.name === name)) throw layout(`${what} appears twice`);
    if (kind === 'manifest' && name !== MANIFEST_NAME) throw layout(`has a manifest named "${name}"`);
    if (kind === 'memory' && (offset % PAGE_SIZE !== 0 || length % PAGE_SIZE !== 0)) throw layout(`${what} is not page-aligned`);
    sections.push({ kind, name, offset, length, crc: entry.crc });
  }
  const eager = sections.reduce((sum, s) => sum + (s.kind === 'memory' ? 0 : s.length), 0);
  if (eager > limits.maxEagerBytes) throw fail('SNAPSHOT_TOO_LARGE', file, `has ${eager} bytes of state, more than ${limits.maxEagerBytes}`);
  if (!sections.some((s) => s.kind === 'manifest')) throw layout('has no manifest');

  // --- Sections tile the file: no overlaps, no gap of a page or more, nothing after the last one;
  // and the padding between them is zero, so no byte of the file escapes every check.
  const spans: Span[] = [
    { start: 0, end: HEADER_SIZE, what: 'the header' },
    { start: tableOffset, end: tableEnd, what: 'the section table' },
    ...sections.map((s) => ({ start: s.offset, end: s.offset + s.length, what: describeSection(s.kind, s.name) })),
  ].sort((a, b) => a.start - b.start || a.end - b.end);
  let previous = spans[0]!;
  for (const span of spans.slice(1)) {
    if (span.start < previous.end) throw layout(`${span.what} overlaps ${previous.what}`);
    const gap = span.start - previous.end;
    if (gap >= PAGE_SIZE) throw layout(`has ${gap} unused bytes before ${span.what}`);
    if (gap > 0 && !(await read(previous.end, gap)).every((b) => b === 0)) {
      throw fail('SNAPSHOT_CORRUPT', file, `the padding before ${span.what} is corrupt (not zero)`);
    }
    previous = span;
  }
  if (previous.end !== fileSize) throw layout(`has ${fileSize - previous.end} unused bytes after ${previous.what}`);

  // --- Every section but memory: read and CRC-checked.
  const contents = new Map<SnapshotSection, Uint8Array>();
  for (const s of sections) {
    if (s.kind === 'memory') continue;
    const data = await read(s.offset, s.length);
    const crc = crc32(data);
    if (crc !== s.crc) throw crcMismatch(file, describeSection(s.kind, s.name), crc, s.crc);
    contents.set(s, data);
  }
  const sectionData = (kind: SectionKind, name: string) => {
    const s = sections.find((x) => x.kind === kind && x.name === name);
    return s === undefined ? undefined : contents.get(s);
  };

  // --- The manifest, and its agreement with the header and the table.
  const bad = (message: string) => fail('SNAPSHOT_BAD_MANIFEST', file, message);
  const parsed = parseJson(sectionData('manifest', MANIFEST_NAME)!);
  if (parsed === undefined) throw bad('the manifest is not valid JSON');
  const checked = checkManifest(parsed.value);
  if ('problem' in checked) throw bad(`invalid manifest: ${checked.problem}`);
  const manifest = checked.manifest;
  const id = idToHex(header.id);
  if (manifest.format.major !== header.major || manifest.format.minor !== header.minor) {
    throw bad(`the manifest says format ${manifest.format.major}.${manifest.format.minor}, the header ${header.major}.${header.minor}`);
  }
  if (manifest.id !== id) throw bad('the manifest and the header have different ids');
  const isDiff = (header.flags & FLAG_DIFF) !== 0;
  if (isDiff !== (manifest.parent !== null)) {
    throw bad(isDiff ? 'is a diff but its manifest names no parent' : 'is not a diff but its manifest names a parent');
  }

  const pagemaps = new Map<string, Uint8Array>();
  for (const region of manifest.memory) {
    const memory = sections.find((s) => s.kind === 'memory' && s.name === region.name);
    if (memory === undefined) throw layout(`has no memory section for region "${region.name}"`);
    const pages = region.size / PAGE_SIZE;
    let stored = pages;
    if (isDiff) {
      const pagemap = sectionData('pagemap', region.name);
      if (pagemap === undefined) throw layout(`has no pagemap for region "${region.name}"`);
      if (pagemap.length !== pagemapBytes(pages)) throw layout(`pagemap section "${region.name}" has ${pagemap.length} bytes, not ${pagemapBytes(pages)}`);
      const counted = countPages(pagemap, pages);
      if (counted === undefined) throw layout(`pagemap section "${region.name}" marks pages past the end of its region`);
      stored = counted;
      pagemaps.set(region.name, pagemap);
    }
    if (memory.length !== stored * PAGE_SIZE) {
      throw layout(`memory section "${region.name}" is ${memory.length} bytes, not the ${stored * PAGE_SIZE} its region needs`);
    }
  }
  for (const s of sections) {
    if ((s.kind === 'memory' || s.kind === 'pagemap') && !manifest.memory.some((r) => r.name === s.name)) {
      throw layout(`${describeSection(s.kind, s.name)} belongs to no memory region`);
    }
    if (s.kind === 'pagemap' && !isDiff) throw layout(`${describeSection(s.kind, s.name)} is in a snapshot that is not a diff`);
  }

  const states = new Map<string, Uint8Array>();
  const devices = new Map<string, JsonValue>();
  for (const s of sections) {
    if (s.kind === 'state') states.set(s.name, contents.get(s)!);
    if (s.kind === 'device') {
      const value = parseJson(contents.get(s)!);
      if (value === undefined) throw bad(`${describeSection(s.kind, s.name)} is not valid JSON`);
      devices.set(s.name, value.value);
    }
  }

  return new SnapshotFile({
    path: file, id, checksum: checksumToHex(header.headerCrc), version: { major: header.major, minor: header.minor }, isDiff,
    fileSize, manifest, sections, handle, states, devices, pagemaps,
  });
}

function toNumber(value: bigint): number | undefined {
  return value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : undefined;
}

function parseJson(data: Uint8Array): { value: JsonValue } | undefined {
  try {
    return { value: JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(data)) as JsonValue };
  } catch {
    return undefined;
  }
}
