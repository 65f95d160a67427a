import { statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { PAGE_SIZE } from '../../src/snapshot/format.js';
import { openSnapshot } from '../../src/snapshot/reader.js';
import { writeSnapshot } from '../../src/snapshot/writer.js';
import { prng, randomBytesFrom, sameBytes, tempDirectory } from '../helpers/snapshot-fixtures.js';

const dir = tempDirectory();
afterAll(() => dir.remove());
const MiB = 1024 * 1024;

describe('sparse memory sections', () => {
  it('a 256 MiB region of mostly zeros takes little disk, and still reads and verifies whole', async () => {
    const size = 256 * MiB;
    const random = prng(11);
    // A page of data every 32 MiB, the last page, and the page just before the first 4 MiB chunk ends.
    const dataPages = new Map<number, Uint8Array>();
    for (let at = 0; at < size; at += 32 * MiB) dataPages.set(at + 5 * PAGE_SIZE, randomBytesFrom(random, PAGE_SIZE));
    dataPages.set(size - PAGE_SIZE, randomBytesFrom(random, PAGE_SIZE));
    dataPages.set(4 * MiB - PAGE_SIZE, randomBytesFrom(random, PAGE_SIZE));
    const zeros = new Uint8Array(4 * MiB);
    const source = (offset: number, length: number) => {
      const inside = [...dataPages].filter(([at]) => at >= offset && at < offset + length);
      if (inside.length === 0) return zeros.subarray(0, length);
      const chunk = new Uint8Array(length);
      for (const [at, data] of inside) chunk.set(data, at - offset);
      return chunk;
    };
    const target = path.join(dir.path, 'sparse.snap');
    const started = performance.now();
    const result = await writeSnapshot(target, { vm: {}, vcpus: 1, memory: [{ name: 'ram', guestAddress: 0, size, source }] });
    const seconds = (performance.now() - started) / 1000;

    const stat = statSync(target);
    expect(stat.size).toBeGreaterThan(size);
    expect(result.memoryBytes).toBe(size);
    expect(result.memoryBytesWritten).toBe(dataPages.size * PAGE_SIZE);
    // 10 data pages, the header and table: a few dozen KiB where the apparent size is 256 MiB.
    expect(stat.blocks * 512).toBeLessThan(1 * MiB);
    expect(seconds).toBeLessThan(10);

    const snapshot = await openSnapshot(target, { verifyMemory: true });
    try {
      expect(snapshot.memoryExtents('ram')).toHaveLength(1);
      for (const [at, data] of dataPages) expect(sameBytes(await snapshot.readMemory('ram', at, PAGE_SIZE), data)).toBe(true);
      expect(sameBytes(await snapshot.readMemory('ram', 80 * MiB, MiB), new Uint8Array(MiB))).toBe(true);
    } finally {
      await snapshot.close();
    }
  });

  it('a page is stored or skipped as a whole, wherever the chunks of an iterable source cut it', async () => {
    const random = prng(12);
    const region = new Uint8Array(16 * PAGE_SIZE);
    region[3 * PAGE_SIZE + 4095] = 1; // only the last byte of page 3
    region.set(randomBytesFrom(random, PAGE_SIZE), 9 * PAGE_SIZE);
    const chunks = function* () {
      for (let at = 0; at < region.length;) {
        const length = Math.min(1 + Math.floor(random() * 3 * PAGE_SIZE), region.length - at);
        yield region.slice(at, at + length);
        at += length;
      }
    };
    const target = path.join(dir.path, 'chunks.snap');
    const result = await writeSnapshot(target, { vm: {}, vcpus: 1, memory: [{ name: 'ram', guestAddress: 0, size: region.length, source: chunks() }] });
    expect(result.memoryBytesWritten).toBe(2 * PAGE_SIZE);
    const snapshot = await openSnapshot(target, { verifyMemory: true });
    expect(sameBytes(await snapshot.readMemory('ram', 0, region.length), region)).toBe(true);
    await snapshot.close();
  });
});
