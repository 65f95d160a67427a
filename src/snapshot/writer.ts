// Writes a snapshot file (format.ts) atomically: everything goes to a temporary file in the target's
// directory, which is fsync'd, renamed over the target, and the directory fsync'd. A crash, kill -9,
// a full disk or a failing memory source at any point leaves the previous file (or none) in place,
// never a partial one. The header, written last, is what makes the temporary file a snapshot at all.
//
// Guest memory is streamed from a source the caller gives; the VM must be paused while it is read,
// because the CRC is taken over the bytes as they are written. Pages that are all zero are not
// written: they stay holes in a sparse file, cost no disk space, and read back as zeros.

import { randomBytes } from 'node:crypto';
import { open, readdir, realpath, rename, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { packageVersion } from '../meta/package.js';
import { pidAlive } from '../meta/pid-alive.js';
import { crc32, crc32Zeros } from './crc32.js';
import { ioReason } from './io-reason.js';
import {
  alignUp, checkManifest, checkSectionName, checksumToHex, countPages, DEFAULT_LIMITS, encodeName, ENTRY_SIZE,
  FLAG_DIFF, FORMAT_MAJOR, FORMAT_MINOR, HEADER_CRC_SPAN, HEADER_SIZE, idToHex, MAGIC, MANIFEST_NAME, PAGE_SIZE,
  pagemapBytes, pageRuns, SectionEntry, SectionType, SnapshotError, SnapshotHeader, type JsonValue, type SectionKind,
  type SnapshotManifest,
} from './format.js';
import { openSnapshot } from './reader.js';

/**
 * Where a region's bytes come from. Whichever form, the writer is done with a chunk before it asks for
 * the next, so a source may hand out live views of guest memory or reuse one buffer.
 * - a Uint8Array: the whole region (a view of guest memory, say);
 * - a function: reads `length` bytes at `offset` from the start of the region (never more than the
 *   writer's chunk size, and in a diff only the dirty pages are asked for);
 * - an iterable: the memory section's bytes in order, in chunks of any size: the whole region, or in a
 *   diff only the dirty pages, ascending.
 */
export type MemorySource =
  | Uint8Array
  | ((offset: number, length: number) => Uint8Array | Promise<Uint8Array>)
  | AsyncIterable<Uint8Array>
  | Iterable<Uint8Array>;

export interface MemoryRegionInput {
  /** Also names the region's memory section: letters, digits and . _ : / - (up to 48). */
  readonly name: string;
  readonly guestAddress: number;
  readonly size: number;
  readonly source: MemorySource;
  /**
   * Diff snapshots only: the pages written since the parent, one bit per page, LSB first, as
   * KVM_GET_DIRTY_LOG returns them. It may be longer than the region (a dirty log is rounded up to
   * 64-bit words) if the extra bits are zero.
   */
  readonly dirty?: Uint8Array;
}

export interface SnapshotContents {
  /** The VM's configuration, recorded in the manifest as it is. */
  readonly vm: JsonValue;
  readonly vcpus: number;
  /** Raw kernel structures by name ("vcpu0/regs", "vm/clock"): opaque to the format. */
  readonly states?: Readonly<Record<string, Uint8Array>> | ReadonlyMap<string, Uint8Array>;
  /** What each device's save() returned, by device name. */
  readonly devices?: Readonly<Record<string, JsonValue>> | ReadonlyMap<string, JsonValue>;
  readonly memory: readonly MemoryRegionInput[];
  /** Makes this a diff of the snapshot at this path: only the dirty pages of each region are stored. */
  readonly parent?: string;
}

export interface WriteProgress {
  /** Bytes of guest memory read so far and in all, over every region. */
  readonly bytesDone: number;
  readonly bytesTotal: number;
  readonly region: string;
}

export interface WriteOptions {
  /** Called after each chunk of memory: for a progress bar. */
  readonly onProgress?: (progress: WriteProgress) => void;
  /** Abandons the snapshot between chunks; the target is left as it was. */
  readonly signal?: AbortSignal;
  /** The most bytes asked of a memory source at once (a multiple of the page size; default 4 MiB). */
  readonly chunkSize?: number;
  readonly createdAt?: Date;
  readonly tsvmmVersion?: string;
  /** The new file's mode; default SNAPSHOT_MODE. */
  readonly mode?: number;
}

export interface WriteResult {
  readonly path: string;
  readonly id: string;
  /** What a diff of this snapshot records as its parent's checksum. */
  readonly checksum: string;
  readonly fileSize: number;
  /** Bytes of guest memory stored (the memory sections' lengths; zero pages among them take no disk). */
  readonly memoryBytes: number;
  /** Bytes of memory actually written: the pages that were not all zero. */
  readonly memoryBytesWritten: number;
}

const DEFAULT_CHUNK = 4 * 1024 * 1024;

interface PlannedSection {
  readonly kind: SectionKind;
  readonly name: string;
  readonly length: number;
  offset: number;
  crc: number;
  readonly data?: Uint8Array;
  readonly region?: PlannedRegion;
}

interface PlannedRegion {
  readonly input: MemoryRegionInput;
  /** Diffs: the pagemap as stored, exactly one bit per page. */
  readonly pagemap?: Uint8Array;
  readonly storedPages: number;
}

const badInput = (message: string) => new SnapshotError('SNAPSHOT_BAD_INPUT', message);

/** Writes a snapshot to `target`, replacing any file there only once the new one is complete and on disk. */
export async function writeSnapshot(target: string, contents: SnapshotContents, options: WriteOptions = {}): Promise<WriteResult> {
  const chunkSize = options.chunkSize ?? DEFAULT_CHUNK;
  if (!Number.isSafeInteger(chunkSize) || chunkSize <= 0 || chunkSize % PAGE_SIZE !== 0) {
    throw badInput(`chunk size ${chunkSize} is not a positive multiple of ${PAGE_SIZE}`);
  }
  const id = randomBytes(16);
  const parent = contents.parent === undefined ? null : await describeParent(target, contents);
  const manifest: SnapshotManifest = {
    format: { name: 'tsvmm-snapshot', major: FORMAT_MAJOR, minor: FORMAT_MINOR, pageSize: PAGE_SIZE },
    id: idToHex(id),
    createdAt: (options.createdAt ?? new Date()).toISOString(),
    tsvmmVersion: options.tsvmmVersion ?? packageVersion(),
    vcpus: contents.vcpus,
    memory: contents.memory.map(({ name, guestAddress, size }) => ({ name, guestAddress, size })),
    parent,
    vm: contents.vm,
  };
  const sections = plan(manifest, contents);
  const fileSize = layOut(sections);
  const memorySections = sections.filter((s) => s.kind === 'memory');
  const bytesTotal = memorySections.reduce((sum, s) => sum + s.length, 0);
  let bytesDone = 0;
  let memoryBytesWritten = 0;
  let headerCrc = 0;

  await writeAtomically(target, options.mode ?? SNAPSHOT_MODE, async (file) => {
    for (const s of sections) if (s.data !== undefined) await writeAt(file, s.data, s.offset);
    for (const s of memorySections) {
      const sink = new PageSink(file, s.offset, s.length);
      const region = s.region!;
      await readSource(region, chunkSize, options.signal, async (chunk) => {
        await sink.push(chunk, region.input.name);
        bytesDone += chunk.length;
        options.onProgress?.({ bytesDone, bytesTotal, region: region.input.name });
      });
      s.crc = sink.finish(region.input.name);
      memoryBytesWritten += sink.written;
    }
    // Trailing zero pages were never written: the file must still reach its full size.
    await file.truncate(fileSize);
    const table = encodeTable(sections);
    const header = encodeHeader(id, sections.length, fileSize, crc32(table), parent !== null);
    headerCrc = new DataView(header.buffer).getUint32(HEADER_CRC_SPAN, true);
    await writeAt(file, table, HEADER_SIZE);
    await writeAt(file, header, 0);
  });

  return {
    path: target, id: manifest.id, checksum: checksumToHex(headerCrc), fileSize, memoryBytes: bytesTotal, memoryBytesWritten,
  };
}

/** Opens the parent (and its chain) to record what it is, and checks the diff can sit on it. */
async function describeParent(target: string, contents: SnapshotContents): Promise<SnapshotManifest['parent']> {
  const parentPath = contents.parent!;
  const parent = await openSnapshot(parentPath);
  try {
    const top = parent.file;
    const theirs = top.manifest.memory;
    const ours = contents.memory;
    if (theirs.length !== ours.length || theirs.some((r, i) => r.name !== ours[i]!.name || r.guestAddress !== ours[i]!.guestAddress
      || r.size !== ours[i]!.size)) {
      throw badInput(`${target}: the memory layout differs from the parent ${parentPath}'s`);
    }
    // Replacing a file of the chain with a diff that depends on it would leave a chain that loops.
    const targetReal = path.join(await realpath(path.dirname(path.resolve(target))), path.basename(target));
    for (const f of parent.chain) {
      if (await realpath(f.path) === targetReal) {
        throw badInput(`${target}: a diff cannot replace ${f.path}, which it depends on`);
      }
    }
    return {
      path: path.relative(path.dirname(path.resolve(target)), path.resolve(parentPath)),
      id: top.id,
      checksum: top.checksum,
    };
  } finally {
    await parent.close();
  }
}

/** Every section with its bytes (memory excepted), in file order; throws on anything the reader would refuse. */
function plan(manifest: SnapshotManifest, contents: SnapshotContents): PlannedSection[] {
  const manifestText = jsonText(manifest, 'the VM configuration');
  const checked = checkManifest(JSON.parse(manifestText));
  if ('problem' in checked) throw badInput(`cannot take a snapshot: ${checked.problem}`);
  const sections: PlannedSection[] = [];
  const add = (kind: SectionKind, name: string, data: Uint8Array) => {
    const problem = checkSectionName(name);
    if (problem !== undefined) throw badInput(`${kind} name "${name}" ${problem}`);
    if (sections.some((s) => s.kind === kind && s.name === name)) throw badInput(`${kind} "${name}" is given twice`);
    sections.push({ kind, name, length: data.length, offset: 0, crc: crc32(data), data });
  };
  const manifestBytes = new TextEncoder().encode(manifestText);
  if (manifestBytes.length > DEFAULT_LIMITS.maxManifestBytes) throw badInput(`the manifest is larger than ${DEFAULT_LIMITS.maxManifestBytes} bytes`);
  add('manifest', MANIFEST_NAME, manifestBytes);

  for (const [name, data] of entries(contents.states)) {
    if (!(data instanceof Uint8Array)) throw badInput(`state "${name}" is not a Uint8Array`);
    if (data.length > DEFAULT_LIMITS.maxStateBytes) throw badInput(`state "${name}" is larger than ${DEFAULT_LIMITS.maxStateBytes} bytes`);
    add('state', name, data);
  }
  for (const [name, value] of entries(contents.devices)) {
    const data = new TextEncoder().encode(jsonText(value, `the state of device "${name}"`));
    if (data.length > DEFAULT_LIMITS.maxStateBytes) throw badInput(`device "${name}" state is larger than ${DEFAULT_LIMITS.maxStateBytes} bytes`);
    add('device', name, data);
  }

  const isDiff = manifest.parent !== null;
  const regions = contents.memory.map((input): PlannedRegion => {
    const pages = input.size / PAGE_SIZE;
    if (input.source instanceof Uint8Array && input.source.length !== input.size) {
      throw badInput(`region "${input.name}" is ${input.size} bytes but its source has ${input.source.length}`);
    }
    if (!isDiff) {
      if (input.dirty !== undefined) throw badInput(`region "${input.name}" has dirty pages but the snapshot has no parent`);
      return { input, storedPages: pages };
    }
    if (!(input.dirty instanceof Uint8Array)) throw badInput(`region "${input.name}" has no dirty-page bitmap, which a diff needs`);
    if (input.dirty.length < pagemapBytes(pages)) {
      throw badInput(`the dirty-page bitmap of region "${input.name}" has ${input.dirty.length} bytes, not ${pagemapBytes(pages)}`);
    }
    const storedPages = countPages(input.dirty, pages);
    if (storedPages === undefined) throw badInput(`the dirty-page bitmap of region "${input.name}" marks pages past its end`);
    return { input, storedPages, pagemap: input.dirty.slice(0, pagemapBytes(pages)) };
  });
  for (const r of regions) if (r.pagemap !== undefined) add('pagemap', r.input.name, r.pagemap);
  for (const r of regions) {
    sections.push({ kind: 'memory', name: r.input.name, length: r.storedPages * PAGE_SIZE, offset: 0, crc: 0, region: r });
  }

  if (sections.length > DEFAULT_LIMITS.maxSections) throw badInput(`${sections.length} sections is more than ${DEFAULT_LIMITS.maxSections}`);
  const eager = sections.reduce((sum, s) => sum + (s.kind === 'memory' ? 0 : s.length), 0);
  if (eager > DEFAULT_LIMITS.maxEagerBytes) throw badInput(`${eager} bytes of state is more than ${DEFAULT_LIMITS.maxEagerBytes}`);
  return sections;
}

/** Places the sections after the table, memory on page boundaries; returns the file's size. */
function layOut(sections: PlannedSection[]): number {
  let offset = HEADER_SIZE + sections.length * ENTRY_SIZE;
  for (const s of sections) {
    if (s.kind === 'memory') offset = alignUp(offset, PAGE_SIZE);
    s.offset = offset;
    offset += s.length;
  }
  return offset;
}

function encodeTable(sections: readonly PlannedSection[]): Uint8Array {
  const table = new Uint8Array(sections.length * ENTRY_SIZE);
  const view = new DataView(table.buffer);
  sections.forEach((s, i) => SectionEntry.write(view, i * ENTRY_SIZE, {
    type: SectionType[s.kind], flags: 0, offset: BigInt(s.offset), length: BigInt(s.length), crc: s.crc, reserved: 0,
    name: encodeName(s.name),
  }));
  return table;
}

function encodeHeader(id: Uint8Array, sectionCount: number, fileSize: number, tableCrc: number, diff: boolean): Uint8Array {
  const header = SnapshotHeader.encode({
    magic: MAGIC, major: FORMAT_MAJOR, minor: FORMAT_MINOR, flags: diff ? FLAG_DIFF : 0, headerSize: HEADER_SIZE,
    sectionCount, tableOffset: BigInt(HEADER_SIZE), fileSize: BigInt(fileSize), id, tableCrc, headerCrc: 0,
  });
  new DataView(header.buffer).setUint32(HEADER_CRC_SPAN, crc32(header.subarray(0, HEADER_CRC_SPAN)), true);
  return header;
}

function jsonText(value: unknown, what: string): string {
  let text: string | undefined;
  try {
    text = JSON.stringify(value, null, 1);
  } catch (error) {
    throw badInput(`${what} cannot be stored as JSON: ${(error as Error).message}`);
  }
  if (text === undefined) throw badInput(`${what} cannot be stored as JSON`);
  return text;
}

function entries<T>(values: Readonly<Record<string, T>> | ReadonlyMap<string, T> | undefined): [string, T][] {
  if (values === undefined) return [];
  return values instanceof Map ? [...(values as ReadonlyMap<string, T>).entries()] : Object.entries(values);
}

// --- Memory --------------------------------------------------------------------------------------

/** Feeds a region's memory section to `consume` in chunks, from whichever kind of source it has. */
async function readSource(
  region: PlannedRegion, chunkSize: number, signal: AbortSignal | undefined, consume: (chunk: Uint8Array) => Promise<void>,
): Promise<void> {
  const { name, source, size } = region.input;
  const checkAbort = () => {
    if (signal?.aborted) throw new SnapshotError('SNAPSHOT_ABORTED', 'snapshot abandoned: it was cancelled');
  };
  const failed = (error: unknown) => error instanceof SnapshotError ? error
    : new SnapshotError('SNAPSHOT_WRITE_FAILED', `reading region "${name}" failed: ${(error as Error)?.message ?? String(error)}`, { cause: error });

  if (source instanceof Uint8Array || typeof source === 'function') {
    const runs: Iterable<[number, number]> = region.pagemap === undefined
      ? [[0, size / PAGE_SIZE]]
      : pageRuns(region.pagemap, size / PAGE_SIZE);
    for (const [firstPage, pageCount] of runs) {
      const end = (firstPage + pageCount) * PAGE_SIZE;
      for (let offset = firstPage * PAGE_SIZE; offset < end; offset += chunkSize) {
        checkAbort();
        const length = Math.min(chunkSize, end - offset);
        let chunk: Uint8Array;
        if (source instanceof Uint8Array) {
          chunk = source.subarray(offset, offset + length);
        } else {
          try {
            chunk = await source(offset, length);
          } catch (error) {
            throw failed(error);
          }
          if (!(chunk instanceof Uint8Array) || chunk.length !== length) {
            throw failed(new Error(`asked for ${length} bytes at ${offset}, got ${chunk instanceof Uint8Array ? chunk.length : typeof chunk}`));
          }
        }
        await consume(chunk);
      }
    }
    return;
  }

  const iterator = Symbol.asyncIterator in source
    ? (source as AsyncIterable<Uint8Array>)[Symbol.asyncIterator]()
    : (source as Iterable<Uint8Array>)[Symbol.iterator]();
  try {
    for (;;) {
      checkAbort();
      let next: IteratorResult<Uint8Array>;
      try {
        next = await iterator.next();
      } catch (error) {
        throw failed(error);
      }
      if (next.done) break;
      if (!(next.value instanceof Uint8Array)) throw failed(new Error('the source yielded something other than a Uint8Array'));
      await consume(next.value);
    }
  } catch (error) {
    // Let a generator run its finally blocks (release guest memory, say) when we stop early.
    await Promise.resolve(iterator.return?.()).catch(() => undefined);
    throw error;
  }
}

const ZERO_PAGE = Buffer.alloc(PAGE_SIZE);

/**
 * Writes a memory section from chunks of any size: whole pages that are all zero are skipped (left
 * as holes), runs of other pages are written with one call each; a page split across two chunks is
 * carried over. The CRC covers every byte, the skipped zeros included.
 */
class PageSink {
  #position = 0;
  #crc = 0;
  #carry = Buffer.alloc(PAGE_SIZE);
  #carried = 0;
  written = 0;

  constructor(private readonly file: FileHandle, private readonly base: number, private readonly length: number) {}

  async push(chunk: Uint8Array, region: string): Promise<void> {
    if (this.#position + this.#carried + chunk.length > this.length) {
      throw new SnapshotError('SNAPSHOT_WRITE_FAILED', `the source of region "${region}" gave more than its ${this.length} bytes`);
    }
    let at = 0;
    if (this.#carried > 0) {
      at = Math.min(PAGE_SIZE - this.#carried, chunk.length);
      this.#carry.set(chunk.subarray(0, at), this.#carried);
      this.#carried += at;
      if (this.#carried < PAGE_SIZE) return;
      this.#carried = 0;
      await this.#pages(this.#carry);
    }
    const whole = at + Math.floor((chunk.length - at) / PAGE_SIZE) * PAGE_SIZE;
    if (whole > at) await this.#pages(chunk.subarray(at, whole));
    if (whole < chunk.length) {
      this.#carry.set(chunk.subarray(whole));
      this.#carried = chunk.length - whole;
    }
  }

  finish(region: string): number {
    if (this.#position !== this.length) {
      throw new SnapshotError('SNAPSHOT_WRITE_FAILED',
        `the source of region "${region}" gave ${this.#position + this.#carried} bytes, not ${this.length}`);
    }
    return this.#crc;
  }

  async #pages(pages: Uint8Array): Promise<void> {
    const buffer = Buffer.from(pages.buffer, pages.byteOffset, pages.byteLength);
    if (isZero(buffer, 0, buffer.length)) {
      this.#crc = crc32Zeros(buffer.length, this.#crc);
      this.#position += buffer.length;
      return;
    }
    let runStart = 0;
    let runIsZero = isZero(buffer, 0, PAGE_SIZE);
    for (let page = PAGE_SIZE; ; page += PAGE_SIZE) {
      const atEnd = page >= buffer.length;
      const zero = !atEnd && isZero(buffer, page, PAGE_SIZE);
      if (!atEnd && zero === runIsZero) continue;
      const run = buffer.subarray(runStart, page);
      if (runIsZero) {
        this.#crc = crc32Zeros(run.length, this.#crc);
      } else {
        this.#crc = crc32(run, this.#crc);
        await writeAt(this.file, run, this.base + this.#position);
        this.written += run.length;
      }
      this.#position += run.length;
      if (atEnd) return;
      runStart = page;
      runIsZero = zero;
    }
  }
}

function isZero(buffer: Buffer, start: number, length: number): boolean {
  for (let at = start; at < start + length; at += PAGE_SIZE) {
    if (buffer.compare(ZERO_PAGE, 0, PAGE_SIZE, at, at + PAGE_SIZE) !== 0) return false;
  }
  return true;
}

// --- Atomic replacement --------------------------------------------------------------------------

async function writeAt(file: FileHandle, data: Uint8Array, position: number): Promise<void> {
  for (let done = 0; done < data.length;) {
    const { bytesWritten } = await file.write(data, done, data.length - done, position + done);
    done += bytesWritten;
  }
}

/**
 * Guest memory may hold secrets, so a snapshot is its owner's alone; and read-only, because a VM
 * restored from it maps it and reads the pages its guest has not written yet from it: rewriting
 * the file in place (cp onto it, a shell's `>`) would change the guest's memory, and for anyone
 * but root now fails with EACCES. A snapshot is replaced by writing a new file and renaming it
 * over the old (what this module does, which a read-only target allows), so VMs running from the
 * old one keep it.
 */
export const SNAPSHOT_MODE = 0o400;

const TEMP_SUFFIX = '.tmp';
const tempPattern = (base: string) => new RegExp(`^\\.${base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\.(\\d+)-[0-9a-f]{8}\\${TEMP_SUFFIX}$`);

/** Runs `body` on a fresh temporary file next to `target`, then makes it `target` durably. */
async function writeAtomically(target: string, mode: number, body: (file: FileHandle) => Promise<void>): Promise<void> {
  const directory = path.dirname(path.resolve(target));
  const base = path.basename(target);
  await removeStaleTemporaries(directory, base);
  const temporary = path.join(directory, `.${base}.${process.pid}-${randomBytes(4).toString('hex')}${TEMP_SUFFIX}`);
  let file: FileHandle | undefined;
  try {
    file = await open(temporary, 'wx', mode);
    await body(file);
    await file.sync();
    await file.close();
    file = undefined;
    await rename(temporary, target);
  } catch (error) {
    await file?.close().catch(() => undefined);
    await unlink(temporary).catch(() => undefined);
    throw error instanceof SnapshotError ? error
      : new SnapshotError('SNAPSHOT_WRITE_FAILED', `${target}: cannot write snapshot: ${ioReason(error)}`, { cause: error });
  }
  // The rename is durable only once the directory entry is; until then a crash may bring back the old file.
  try {
    const dir = await open(directory, 'r');
    try {
      await dir.sync();
    } finally {
      await dir.close();
    }
  } catch (error) {
    throw new SnapshotError('SNAPSHOT_WRITE_FAILED', `${target}: written, but its directory could not be synced: ${ioReason(error)}`,
      { cause: error });
  }
}

/**
 * A writer killed outright (kill -9, a crash) leaves its temporary file behind. The next write to
 * the same target removes those whose process is gone; a live writer's file, even in another process, stays.
 */
async function removeStaleTemporaries(directory: string, base: string): Promise<void> {
  const pattern = tempPattern(base);
  let names: string[];
  try {
    names = await readdir(directory);
  } catch {
    return; // creating the temporary file reports the real problem
  }
  for (const name of names) {
    const pid = Number(pattern.exec(name)?.[1]);
    if (!Number.isSafeInteger(pid) || pid === process.pid || pidAlive(pid)) continue;
    await unlink(path.join(directory, name)).catch(() => undefined);
  }
}
