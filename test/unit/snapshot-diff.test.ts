import { mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PAGE_SIZE, SnapshotError } from '../../src/snapshot/format.js';
import { openSnapshot, overlay, type MemoryExtent, type Snapshot } from '../../src/snapshot/reader.js';
import { writeSnapshot, type SnapshotContents } from '../../src/snapshot/writer.js';
import { guestRegion, prng, randomBytesFrom, sameBytes, tempDirectory } from '../helpers/snapshot-fixtures.js';

const dir = tempDirectory();
afterAll(() => dir.remove());
const at = (name: string) => path.join(dir.path, name);

const PAGES = 64;
const random = prng(99);

/** A one-region VM whose memory the tests change page by page, keeping a dirty log as KVM would. */
class FakeVm {
  memory = guestRegion(random, PAGES);
  // KVM rounds a dirty log up to 64-bit words.
  dirty = new Uint8Array(Math.ceil(PAGES / 64) * 8);

  touch(page: number, data: Uint8Array = randomBytesFrom(random, PAGE_SIZE)): void {
    this.memory.set(data, page * PAGE_SIZE);
    this.dirty[page >> 3]! |= 1 << (page & 7);
  }

  contents(parent?: string, source: SnapshotContents['memory'][number]['source'] = this.memory): SnapshotContents {
    return {
      vm: { memory: PAGES * PAGE_SIZE }, vcpus: 1, states: { 'vcpu0/regs': randomBytesFrom(random, 16) }, devices: { uart: { lcr: 3 } },
      memory: [{ name: 'ram', guestAddress: 0, size: PAGES * PAGE_SIZE, source, ...(parent === undefined ? {} : { dirty: this.dirty }) }],
      ...(parent === undefined ? {} : { parent }),
    };
  }

  /** Writes a snapshot (a diff if `parent` is given) and starts a fresh dirty log. */
  async snapshot(target: string, parent?: string, source?: SnapshotContents['memory'][number]['source']): Promise<Uint8Array> {
    await writeSnapshot(target, this.contents(parent, source));
    this.dirty.fill(0);
    return this.memory.slice();
  }
}

async function refusal(target: string, options = {}): Promise<SnapshotError> {
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

/** Extents must be sorted, disjoint, page-aligned and cover the region exactly. */
function checkExtents(extents: readonly MemoryExtent[], size: number): void {
  let end = 0;
  for (const e of extents) {
    expect(e.guestOffset).toBe(end);
    expect([e.fileOffset % PAGE_SIZE, e.length % PAGE_SIZE, e.length > 0]).toEqual([0, 0, true]);
    end += e.length;
  }
  expect(end).toBe(size);
}

/** Reads each extent straight from its file, as mmap would see it. */
function fromExtents(extents: readonly MemoryExtent[], size: number): Uint8Array {
  const out = new Uint8Array(size);
  const files = new Map<string, Buffer>();
  for (const e of extents) {
    const bytes = files.get(e.path) ?? readFileSync(e.path);
    files.set(e.path, bytes);
    out.set(bytes.subarray(e.fileOffset, e.fileOffset + e.length), e.guestOffset);
  }
  return out;
}

describe('diff snapshots', () => {
  it('store only the dirty pages, and a chain reads back as the latest memory', async () => {
    const vm = new FakeVm();
    const base = await vm.snapshot(at('base.snap'));
    [1, 2, 3, 9, 63].forEach((p) => vm.touch(p));
    vm.touch(10, new Uint8Array(PAGE_SIZE)); // a page that became zero must hide the parent's
    const first = await vm.snapshot(at('diff1.snap'), at('base.snap'));
    for (let p = 20; p < 31; p++) vm.touch(p);
    vm.touch(2);
    const second = await vm.snapshot(at('diff2.snap'), at('diff1.snap'), (o, l) => vm.memory.slice(o, o + l));

    const snapshot = await openSnapshot(at('diff2.snap'), { verifyMemory: true });
    try {
      expect(snapshot.chain.map((f) => path.basename(f.path))).toEqual(['base.snap', 'diff1.snap', 'diff2.snap']);
      expect(snapshot.chain.map((f) => f.isDiff)).toEqual([false, true, true]);
      expect(snapshot.manifest.parent).toEqual({ path: 'diff1.snap', id: snapshot.chain[1]!.id, checksum: snapshot.chain[1]!.checksum });
      const diffMemory = snapshot.file.memorySection('ram');
      expect(diffMemory.length).toBe(12 * PAGE_SIZE);
      expect([...snapshot.file.pagemap('ram')!]).toEqual([0b100, 0, 0b1111_0000, 0b0111_1111, 0, 0, 0, 0]);

      const extents = snapshot.memoryExtents('ram');
      checkExtents(extents, PAGES * PAGE_SIZE);
      const owner = (page: number) => path.basename(extents.find((e) => e.guestOffset <= page * PAGE_SIZE
        && page * PAGE_SIZE < e.guestOffset + e.length)!.path);
      expect([0, 1, 2, 3, 4, 9, 10, 11, 19, 20, 30, 31, 63].map(owner)).toEqual([
        'base.snap', 'diff1.snap', 'diff2.snap', 'diff1.snap', 'base.snap', 'diff1.snap', 'diff1.snap', 'base.snap', 'base.snap',
        'diff2.snap', 'diff2.snap', 'base.snap', 'diff1.snap',
      ]);
      // Runs of one file merge: base [0,1) d1 [1,2) d2 [2,3) d1 [3,4) base [4,9) d1 [9,11) base [11,20) d2 [20,31) base [31,63) d1 [63,64).
      expect(extents).toHaveLength(10);
      expect(sameBytes(fromExtents(extents, PAGES * PAGE_SIZE), second)).toBe(true);
      expect(sameBytes(await snapshot.readMemory('ram', 0, PAGES * PAGE_SIZE), second)).toBe(true);
      expect(snapshot.state('vcpu0/regs')).toHaveLength(16);
    } finally {
      await snapshot.close();
    }
    for (const [file, memory] of [['base.snap', base], ['diff1.snap', first]] as const) {
      const older = await openSnapshot(at(file));
      expect(sameBytes(await older.readMemory('ram', 0, PAGES * PAGE_SIZE), memory)).toBe(true);
      await older.close();
    }
  });

  it('take the dirty pages from an iterable source as packed pages, and may store none', async () => {
    const vm = new FakeVm();
    await vm.snapshot(at('it-base.snap'));
    vm.touch(5);
    vm.touch(6);
    vm.touch(40);
    const packed = [5, 6, 40].map((p) => vm.memory.slice(p * PAGE_SIZE, (p + 1) * PAGE_SIZE));
    const expected = await vm.snapshot(at('it-diff.snap'), at('it-base.snap'), packed);
    await vm.snapshot(at('it-empty.snap'), at('it-diff.snap'), []);
    const snapshot = await openSnapshot(at('it-empty.snap'), { verifyMemory: true });
    expect(snapshot.file.memorySection('ram').length).toBe(0);
    expect(snapshot.memoryExtents('ram').map((e) => [path.basename(e.path), e.guestOffset / PAGE_SIZE, e.length / PAGE_SIZE])).toEqual([
      ['it-base.snap', 0, 5], ['it-diff.snap', 5, 2], ['it-base.snap', 7, 33], ['it-diff.snap', 40, 1], ['it-base.snap', 41, 23],
    ]);
    expect(sameBytes(await snapshot.readMemory('ram', 0, PAGES * PAGE_SIZE), expected)).toBe(true);
    await snapshot.close();
  });

  it('find their parent relative to themselves, so a chain can be moved as a whole', async () => {
    const vm = new FakeVm();
    mkdirSync(at('a'));
    await vm.snapshot(at('a/base.snap'));
    vm.touch(7);
    const expected = await vm.snapshot(at('a/diff.snap'), at('a/base.snap'));
    renameSync(at('a'), at('b'));
    const snapshot = await openSnapshot(at('b/diff.snap'));
    expect(snapshot.chain[0]!.path).toBe(at('b/base.snap'));
    expect(sameBytes(await snapshot.readMemory('ram', 0, PAGES * PAGE_SIZE), expected)).toBe(true);
    await snapshot.close();
  });

  it('refuse a missing parent, a parent that was replaced, a loop and an overlong chain', async () => {
    const vm = new FakeVm();
    await vm.snapshot(at('p-base.snap'));
    vm.touch(1);
    await vm.snapshot(at('p-diff.snap'), at('p-base.snap'));
    vm.touch(2);
    await vm.snapshot(at('p-diff2.snap'), at('p-diff.snap'));

    expect(await refusal(at('p-diff2.snap'), { limits: { maxChainDepth: 2 } })).toMatchObject({
      code: 'SNAPSHOT_CHAIN_TOO_LONG', message: `${at('p-diff2.snap')}: the chain of diffs is longer than 2 files`,
    });

    // A corrupt parent is refused as itself.
    const original = readFileSync(at('p-base.snap'));
    const corrupt = Buffer.from(original);
    corrupt[100]! ^= 1;
    writeFileSync(at('p-base.snap'), corrupt);
    expect(await refusal(at('p-diff2.snap'))).toMatchObject({ code: 'SNAPSHOT_CORRUPT', message: expect.stringContaining(`${at('p-base.snap')}: `) });

    // Another snapshot taken to the same path is not the parent the diff was taken from.
    await new FakeVm().snapshot(at('p-base.snap'));
    expect(await refusal(at('p-diff2.snap'))).toMatchObject({
      code: 'SNAPSHOT_PARENT_MISMATCH',
      message: expect.stringMatching(new RegExp(`^${at('p-diff.snap')}: its parent ${at('p-base.snap')} is not the snapshot it was taken from \\(id [0-9a-f]{8}, checksum [0-9a-f]{8}; expected id [0-9a-f]{8}, checksum [0-9a-f]{8}\\)$`)),
    });
    writeFileSync(at('p-base.snap'), original);
    await (await openSnapshot(at('p-diff2.snap'))).close();

    rmSync(at('p-base.snap'));
    expect(await refusal(at('p-diff2.snap'))).toMatchObject({
      code: 'SNAPSHOT_PARENT_MISSING', message: `${at('p-diff.snap')}: its parent snapshot ${at('p-base.snap')}: no such file`,
    });

    // A loop cannot be written through writeSnapshot (below); a file moved over its ancestor makes one.
    writeFileSync(at('p-base.snap'), original);
    await vm.snapshot(at('p-loop.snap'), at('p-diff2.snap'));
    renameSync(at('p-loop.snap'), at('p-diff.snap'));
    expect(await refusal(at('p-diff.snap'))).toMatchObject({
      code: 'SNAPSHOT_CHAIN_CYCLE',
      message: `${at('p-diff.snap')}: the chain of diffs loops: ${at('p-diff.snap')} -> ${at('p-diff2.snap')} -> ${at('p-diff.snap')}`,
    });
  });

  it('refuse to be written against a parent they cannot sit on', async () => {
    const vm = new FakeVm();
    await vm.snapshot(at('w-base.snap'));
    vm.touch(3);
    await vm.snapshot(at('w-diff.snap'), at('w-base.snap'));
    vm.touch(4);
    const contents = vm.contents(at('w-diff.snap'));
    const region = contents.memory[0]!;
    const refused = async (target: string, change: Partial<SnapshotContents>, message: RegExp) => {
      await expect(writeSnapshot(target, { ...contents, ...change })).rejects.toMatchObject({ code: 'SNAPSHOT_BAD_INPUT', message: expect.stringMatching(message) });
    };
    await refused(at('w-diff.snap'), {}, /a diff cannot replace .*w-diff\.snap, which it depends on/);
    await refused(at('w-base.snap'), {}, /a diff cannot replace .*w-base\.snap, which it depends on/);
    await refused(at('w-x.snap'), { memory: [{ ...region, size: PAGE_SIZE * 32, source: vm.memory.subarray(0, PAGE_SIZE * 32) }] }, /memory layout differs/);
    await refused(at('w-x.snap'), { memory: [{ ...region, dirty: undefined }] }, /no dirty-page bitmap/);
    await refused(at('w-x.snap'), { memory: [{ ...region, dirty: new Uint8Array(7) }] }, /has 7 bytes, not 8/);
    await refused(at('w-x.snap'), { memory: [{ ...region, dirty: Uint8Array.of(0, 0, 0, 0, 0, 0, 0, 0, 1) }] }, /marks pages past its end/);
    await expect(writeSnapshot(at('w-x.snap'), { ...contents, parent: at('nothing.snap') })).rejects.toMatchObject({ code: 'SNAPSHOT_UNREADABLE' });
    await expect(writeSnapshot(at('w-x.snap'), { ...contents, memory: [{ ...region, source: [new Uint8Array(PAGE_SIZE * 2)] }] }))
      .rejects.toMatchObject({ code: 'SNAPSHOT_WRITE_FAILED', message: 'the source of region "ram" gave more than its 4096 bytes' });
  });
});

describe('overlay', () => {
  const e = (path: string, guestOffset: number, length: number, fileOffset = 1000 + guestOffset): MemoryExtent =>
    ({ path, fd: path.charCodeAt(0), fileOffset, guestOffset, length });

  it('cuts the base around the top extents and merges what joins up', () => {
    expect(overlay([e('b', 0, 100)], [e('t', 0, 10, 0), e('t', 20, 10, 10), e('t', 90, 10, 20)])).toEqual([
      e('t', 0, 10, 0), e('b', 10, 10), e('t', 20, 10, 10), e('b', 30, 60), e('t', 90, 10, 20),
    ]);
    // A top extent spanning two base extents; and base pieces that are contiguous in their file merge again.
    expect(overlay([e('b', 0, 50), e('c', 50, 50)], [e('t', 40, 20, 0)])).toEqual([e('b', 0, 40), e('t', 40, 20, 0), e('c', 60, 40)]);
    expect(overlay([e('b', 0, 30), e('t', 30, 10, 500)], [e('t', 10, 10, 490), e('t', 40, 10, 510)])).toEqual([
      e('b', 0, 10), e('t', 10, 10, 490), e('b', 20, 10), e('t', 30, 20, 500),
    ]);
    expect(overlay([e('b', 0, 100)], [])).toEqual([e('b', 0, 100)]);
  });
});
