import { execFileSync } from 'node:child_process';
import { appendFileSync, readFileSync, truncateSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { runs } from '../helpers/fuzz.js';
import { crc32 } from '../../src/snapshot/crc32.js';
import { PAGE_SIZE, SectionType, SnapshotError, type SnapshotErrorCode } from '../../src/snapshot/format.js';
import { openSnapshot, verifySnapshot, type Snapshot } from '../../src/snapshot/reader.js';
import { writeSnapshot, type SnapshotContents } from '../../src/snapshot/writer.js';
import { forge, prng, replaceSection, sampleVm, sectionName, tempDirectory, sameBytes, type Entry } from '../helpers/snapshot-fixtures.js';

const dir = tempDirectory();
afterAll(() => dir.remove());
let counter = 0;
const file = (name = 'vm') => path.join(dir.path, `${name}-${counter++}.snap`);

async function refusal(target: string, options: Parameters<typeof openSnapshot>[1] = {}): Promise<SnapshotError> {
  let snapshot: Snapshot | undefined;
  try {
    snapshot = await openSnapshot(target, options);
  } catch (error) {
    expect(error).toBeInstanceOf(SnapshotError);
    return error as SnapshotError;
  } finally {
    await snapshot?.close();
  }
  throw new Error(`${target} was accepted`);
}

async function expectRefused(image: Uint8Array, code: SnapshotErrorCode, message?: RegExp, options = {}): Promise<void> {
  const target = file('bad');
  writeFileSync(target, image);
  const error = await refusal(target, options);
  expect({ code: error.code, message: error.message }).toEqual({ code, message: expect.stringMatching(message ?? /./) });
  // One line, starting with the file it is about.
  expect(error.message).not.toContain('\n');
  expect(error.message.startsWith(`${target}: `)).toBe(true);
}

const vm = sampleVm();
const good = file('good');
const goodResult = await writeSnapshot(good, vm.contents, { createdAt: new Date('2026-11-23T10:00:00Z'), tsvmmVersion: '9.9.9' });
const image = new Uint8Array(readFileSync(good));
const reference = await openSnapshot(good);
const sections = reference.file.sections;
const memorySpans = sections.filter((s) => s.kind === 'memory').map((s) => [s.offset, s.offset + s.length] as const);
await reference.close();

describe('snapshot round trip', () => {
  it('gives back the manifest, every state and device, and memory byte for byte', async () => {
    const snapshot = await openSnapshot(good, { verifyMemory: true });
    try {
      expect(snapshot.manifest).toEqual({
        format: { name: 'tsvmm-snapshot', major: 1, minor: 0, pageSize: 4096 },
        id: goodResult.id,
        createdAt: '2026-11-23T10:00:00.000Z',
        tsvmmVersion: '9.9.9',
        vcpus: 2,
        memory: [{ name: 'ram', guestAddress: 0, size: vm.ram.length }, { name: 'high', guestAddress: 0x100000, size: vm.high.length }],
        parent: null,
        vm: vm.contents.vm,
      });
      expect(snapshot.chain).toHaveLength(1);
      expect(snapshot.file.checksum).toBe(goodResult.checksum);
      expect(snapshot.file.fileSize).toBe(goodResult.fileSize);
      const states = vm.contents.states as Record<string, Uint8Array>;
      expect(snapshot.stateNames).toEqual(Object.keys(states));
      for (const [name, data] of Object.entries(states)) expect(snapshot.state(name)).toEqual(data);
      expect(Object.fromEntries(snapshot.deviceNames.map((n) => [n, snapshot.device(n)]))).toEqual(vm.contents.devices);
      expect(sameBytes(await snapshot.readMemory('ram', 0, vm.ram.length), vm.ram)).toBe(true);
      expect(sameBytes(await snapshot.readMemory('high', 0, vm.high.length), vm.high)).toBe(true);
      expect(sameBytes(await snapshot.readMemory('ram', 5000, 9000), vm.ram.subarray(5000, 14000))).toBe(true);
    } finally {
      await snapshot.close();
    }
  });

  it('puts each region in one page-aligned extent that holds its bytes, ready to mmap', async () => {
    const snapshot = await openSnapshot(good);
    try {
      for (const [name, bytes] of [['ram', vm.ram], ['high', vm.high]] as const) {
        const extents = snapshot.memoryExtents(name);
        expect(extents).toEqual([{ path: good, fd: snapshot.file.fd, fileOffset: expect.any(Number), guestOffset: 0, length: bytes.length }]);
        const [extent] = extents;
        expect(extent!.fileOffset % PAGE_SIZE).toBe(0);
        expect(sameBytes(image.subarray(extent!.fileOffset, extent!.fileOffset + extent!.length), bytes)).toBe(true);
      }
    } finally {
      await snapshot.close();
    }
  });

  it('lays the file out as the format says', () => {
    const v = new DataView(image.buffer);
    expect(new TextDecoder().decode(image.subarray(0, 8))).toBe('TSVMMSNP');
    expect([v.getUint16(8, true), v.getUint16(10, true), v.getUint32(16, true)]).toEqual([1, 0, 64]);
    expect(Number(v.getBigUint64(24, true))).toBe(64);
    expect(Number(v.getBigUint64(32, true))).toBe(image.length);
    expect(v.getUint32(60, true)).toBe(crc32(image.subarray(0, 60)));
    expect(sections.map((s) => `${s.kind}:${s.name}`)).toEqual([
      'manifest:manifest', 'state:vm/clock', 'state:vcpu0/regs', 'state:vcpu0/sregs', 'state:vcpu1/regs', 'state:vcpu1/empty',
      'device:serial0', 'device:i8042', 'memory:ram', 'memory:high',
    ]);
    for (const s of sections) expect(crc32(image.subarray(s.offset, s.offset + s.length))).toBe(s.crc);
  });

  it('takes memory from a Uint8Array, a read function or an iterable of odd-sized chunks alike', async () => {
    const chunks = function* (bytes: Uint8Array, size: number) {
      for (let at = 0; at < bytes.length; at += size) yield bytes.slice(at, at + size);
    };
    const reads: [number, number][] = [];
    const variants: SnapshotContents['memory'][] = [
      [
        { name: 'ram', guestAddress: 0, size: vm.ram.length, source: (o, l) => (reads.push([o, l]), vm.ram.slice(o, o + l)) },
        { name: 'high', guestAddress: 0x100000, size: vm.high.length, source: chunks(vm.high, 1000) },
      ],
      [
        { name: 'ram', guestAddress: 0, size: vm.ram.length, source: (async function* () { yield* chunks(vm.ram, 4097); })() },
        { name: 'high', guestAddress: 0x100000, size: vm.high.length, source: async (o, l) => vm.high.subarray(o, o + l) },
      ],
    ];
    for (const memory of variants) {
      const target = file();
      await writeSnapshot(target, { ...vm.contents, memory }, { chunkSize: 3 * PAGE_SIZE });
      const snapshot = await openSnapshot(target, { verifyMemory: true });
      expect(sameBytes(await snapshot.readMemory('ram', 0, vm.ram.length), vm.ram)).toBe(true);
      expect(sameBytes(await snapshot.readMemory('high', 0, vm.high.length), vm.high)).toBe(true);
      // Not just the same memory: the same bytes in the file, holes and all.
      const again = new Uint8Array(readFileSync(target));
      for (const s of snapshot.file.sections.filter((x) => x.kind === 'memory')) {
        const before = sections.find((x) => x.kind === 'memory' && x.name === s.name)!;
        expect(s.crc).toBe(before.crc);
        expect(sameBytes(again.subarray(s.offset, s.offset + s.length), image.subarray(before.offset, before.offset + before.length))).toBe(true);
      }
      await snapshot.close();
    }
    expect(reads.every(([o, l]) => o % PAGE_SIZE === 0 && l <= 3 * PAGE_SIZE)).toBe(true);
  });

  it('reports progress over all of memory, ending at the total', async () => {
    const seen: number[] = [];
    await writeSnapshot(file(), vm.contents, { chunkSize: 4 * PAGE_SIZE, onProgress: (p) => {
      expect(p.bytesTotal).toBe(vm.ram.length + vm.high.length);
      seen.push(p.bytesDone);
    } });
    expect(seen).toEqual([...seen].sort((a, b) => a - b));
    expect(seen.at(-1)).toBe(vm.ram.length + vm.high.length);
    expect(seen.length).toBe(8);
    const verified: number[] = [];
    expect(await verifySnapshot(good, { onProgress: (p) => verified.push(p.bytesDone) })).toEqual({ files: 1, memoryBytes: 32 * PAGE_SIZE });
    expect(verified.at(-1)).toBe(32 * PAGE_SIZE);
  });

  it('refuses contents it could not read back', async () => {
    const { contents } = vm;
    const ram = contents.memory[0]!;
    const bad = async (change: Partial<SnapshotContents>, message: RegExp) => {
      const target = file('refused');
      await expect(writeSnapshot(target, { ...contents, ...change })).rejects.toThrow(message);
      await expect(writeSnapshot(target, { ...contents, ...change })).rejects.toMatchObject({ code: 'SNAPSHOT_BAD_INPUT' });
    };
    await bad({ vcpus: 0 }, /invalid vCPU count 0/);
    await bad({ memory: [] }, /memory regions/);
    await bad({ memory: [{ ...ram, size: 100 }] }, /invalid address or size/);
    await bad({ memory: [{ ...ram, name: 'no spaces' }] }, /invalid name/);
    await bad({ memory: [{ ...ram, size: 2 * PAGE_SIZE }] }, /source has/);
    await bad({ memory: [{ ...ram, dirty: new Uint8Array(3) }] }, /no parent/);
    await bad({ memory: [contents.memory[1]!, ram] }, /out of order/);
    await bad({ states: { 'a b': new Uint8Array(1) } }, /state name "a b"/);
    await bad({ states: { ['x'.repeat(49)]: new Uint8Array(1) } }, /longer than 48/);
    await bad({ devices: { uart: { value: 1n } as never } }, /device "uart" cannot be stored as JSON/);
    await bad({ vm: undefined as never }, /no VM configuration/);
  });
});

describe('snapshot reader refusals', () => {
  it('refuses files that are not snapshots', async () => {
    await expectRefused(new Uint8Array(0), 'SNAPSHOT_NOT_A_SNAPSHOT', /is empty/);
    await expectRefused(new TextEncoder().encode('#!/bin/sh\necho not a snapshot\n'.repeat(10)), 'SNAPSHOT_NOT_A_SNAPSHOT', /no TSVMMSNP magic/);
    await expectRefused(readFileSync('guests/build/hello.elf'), 'SNAPSHOT_NOT_A_SNAPSHOT', /not a tsvmm snapshot/);
    await expectRefused(Uint8Array.of(0x54, 0x53, 0x56), 'SNAPSHOT_TRUNCATED');
    await expectRefused(Uint8Array.of(0x54, 0x53, 0x55), 'SNAPSHOT_NOT_A_SNAPSHOT');
    const missing = path.join(dir.path, 'missing.snap');
    expect(await refusal(missing)).toMatchObject({ code: 'SNAPSHOT_UNREADABLE', message: `${missing}: cannot open snapshot: no such file` });
    expect(await refusal(dir.path)).toMatchObject({ code: 'SNAPSHOT_NOT_A_SNAPSHOT', message: expect.stringMatching(/not a regular file/) });
    const fifo = path.join(dir.path, 'fifo');
    execFileSync('mkfifo', [fifo]);
    expect(await refusal(fifo)).toMatchObject({ code: 'SNAPSHOT_NOT_A_SNAPSHOT', message: `${fifo}: is not a regular file` });
  });

  it('refuses another major version and a newer minor one, before anything else', async () => {
    await expectRefused(forge(image, (h) => { h.major = 2; }), 'SNAPSHOT_VERSION', /: snapshot format 2\.0 is newer than this tsvmm supports \(1\.x\)$/);
    await expectRefused(forge(image, (h) => { h.major = 0; h.minor = 9; }), 'SNAPSHOT_VERSION', /format 0\.9 is older than this tsvmm supports \(1\.x\)$/);
    await expectRefused(forge(image, (h) => { h.minor = 1; }), 'SNAPSHOT_VERSION', /format 1\.1 is newer than this tsvmm supports \(1\.0\)$/);
    // A newer format may have a header this version cannot check: the version still speaks first.
    const newer = image.slice();
    new DataView(newer.buffer).setUint16(8, 2, true);
    await expectRefused(newer, 'SNAPSHOT_VERSION', /format 2\.0 is newer/);
  });

  it('refuses a file cut short anywhere', async () => {
    const random = prng(3);
    const cuts = new Set([1, 7, 8, 63, 64, 65, 64 + 80 * sections.length - 1, image.length - 1]);
    for (let at = 0; at < 2048; at += 61) cuts.add(at || 1);
    for (const [start, end] of memorySpans) cuts.add(start).add(start + 1).add(end - 1);
    while (cuts.size < 120) cuts.add(1 + Math.floor(random() * (image.length - 1)));
    const target = file('cut');
    for (const at of cuts) {
      writeFileSync(target, image);
      truncateSync(target, at);
      const error = await refusal(target);
      expect([at, error.code]).toEqual([at, 'SNAPSHOT_TRUNCATED']);
    }
  });

  it('refuses a corrupt header, section table or section, naming it', async () => {
    const flip = (offset: number) => {
      const copy = image.slice();
      copy[offset]! ^= 0x20;
      return copy;
    };
    const section = (kind: string, name: string) => sections.find((s) => s.kind === kind && s.name === name)!;
    await expectRefused(flip(45), 'SNAPSHOT_CORRUPT', /: the header is corrupt \(CRC 0x[0-9a-f]{8}, expected 0x[0-9a-f]{8}\)$/);
    await expectRefused(flip(64 + 80 + 3), 'SNAPSHOT_CORRUPT', /the section table is corrupt/);
    await expectRefused(flip(section('manifest', 'manifest').offset + 10), 'SNAPSHOT_CORRUPT', /the manifest is corrupt/);
    await expectRefused(flip(section('state', 'vcpu0/sregs').offset + 300), 'SNAPSHOT_CORRUPT', /state section "vcpu0\/sregs" is corrupt/);
    await expectRefused(flip(section('device', 'i8042').offset), 'SNAPSHOT_CORRUPT', /device section "i8042" is corrupt/);
    const ram = section('memory', 'ram');
    await expectRefused(flip(ram.offset - 1), 'SNAPSHOT_CORRUPT', /the padding before memory section "ram" is corrupt/);
    await expectRefused(flip(ram.offset + 5000), 'SNAPSHOT_CORRUPT', /memory section "ram" is corrupt/, { verifyMemory: true });
  });

  it('refuses sections that overlap, leave the file, are misplaced or repeated, even with good CRCs', async () => {
    const entry = (entries: Entry[], kind: keyof typeof SectionType, name: string) =>
      entries.find((e) => e.type === SectionType[kind] && sectionName(e) === name)!;
    const layout = async (edit: Parameters<typeof forge>[1], message: RegExp) =>
      expectRefused(forge(image, edit), 'SNAPSHOT_BAD_LAYOUT', message);
    await layout((_h, e) => { entry(e, 'state', 'vcpu0/regs').offset = entry(e, 'manifest', 'manifest').offset + 8n; }, /overlaps/);
    await layout((_h, e) => { entry(e, 'state', 'vcpu0/regs').length = 1n << 20n; }, /state section "vcpu0\/regs" extends past the end/);
    await layout((_h, e) => { entry(e, 'memory', 'ram').offset -= 8n; }, /memory section "ram" is not page-aligned/);
    await layout((_h, e) => { entry(e, 'memory', 'high').offset = 1n << 62n; }, /extends past the end/);
    await layout((_h, e) => { entry(e, 'memory', 'high').length -= BigInt(PAGE_SIZE); }, /unused bytes after|not the \d+ its region needs/);
    await layout((_h, e) => { entry(e, 'device', 'i8042').type = 77; }, /section 7 has unknown type 77/);
    await layout((_h, e) => { entry(e, 'device', 'i8042').name = new TextEncoder().encode('serial0'); }, /device section "serial0" appears twice/);
    await layout((_h, e) => { entry(e, 'device', 'i8042').name = Uint8Array.of(0x41, 0, 0x42); }, /section 7 has an invalid name/);
    await layout((_h, e) => { entry(e, 'device', 'i8042').reserved = 1; }, /reserved fields/);
    await layout((h) => { h.flags |= 0x80; }, /unknown flags 0x00000080/);
    await layout((h) => { h.tableOffset = BigInt(image.length); }, /section table outside the file/);
    await layout((h) => { h.headerSize = 128; }, /header of 128 bytes/);
    await layout((_h, e) => { entry(e, 'memory', 'high').name = new TextEncoder().encode('low'); }, /no memory section for region "high"/);
    await layout((_h, e) => { entry(e, 'manifest', 'manifest').type = SectionType.state; }, /has no manifest/);
    await layout((_h, e) => { entry(e, 'state', 'vm/clock').type = SectionType.manifest; }, /has a manifest named "vm\/clock"/);
    // A shorter table leaves the old entries behind, in what is now padding: it must be zero.
    await expectRefused(forge(image, (h, e) => { h.sectionCount -= 2; e.splice(-2); }), 'SNAPSHOT_CORRUPT',
      /the padding before the manifest is corrupt \(not zero\)/);
    const grown = new Uint8Array(image.length + PAGE_SIZE);
    grown.set(image);
    await expectRefused(forge(grown, (h) => { h.fileSize += BigInt(PAGE_SIZE); }), 'SNAPSHOT_BAD_LAYOUT', /4096 unused bytes after memory section "high"/);
    const trailing = file('trailing');
    writeFileSync(trailing, image);
    appendFileSync(trailing, 'x');
    expect(await refusal(trailing)).toMatchObject({ code: 'SNAPSHOT_BAD_LAYOUT', message: `${trailing}: has 1 bytes after its end (${image.length} bytes)` });
  });

  it('refuses oversized sections and tables, by their declared size, before reading them', async () => {
    const limited = async (limits: object, message: RegExp) => {
      const error = await refusal(good, { limits });
      expect([error.code, error.message]).toEqual(['SNAPSHOT_TOO_LARGE', expect.stringMatching(message)]);
    };
    await limited({ maxStateBytes: 200 }, /state section "vcpu0\/sregs" is 312 bytes, more than 200/);
    await limited({ maxManifestBytes: 100 }, /the manifest is \d+ bytes, more than 100/);
    await limited({ maxSections: 4 }, /has 10 sections, more than 4/);
    await limited({ maxEagerBytes: 1000 }, /bytes of state, more than 1000/);
    const huge = forge(image, (_h, e) => { e.find((x) => sectionName(x) === 'vcpu0/regs')!.length = 65n << 20n; });
    await expectRefused(huge, 'SNAPSHOT_TOO_LARGE', /state section "vcpu0\/regs" is 68157440 bytes, more than 67108864/);
    await expectRefused(forge(image, (h) => { h.sectionCount = 100_000; }), 'SNAPSHOT_TOO_LARGE', /100000 sections/);
    await expectRefused(forge(image, (_h, e) => { e[0]!.length = 1n << 63n; }), 'SNAPSHOT_TOO_LARGE', /the manifest is 9223372036854775808 bytes/);
  });

  it('refuses a manifest or device state that is not what it should be, even with good CRCs', async () => {
    const manifestBytes = image.subarray(sections[0]!.offset, sections[0]!.offset + sections[0]!.length);
    const manifest = JSON.parse(new TextDecoder().decode(manifestBytes)) as Record<string, unknown>;
    const withManifest = (value: unknown) => {
      const text = new TextEncoder().encode(JSON.stringify(value));
      const padded = new Uint8Array(manifestBytes.length).fill(0x20);
      padded.set(text);
      return replaceSection(image, 'manifest', padded);
    };
    const bad = (value: unknown, message: RegExp) => expectRefused(withManifest(value), 'SNAPSHOT_BAD_MANIFEST', message);
    await expectRefused(replaceSection(image, 'manifest', manifestBytes.slice().fill(0x7b)), 'SNAPSHOT_BAD_MANIFEST', /the manifest is not valid JSON/);
    await expectRefused(replaceSection(image, 'manifest', manifestBytes.slice().fill(0xff)), 'SNAPSHOT_BAD_MANIFEST', /not valid JSON/);
    await bad([1, 2], /invalid manifest: not a JSON object/);
    await bad({ ...manifest, id: 'ab'.repeat(16) }, /different ids/);
    await bad({ ...manifest, vcpus: 1e9 }, /invalid vCPU count 1000000000/);
    await bad({ ...manifest, memory: [] }, /not 1 to 256 memory regions/);
    await bad({ ...manifest, memory: [{ name: 'ram', guestAddress: 0, size: 2 ** 60 }] }, /invalid address or size/);
    await bad({ ...manifest, format: { name: 'tsvmm-snapshot', major: 1, minor: 0, pageSize: 65536 } }, /page size 65536/);
    await bad({ ...manifest, parent: { path: 'x', id: 'ab'.repeat(16), checksum: '01234567' } }, /is not a diff but its manifest names a parent/);
    await bad({ ...manifest, createdAt: 'yesterday' }, /invalid creation time/);
    const memoryList = manifest.memory as object[];
    await expectRefused(withManifest({ ...manifest, memory: memoryList.slice(0, 1) }), 'SNAPSHOT_BAD_LAYOUT', /memory section "high" belongs to no memory region/);
    const device = sections.find((s) => s.name === 'i8042')!;
    await expectRefused(replaceSection(image, 'i8042', new Uint8Array(device.length).fill(0x5b)), 'SNAPSHOT_BAD_MANIFEST', /device section "i8042" is not valid JSON/);
  });

  it('refuses random corruption anywhere outside memory; inside memory, verifyMemory catches it', async () => {
    const target = file('flipped');
    const inMemory = (offset: number) => memorySpans.some(([start, end]) => offset >= start && offset < end);
    const codes = new Map<string, number>();
    let memoryFlips = 0;
    // Half the flips in the header, table and state, which are a small part of the file.
    const flip = fc.tuple(fc.oneof(fc.nat({ max: memorySpans[0]![0] - 1 }), fc.nat({ max: image.length - 1 })), fc.integer({ min: 1, max: 255 }));
    await fc.assert(fc.asyncProperty(fc.array(flip, { minLength: 1, maxLength: 3 }), async (flips) => {
      const copy = image.slice();
      const offsets = flips.map(([o]) => o);
      for (const [o, x] of flips) copy[o]! ^= x;
      writeFileSync(target, copy);
      if (offsets.every(inMemory)) {
        memoryFlips++;
        const opened = await openSnapshot(target);
        await opened.close();
        const error = await refusal(target, { verifyMemory: true });
        expect(error.code).toBe('SNAPSHOT_CORRUPT');
        expect(error.message).toMatch(/memory section "(ram|high)" is corrupt/);
      } else {
        const error = await refusal(target);
        codes.set(error.code, (codes.get(error.code) ?? 0) + 1);
      }
    }), runs(600));
    expect(memoryFlips).toBeGreaterThan(100);
    // What random corruption is caught as: mostly CRC mismatches; the magic and version are read first.
    expect([...codes.keys()].sort()).toEqual(expect.arrayContaining(['SNAPSHOT_CORRUPT', 'SNAPSHOT_NOT_A_SNAPSHOT']));
    expect([...codes.keys()].every((c) => ['SNAPSHOT_CORRUPT', 'SNAPSHOT_NOT_A_SNAPSHOT', 'SNAPSHOT_VERSION'].includes(c))).toBe(true);
  });
});
