// Every parser fed by bytes a user or a guest controls, driven with generated and mutated inputs:
// the ELF (and its PVH note) and bzImage loaders, the kernel loader that places them in guest
// memory, and the snapshot reader. Each may refuse an input, but only with its own typed error
// (a TsvmmError with a stable code), never with a RangeError, a TypeError or a hang.
// The virtqueue walker's properties are in test/unit/virtio-queue.test.ts, the device registers'
// in device-registers.test.ts, the control socket's in control-socket.test.ts.

import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, it } from 'vitest';
import fc from 'fast-check';
import { isTsvmmError } from '../../src/errors.js';
import { KernelImageError, parseElf } from '../../src/boot/elf.js';
import { parseBzImage, placeBzImage } from '../../src/boot/bzimage.js';
import { loadKernel } from '../../src/boot/loader.js';
import { GuestMemory } from '../../src/memory/guest-memory.js';
import { openSnapshot } from '../../src/snapshot/reader.js';
import { SnapshotError } from '../../src/snapshot/format.js';
import { writeSnapshot } from '../../src/snapshot/writer.js';
import { buildBzImage } from '../helpers/bzimage-builder.js';
import { buildElf } from '../helpers/elf-builder.js';
import { sampleVm, tempDirectory } from '../helpers/snapshot-fixtures.js';
import { runs, timeout } from '../helpers/fuzz.js';

/** A byte-level mutation: set, flip bits, or write a boundary value of 1, 2, 4 or 8 bytes. */
type Mutation = { at: number; kind: 'set' | 'xor' | 'edge'; value: number; width: 1 | 2 | 4 | 8 };

const mutation = (span: number): fc.Arbitrary<Mutation> => fc.record({
  at: fc.nat({ max: Math.max(0, span - 1) }),
  kind: fc.constantFrom('set' as const, 'xor' as const, 'edge' as const),
  value: fc.nat({ max: 0xffffffff }),
  width: fc.constantFrom(1 as const, 2 as const, 4 as const, 8 as const),
});

const EDGES = [0, 1, 0x7f, 0x80, 0xff, 0xffff, 0x7fffffff, 0x80000000, 0xffffffff];

function mutate(image: Uint8Array, mutations: readonly Mutation[], cut?: number): Uint8Array {
  const copy = image.slice(0, cut === undefined ? image.length : Math.min(cut, image.length));
  const view = new DataView(copy.buffer);
  for (const m of mutations) {
    if (m.at >= copy.length) continue;
    const width = Math.min(m.width, copy.length - m.at);
    const value = m.kind === 'edge' ? EDGES[m.value % EDGES.length]! : m.value;
    for (let i = 0; i < width; i++) {
      const byte = (i < 4 ? value >>> (8 * i) : m.kind === 'edge' && value === 0xffffffff ? 0xff : 0) & 0xff;
      view.setUint8(m.at + i, m.kind === 'xor' ? copy[m.at + i]! ^ (byte || 1) : byte);
    }
  }
  return copy;
}

/** Mutations concentrated where the headers are (`hot` bytes), with a few anywhere. */
const mutations = (hot: number, length: number) => fc.array(fc.oneof(
  { weight: 4, arbitrary: mutation(hot) }, { weight: 1, arbitrary: mutation(length) },
), { minLength: 1, maxLength: 8 });

/** Runs `parse`; a refusal must be a TsvmmError (with a code), anything else is a bug. */
function refusesCleanly(parse: () => unknown, allowed: (error: unknown) => boolean = isTsvmmError): void {
  try {
    parse();
  } catch (error) {
    if (!allowed(error)) throw error;
  }
}

const hello = new Uint8Array(readFileSync('guests/build/hello.elf'));
const elf64 = new Uint8Array(readFileSync('guests/build/elf64.elf'));
/** test.elf in an ELF32 container: the PVH entry of a 32-bit kernel. */
const elf32 = new Uint8Array(readFileSync('guests/build/test32.elf'));
const bz = buildBzImage();

describe('kernel image parsers under mutated input', () => {
  it('parseElf: PVH ELF64 and ELF32 kernels and a plain ELF64, mutated and cut anywhere, parse or give KernelImageError', () => {
    fc.assert(fc.property(fc.constantFrom(hello, elf64, elf32), mutations(1024, hello.length), fc.option(fc.nat({ max: 8192 })), (image, list, cut) => {
      refusesCleanly(() => parseElf(mutate(image, list, cut ?? undefined)), (e) => e instanceof KernelImageError);
    }), runs(2000));
  }, timeout(60_000));

  it('parseElf: generated ELF headers with random program headers and PVH notes', () => {
    const segment = fc.record({ paddr: fc.oneof(fc.nat({ max: 0xffffffff }), fc.constantFrom(0, 0x100000, 2 ** 32 - 1)), data: fc.uint8Array({ maxLength: 64 }), memSize: fc.option(fc.nat({ max: 2 ** 32 }), { nil: undefined }) });
    fc.assert(fc.property(
      fc.record({
        entry: fc.nat({ max: 0xffffffff }), segments: fc.array(segment, { maxLength: 4 }),
        pvhEntry: fc.option(fc.nat({ max: 0xffffffff }), { nil: undefined }),
        machine: fc.option(fc.constantFrom(62, 3, 183, 0), { nil: undefined }), elfClass: fc.option(fc.constantFrom(1, 2, 0, 3), { nil: undefined }),
      }),
      mutations(256, 256),
      (spec, list) => {
        const image = buildElf(spec);
        refusesCleanly(() => parseElf(image), (e) => e instanceof KernelImageError);
        refusesCleanly(() => parseElf(mutate(image, list)), (e) => e instanceof KernelImageError);
      },
    ), runs(2000));
  }, timeout(60_000));

  it('parseBzImage and placeBzImage: generated and mutated setup headers give a kernel or KernelImageError', () => {
    fc.assert(fc.property(
      fc.record({
        version: fc.option(fc.constantFrom(0x0200, 0x0205, 0x0206, 0x020a, 0x020c, 0x020f, 0xffff), { nil: undefined }),
        setupSects: fc.option(fc.nat({ max: 0xff }), { nil: undefined }),
        loadflags: fc.option(fc.nat({ max: 0xff }), { nil: undefined }), xloadflags: fc.option(fc.nat({ max: 0xffff }), { nil: undefined }),
        relocatable: fc.option(fc.boolean(), { nil: undefined }), kernelAlignment: fc.option(fc.oneof(fc.constantFrom(0, 1, 0x1000, 0x200000, 0x80000000), fc.nat({ max: 0xffffffff })), { nil: undefined }),
        prefAddress: fc.option(fc.nat({ max: 0xffffffff }), { nil: undefined }), initSize: fc.option(fc.nat({ max: 0xffffffff }), { nil: undefined }),
        cmdlineSize: fc.option(fc.nat({ max: 0xffffffff }), { nil: undefined }), initrdAddrMax: fc.option(fc.nat({ max: 0xffffffff }), { nil: undefined }),
        protectedModeSize: fc.option(fc.constantFrom(0x400, 0x4000), { nil: undefined }),
      }),
      mutations(0x300, bz.length),
      fc.constantFrom(16 * 2 ** 20, 256 * 2 ** 20, 3 * 2 ** 30),
      (spec, list, ramTop) => {
        for (const image of [buildBzImage(spec), mutate(bz, list)]) {
          refusesCleanly(() => placeBzImage(parseBzImage(image), ramTop), (e) => e instanceof KernelImageError);
        }
      },
    ), runs(2000));
  }, timeout(60_000));

  it('loadKernel: mutated kernels load into guest memory or are refused with a TsvmmError', () => {
    const memory = GuestMemory.fromBuffers([{ start: 0, bytes: new Uint8Array(8 * 2 ** 20) }]);
    fc.assert(fc.property(fc.constantFrom(hello, elf64, elf32, bz), mutations(1024, 4096), fc.option(fc.uint8Array({ maxLength: 4096 }), { nil: undefined }), (image, list, initrd) => {
      refusesCleanly(() => loadKernel(memory, { kernelPath: 'k', kernel: mutate(image, list), cmdline: 'console=ttyS0', initrd, initrdPath: 'i' }));
    }), runs(1000));
  }, timeout(60_000));
});

describe('snapshot reader under mutated files', () => {
  const dir = tempDirectory();
  afterAll(() => dir.remove());
  let counter = 0;

  it('openSnapshot: a snapshot mutated or cut anywhere outside memory opens or is refused with a SnapshotError', async () => {
    const good = path.join(dir.path, 'good.snap');
    await writeSnapshot(good, sampleVm().contents, { createdAt: new Date('2026-12-01T00:00:00Z'), tsvmmVersion: '9.9.9' });
    const image = new Uint8Array(readFileSync(good));
    const reference = await openSnapshot(good);
    const firstMemory = Math.min(...reference.file.sections.filter((s) => s.kind === 'memory').map((s) => s.offset));
    await reference.close();
    await fc.assert(fc.asyncProperty(mutations(firstMemory, image.length), fc.option(fc.nat({ max: image.length - 1 }), { freq: 6 }), async (list, cut) => {
      const target = path.join(dir.path, `m${counter++ % 8}.snap`);
      writeFileSync(target, mutate(image, list, cut ?? undefined));
      try {
        const opened = await openSnapshot(target);
        // What an opened snapshot hands out must be readable too.
        for (const name of opened.file.stateNames) opened.file.state(name);
        for (const name of opened.file.deviceNames) opened.file.device(name);
        await opened.close();
      } catch (error) {
        if (!(error instanceof SnapshotError)) throw error;
      }
    }), runs(500));
  }, timeout(120_000));
});
