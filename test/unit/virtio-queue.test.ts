import { describe, expect, it } from 'vitest';
import { GuestMemory } from '../../src/memory/guest-memory.js';
import {
  VIRTQ_AVAIL_F_NO_INTERRUPT, VIRTQ_DESC_F_INDIRECT, VIRTQ_DESC_F_NEXT, VIRTQ_DESC_F_WRITE,
  VIRTQ_USED_F_NO_NOTIFY,
} from '../../src/devices/virtio/constants.js';
import {
  MAX_READ_LENGTH, VirtQueue, VirtQueueError, vringNeedEvent, type DescriptorChain, type QueueConfig,
} from '../../src/devices/virtio/queue.js';
import { MockDriver, Prng, type RawDescriptor } from '../helpers/virtq-builder.js';
import fc from 'fast-check';
import { runs, timeout } from '../helpers/fuzz.js';

const NEXT = VIRTQ_DESC_F_NEXT;
const WRITE = VIRTQ_DESC_F_WRITE;
const INDIRECT = VIRTQ_DESC_F_INDIRECT;
const bytes = (...values: number[]) => Uint8Array.from(values);
const text = (s: string) => new TextEncoder().encode(s);

/** Runs `f`, expects a VirtQueueError and returns it. */
function refused(f: () => unknown): VirtQueueError {
  try {
    f();
  } catch (error) {
    if (error instanceof VirtQueueError) {
      expect(error.code).toBe('VIRTQUEUE');
      return error;
    }
    throw error;
  }
  throw new Error('expected a VirtQueueError, but the call succeeded');
}

/** Pops a chain that must be there. */
function popped(queue: VirtQueue): DescriptorChain {
  const chain = queue.pop();
  if (!chain) throw new Error('expected a chain');
  return chain;
}

describe('VirtQueue set-up', () => {
  const memory = () => GuestMemory.fromBuffers([
    { start: 0, bytes: new Uint8Array(0x10000) },
    { start: 0x20000, bytes: new Uint8Array(0x1000) },
  ]);
  const config = (over: Partial<QueueConfig> = {}): QueueConfig => ({
    size: 16, descTable: 0x1000, availRing: 0x2000, usedRing: 0x3000, eventIdx: false, indirect: false, ...over,
  });

  it('accepts every power of 2 from 1 to 32768', () => {
    const m = GuestMemory.fromBuffers([{ start: 0, bytes: new Uint8Array(0x100000) }]);
    for (let size = 1; size <= 32768; size *= 2) {
      expect(() => new VirtQueue(m, { size, descTable: 0, availRing: 0x80000, usedRing: 0xa0000, eventIdx: true, indirect: true }))
        .not.toThrow();
    }
  });

  it('refuses sizes that are not a power of 2 in 1..32768', () => {
    for (const size of [0, 3, 12, 65536, 32769, -16, 1.5, Number.NaN]) {
      expect(refused(() => new VirtQueue(memory(), config({ size }))).message).toMatch(/not a power of 2/);
    }
  });

  it('refuses misaligned rings', () => {
    expect(refused(() => new VirtQueue(memory(), config({ descTable: 0x1008 }))).message).toMatch(/descriptor table.*16-byte/);
    expect(refused(() => new VirtQueue(memory(), config({ availRing: 0x2001 }))).message).toMatch(/available ring.*2-byte/);
    expect(refused(() => new VirtQueue(memory(), config({ usedRing: 0x3002 }))).message).toMatch(/used ring.*4-byte/);
  });

  it('refuses rings that are not wholly inside one region of guest memory', () => {
    // 16 descriptors end exactly at the end of the region: fine; one further is not.
    expect(() => new VirtQueue(memory(), config({ descTable: 0x10000 - 256 }))).not.toThrow();
    expect(refused(() => new VirtQueue(memory(), config({ descTable: 0x10000 - 240 }))).message).toMatch(/not inside guest memory/);
    // The available ring with used_event is 6 + 2 * 16 = 38 bytes.
    expect(() => new VirtQueue(memory(), config({ availRing: 0x10000 - 38 }))).not.toThrow();
    expect(refused(() => new VirtQueue(memory(), config({ availRing: 0x10000 - 36 }))).message).toMatch(/available ring/);
    // The used ring with avail_event is 6 + 8 * 16 = 134 bytes.
    expect(refused(() => new VirtQueue(memory(), config({ usedRing: 0x10000 - 132 }))).message).toMatch(/used ring/);
    expect(refused(() => new VirtQueue(memory(), config({ usedRing: 0x18000 }))).message).toMatch(/used ring/);
    expect(refused(() => new VirtQueue(memory(), config({ descTable: 2 ** 64 }))).message).toMatch(/invalid/);
    expect(refused(() => new VirtQueue(memory(), config({ descTable: -16 }))).message).toMatch(/invalid/);
  });

  it('refuses a config whose feature flags are not booleans', () => {
    expect(refused(() => new VirtQueue(memory(), { ...config(), eventIdx: 1 as unknown as boolean })).message).toMatch(/booleans/);
  });
});

describe('VirtQueue with well-formed chains', () => {
  it('returns undefined when the driver has offered nothing', () => {
    const driver = new MockDriver();
    expect(driver.queue().pop()).toBeUndefined();
  });

  it('pops a readable-only chain and copies its bytes', () => {
    const driver = new MockDriver();
    const queue = driver.queue();
    const head = driver.addChain([{ read: text('hello, ') }, { read: text('world') }]);
    driver.offer(head);
    const chain = popped(queue);
    expect(chain.head).toBe(head);
    expect(chain.readable).toHaveLength(2);
    expect(chain.writable).toEqual([]);
    expect(chain.readableLength).toBe(12);
    expect(chain.writableLength).toBe(0);
    expect(new TextDecoder().decode(queue.readSegments(chain))).toBe('hello, world');
    // Windows across the segment boundary.
    expect(new TextDecoder().decode(queue.readSegments(chain, 5, 4))).toBe(', wo');
    expect(queue.readSegments(chain, 12)).toEqual(new Uint8Array(0));
    expect(refused(() => queue.readSegments(chain, 10, 3)).message).toMatch(/cannot read 3 bytes at 10/);
    expect(refused(() => queue.readSegments(chain, -1)).message).toMatch(/cannot read/);
    expect(queue.writeSegments(chain, bytes(1, 2, 3))).toBe(0);
    expect(queue.pop()).toBeUndefined();
  });

  it('pops a writable-only chain and writes no further than its buffers', () => {
    const driver = new MockDriver();
    const queue = driver.queue();
    driver.offer(driver.addChain([{ write: 3 }, { write: 2 }]));
    const chain = popped(queue);
    expect(chain.readable).toEqual([]);
    expect(chain.writableLength).toBe(5);
    const [first, second] = chain.writable;
    // The bytes right after each buffer must stay untouched.
    driver.ram.fill(0xee, first!.address, first!.address + 16);
    driver.ram.fill(0xee, second!.address, second!.address + 16);
    expect(queue.writeSegments(chain, bytes(1, 2, 3, 4, 5, 6, 7))).toBe(5);
    expect(driver.memory.read(first!.address, 4)).toEqual(bytes(1, 2, 3, 4));
    expect(driver.memory.read(second!.address, 3)).toEqual(bytes(4, 5, 0xee));
    // An offset carries across buffers.
    expect(queue.writeSegments(chain, bytes(9, 9), 2)).toBe(2);
    expect(driver.memory.read(first!.address, 3)).toEqual(bytes(1, 2, 9));
    expect(driver.memory.read(second!.address, 2)).toEqual(bytes(9, 5));
    expect(queue.writeSegments(chain, bytes(1), 5)).toBe(0);
    expect(queue.writeSegments(chain, bytes(1), 100)).toBe(0);
    expect(refused(() => queue.writeSegments(chain, bytes(1), -1)).message).toMatch(/offset/);
    expect(refused(() => queue.readSegments(chain, 0, 1)).message).toMatch(/cannot read/);
  });

  it('pops a mixed chain: readable buffers, then writable ones', () => {
    const driver = new MockDriver();
    const queue = driver.queue();
    const head = driver.addChain([{ read: bytes(1, 2, 3, 4) }, { read: 8 }, { write: 512 }, { write: 1 }]);
    driver.offer(head);
    const chain = popped(queue);
    expect(chain.readable.map((s) => s.length)).toEqual([4, 8]);
    expect(chain.writable.map((s) => s.length)).toEqual([512, 1]);
    expect(chain.readableLength).toBe(12);
    expect(chain.writableLength).toBe(513);
    expect(queue.readSegments(chain, 0, 4)).toEqual(bytes(1, 2, 3, 4));
    queue.push(chain.head, 513);
    expect(driver.usedIdx).toBe(1);
    expect(driver.usedElem(0)).toEqual({ id: head, len: 513 });
  });

  it('pops several chains in the order offered and fills the used ring in the order pushed', () => {
    const driver = new MockDriver({ size: 8 });
    const queue = driver.queue();
    const heads = [0, 1, 2].map((i) => driver.addChain([{ read: bytes(i) }, { write: 4 }]));
    driver.offer(...heads);
    const chains = [popped(queue), popped(queue), popped(queue)];
    expect(chains.map((c) => c.head)).toEqual(heads);
    expect(chains.map((c) => queue.readSegments(c)[0])).toEqual([0, 1, 2]);
    expect(queue.pop()).toBeUndefined();
    expect(queue.inFlight).toBe(3);
    // Completion order is the device's choice.
    queue.push(chains[2]!.head, 3);
    queue.push(chains[0]!.head, 1);
    expect(driver.usedIdx).toBe(2);
    queue.push(chains[1]!.head, 2);
    expect(driver.usedIdx).toBe(3);
    expect([0, 1, 2].map((i) => driver.usedElem(i))).toEqual([
      { id: heads[2], len: 3 }, { id: heads[0], len: 1 }, { id: heads[1], len: 2 },
    ]);
    expect(queue.inFlight).toBe(0);
  });

  it('accepts zero-length buffers and a chain of exactly queue-size descriptors', () => {
    const driver = new MockDriver({ size: 8 });
    const queue = driver.queue();
    driver.offer(driver.addChain([{ read: 0 }, ...Array.from({ length: 6 }, () => ({ read: 1 })), { write: 0 }]));
    const chain = popped(queue);
    expect(chain.readable).toHaveLength(7);
    expect(chain.writable).toHaveLength(1);
    expect(chain.readableLength).toBe(6);
    expect(chain.writableLength).toBe(0);
  });

  it('accepts a buffer that ends at the last byte of guest memory', () => {
    const driver = new MockDriver({ size: 4 });
    const end = driver.ram.length;
    driver.writeDescriptor(0, { addr: end - 16, len: 16, flags: WRITE, next: 0 });
    driver.offer(0);
    expect(popped(driver.queue()).writable).toEqual([{ address: end - 16, length: 16 }]);
  });

  it('accepts a chain of exactly 2^32-1 bytes', () => {
    const region = 16 * 1024 * 1024;
    const driver = new MockDriver({ size: 256, extraRegions: [{ start: 0x1000_0000, size: region }] });
    for (let i = 0; i < 256; i++) {
      driver.writeDescriptor(i, { addr: 0x1000_0000, len: i === 255 ? region - 1 : region, flags: i === 255 ? WRITE : NEXT | WRITE, next: i + 1 });
    }
    driver.offer(0);
    const queue = driver.queue();
    const chain = popped(queue);
    expect(chain.writableLength).toBe(2 ** 32 - 1);
    expect(queue.writeSegments(chain, bytes(1, 2, 3), 2 ** 32 - 2)).toBe(1);
  });

  it('wraps the 16-bit ring indexes, over and over', () => {
    const driver = new MockDriver({ size: 4 });
    const queue = driver.queue();
    let expectedUsed = 0;
    for (let round = 0; round < 70_000; round += 3) {
      driver.resetHeap();
      const heads = [0, 1, 2].map((i) => driver.addChain([{ read: bytes(round & 0xff, i) }]));
      driver.offer(...heads);
      for (const head of heads) {
        const chain = popped(queue);
        expect(chain.head).toBe(head);
        queue.push(chain.head, round & 0xffff);
        expectedUsed = (expectedUsed + 1) & 0xffff;
      }
      expect(queue.pop()).toBeUndefined();
    }
    expect(driver.usedIdx).toBe(expectedUsed);
    expect(queue.save().nextAvail).toBe(expectedUsed);
  });

  it('starts from any index: used entries go to idx modulo the size across the wrap', () => {
    const driver = new MockDriver({ size: 4 });
    driver.startAt(0xfffe);
    const queue = driver.restore({ nextAvail: 0xfffe, nextUsed: 0xfffe, signalledUsed: 0xfffe, notificationsEnabled: true });
    const heads = [0, 1, 2, 3].map((i) => driver.addChain([{ write: i + 1 }]));
    driver.offer(...heads);
    expect(driver.availIdx).toBe(2);
    for (const head of heads) queue.push(popped(queue).head, head + 10);
    expect(driver.usedIdx).toBe(2);
    // Ring slots: 0xfffe % 4 = 2, then 3, 0, 1.
    expect([2, 3, 0, 1].map((slot) => driver.usedElem(slot).id)).toEqual(heads);
  });

  it('refuses device mistakes in push() without touching the used ring', () => {
    const driver = new MockDriver({ size: 4 });
    const queue = driver.queue();
    expect(refused(() => queue.push(0, 0)).message).toMatch(/no chain is in flight/);
    driver.offer(driver.addChain([{ write: 1 }]));
    const chain = popped(queue);
    expect(refused(() => queue.push(4, 0)).message).toMatch(/cannot return descriptor 4/);
    expect(refused(() => queue.push(-1, 0)).message).toMatch(/cannot return/);
    expect(refused(() => queue.push(chain.head, 2 ** 32)).message).toMatch(/32 bits/);
    expect(refused(() => queue.push(chain.head, -1)).message).toMatch(/32 bits/);
    expect(driver.usedIdx).toBe(0);
    queue.push(chain.head, 1);
    expect(driver.usedIdx).toBe(1);
  });

  it('copies at most MAX_READ_LENGTH bytes at once', () => {
    const region = MAX_READ_LENGTH;
    const driver = new MockDriver({ size: 4, extraRegions: [{ start: 0x1000_0000, size: region }] });
    driver.writeDescriptor(0, { addr: 0x1000_0000, len: region, flags: NEXT, next: 1 });
    driver.writeDescriptor(1, { addr: 0x1000_0000, len: 1, flags: 0, next: 0 });
    driver.offer(0);
    const queue = driver.queue();
    const chain = popped(queue);
    expect(refused(() => queue.readSegments(chain)).message).toMatch(/refusing to copy/);
    expect(queue.readSegments(chain, 1).length).toBe(MAX_READ_LENGTH);
  });
});

describe('VirtQueue with indirect descriptors', () => {
  it('follows a single indirect descriptor to a mixed table', () => {
    const driver = new MockDriver({ indirect: true });
    const queue = driver.queue();
    const head = driver.addChain([{ read: bytes(7, 8) }, { read: bytes(9) }, { write: 6 }], { indirect: true });
    driver.offer(head);
    const chain = popped(queue);
    expect(chain.head).toBe(head);
    expect(chain.readable.map((s) => s.length)).toEqual([2, 1]);
    expect(chain.writable.map((s) => s.length)).toEqual([6]);
    expect(queue.readSegments(chain)).toEqual(bytes(7, 8, 9));
  });

  it('handles ordinary descriptors followed by one indirect descriptor, as the spec requires', () => {
    const driver = new MockDriver({ indirect: true });
    const queue = driver.queue();
    driver.offer(driver.addChain([{ read: bytes(1) }, { read: bytes(2) }, { read: bytes(3) }, { write: 1 }], { indirect: true, direct: 2 }));
    const chain = popped(queue);
    expect(queue.readSegments(chain)).toEqual(bytes(1, 2, 3));
    expect(chain.writableLength).toBe(1);
  });

  it('ignores WRITE on the descriptor that points at the table, and needs no alignment of the table', () => {
    const driver = new MockDriver({ indirect: true });
    const table = driver.alloc(64, 1) + 3;
    const data = driver.alloc(8);
    driver.writeDescriptor(0, { addr: data, len: 8, flags: 0, next: 0 }, table);
    driver.writeDescriptor(0, { addr: table, len: 16, flags: INDIRECT | WRITE, next: 0 });
    driver.offer(0);
    const chain = popped(driver.queue());
    expect(chain.readable).toEqual([{ address: data, length: 8 }]);
  });

  it('accepts an indirect table of exactly queue-size descriptors, in any order', () => {
    const driver = new MockDriver({ size: 8, indirect: true });
    const table = driver.alloc(8 * 16);
    // Walk the table backwards: 0 -> 7 -> 6 ... -> 1.
    const order = [0, 7, 6, 5, 4, 3, 2, 1];
    order.forEach((index, i) => {
      const next = order[i + 1];
      driver.writeDescriptor(index, { addr: 0x100 + index, len: 1, flags: next === undefined ? 0 : NEXT, next: next ?? 0 }, table);
    });
    driver.writeDescriptor(3, { addr: table, len: 128, flags: INDIRECT, next: 0 });
    driver.offer(3);
    expect(popped(driver.queue()).readable.map((s) => s.address)).toEqual(order.map((i) => 0x100 + i));
  });
});

describe('VirtQueue against a hostile driver: malformed chains', () => {
  // Each case lays out a broken chain at head 0 and a good chain after it. The broken chain is
  // consumed and reported with its head, which the device hands back; the queue then goes on.
  interface Case { name: string; message: RegExp; options?: { size?: number; indirect?: boolean }; build(d: MockDriver): void }
  const cases: Case[] = [
    {
      name: 'a next index equal to the queue size', message: /next descriptor 8, beyond its table of 8/,
      build: (d) => d.writeDescriptor(0, { addr: 0x100, len: 1, flags: NEXT, next: 8 }),
    },
    {
      name: 'a next index of 0xffff', message: /next descriptor 65535/,
      build: (d) => d.writeDescriptor(0, { addr: 0x100, len: 1, flags: NEXT, next: 0xffff }),
    },
    {
      name: 'a descriptor that chains to itself', message: /loop/,
      build: (d) => d.writeDescriptor(0, { addr: 0x100, len: 1, flags: NEXT, next: 0 }),
    },
    {
      name: 'a loop through seven descriptors', message: /descriptor 1 makes the chain longer than its table of 8: a loop/,
      build: (d) => { for (let i = 0; i < 7; i++) d.writeDescriptor(i, { addr: 0x100, len: 0, flags: NEXT, next: (i + 1) % 7 }); },
    },
    {
      name: 'a readable buffer after a writable one', message: /device-readable but follows a device-writable/,
      build: (d) => {
        d.writeDescriptor(0, { addr: 0x100, len: 1, flags: NEXT | WRITE, next: 1 });
        d.writeDescriptor(1, { addr: 0x100, len: 1, flags: 0, next: 0 });
      },
    },
    {
      name: 'a buffer one byte past the end of guest memory', message: /outside guest memory/,
      build: (d) => d.writeDescriptor(0, { addr: d.ram.length - 15, len: 16, flags: 0, next: 0 }),
    },
    {
      name: 'a zero-length buffer beyond guest memory', message: /outside guest memory/,
      build: (d) => d.writeDescriptor(0, { addr: d.ram.length + 0x1000, len: 0, flags: 0, next: 0 }),
    },
    {
      name: 'a buffer at 2^64-16', message: /0xfffffffffffffff0\+16 outside guest memory/,
      build: (d) => d.writeDescriptor(0, { addr: 2n ** 64n - 16n, len: 16, flags: WRITE, next: 0 }),
    },
    {
      name: 'a buffer at 2^53 (beyond exact JS integers)', message: /outside guest memory/,
      build: (d) => d.writeDescriptor(0, { addr: 2n ** 53n, len: 1, flags: 0, next: 0 }),
    },
    {
      name: 'a buffer that wraps the address space into low memory', message: /outside guest memory/,
      build: (d) => d.writeDescriptor(0, { addr: 2n ** 64n - 1n, len: 0x1000, flags: 0, next: 0 }),
    },
    {
      name: 'a buffer 2^32-1 bytes long', message: /outside guest memory/,
      build: (d) => d.writeDescriptor(0, { addr: 0, len: 2 ** 32 - 1, flags: 0, next: 0 }),
    },
    {
      name: 'an indirect descriptor when VIRTIO_F_INDIRECT_DESC was not negotiated', message: /not negotiated/,
      options: { indirect: false },
      build: (d) => d.writeDescriptor(0, { addr: d.alloc(16), len: 16, flags: INDIRECT, next: 0 }),
    },
    {
      name: 'an indirect descriptor inside an indirect table', message: /indirect inside an indirect table/,
      build: (d) => {
        const inner = d.alloc(16);
        const outer = d.alloc(16);
        d.writeDescriptor(0, { addr: 0x100, len: 1, flags: 0, next: 0 }, inner);
        d.writeDescriptor(0, { addr: inner, len: 16, flags: INDIRECT, next: 0 }, outer);
        d.writeDescriptor(0, { addr: outer, len: 16, flags: INDIRECT, next: 0 });
      },
    },
    {
      name: 'an indirect descriptor that also has NEXT', message: /both INDIRECT and NEXT/,
      build: (d) => {
        const table = d.alloc(16);
        d.writeDescriptor(0, { addr: 0x100, len: 1, flags: 0, next: 0 }, table);
        d.writeDescriptor(0, { addr: table, len: 16, flags: INDIRECT | NEXT, next: 1 });
        d.writeDescriptor(1, { addr: 0x100, len: 1, flags: 0, next: 0 });
      },
    },
    ...[0, 8, 17, 24].map((len): Case => ({
      name: `an indirect table of ${len} bytes`, message: /not a whole number of descriptors/,
      build: (d) => d.writeDescriptor(0, { addr: d.alloc(32), len, flags: INDIRECT, next: 0 }),
    })),
    {
      name: 'an indirect table longer than the queue size', message: /9 descriptors, more than the queue size 8/,
      build: (d) => d.writeDescriptor(0, { addr: d.alloc(9 * 16), len: 9 * 16, flags: INDIRECT, next: 0 }),
    },
    {
      name: 'an indirect table that runs past the end of guest memory', message: /indirect table .* outside guest memory/,
      build: (d) => d.writeDescriptor(0, { addr: d.ram.length - 16, len: 32, flags: INDIRECT, next: 0 }),
    },
    {
      name: 'an indirect table at 2^64-16', message: /indirect table 0xfffffffffffffff0\+16 outside/,
      build: (d) => d.writeDescriptor(0, { addr: 2n ** 64n - 16n, len: 16, flags: INDIRECT, next: 0 }),
    },
    {
      name: 'a loop inside an indirect table', message: /indirect descriptor 0 makes the chain longer than its table of 2: a loop/,
      build: (d) => {
        const table = d.alloc(32);
        d.writeDescriptor(0, { addr: 0x100, len: 1, flags: NEXT, next: 1 }, table);
        d.writeDescriptor(1, { addr: 0x100, len: 1, flags: NEXT, next: 0 }, table);
        d.writeDescriptor(0, { addr: table, len: 32, flags: INDIRECT, next: 0 });
      },
    },
    {
      name: 'a next index beyond the indirect table', message: /indirect descriptor 0 names next descriptor 2, beyond its table of 2/,
      build: (d) => {
        const table = d.alloc(32);
        d.writeDescriptor(0, { addr: 0x100, len: 1, flags: NEXT, next: 2 }, table);
        d.writeDescriptor(0, { addr: table, len: 32, flags: INDIRECT, next: 0 });
      },
    },
    {
      name: 'a readable indirect buffer after a writable direct one', message: /device-readable but follows/,
      build: (d) => {
        const table = d.alloc(16);
        d.writeDescriptor(0, { addr: 0x100, len: 1, flags: 0, next: 0 }, table);
        d.writeDescriptor(0, { addr: 0x100, len: 1, flags: WRITE | NEXT, next: 1 });
        d.writeDescriptor(1, { addr: table, len: 16, flags: INDIRECT, next: 0 });
      },
    },
    {
      name: 'more buffers than the queue size, direct ones and an indirect table together', message: /longer than the queue size 8/,
      build: (d) => {
        const table = d.alloc(8 * 16);
        for (let i = 0; i < 8; i++) d.writeDescriptor(i, { addr: 0x100, len: 1, flags: i < 7 ? NEXT : 0, next: i + 1 }, table);
        d.writeDescriptor(0, { addr: 0x100, len: 1, flags: NEXT, next: 1 });
        d.writeDescriptor(1, { addr: table, len: 8 * 16, flags: INDIRECT, next: 0 });
      },
    },
  ];

  for (const c of cases) {
    it(`refuses ${c.name}`, () => {
      const driver = new MockDriver({ size: 8, indirect: true, ...c.options });
      const queue = driver.queue();
      c.build(driver);
      // A good chain in the last descriptor, which no broken case uses as a buffer.
      driver.writeDescriptor(7, { addr: 0x200, len: 4, flags: WRITE, next: 0 });
      driver.offer(0, 7);
      const error = refused(() => queue.pop());
      expect(error.message).toMatch(c.message);
      expect(error.message).toMatch(/^chain at descriptor 0: /);
      expect(error.head).toBe(0);
      expect(queue.broken).toBeUndefined();
      queue.push(error.head!, 0);
      expect(driver.usedElem(0)).toEqual({ id: 0, len: 0 });
      expect(popped(queue).writable).toEqual([{ address: 0x200, length: 4 }]);
    });
  }

  it('refuses a chain longer than 2^32-1 bytes in total', () => {
    const region = 16 * 1024 * 1024;
    const driver = new MockDriver({ size: 256, extraRegions: [{ start: 0x1000_0000, size: region }] });
    for (let i = 0; i < 256; i++) {
      driver.writeDescriptor(i, { addr: 0x1000_0000, len: region, flags: i === 255 ? 0 : NEXT, next: i + 1 });
    }
    driver.offer(0);
    expect(refused(() => driver.queue().pop()).message).toMatch(/descriptor 255 makes the chain longer than 2\^32-1 bytes/);
  });

  it('refuses a buffer that straddles two regions of guest memory', () => {
    // The second region starts right where the first ends: contiguous in guest-physical space, but
    // no single host view covers both.
    const driver = new MockDriver({ size: 4, memorySize: 0x20000, extraRegions: [{ start: 0x20000, size: 0x1000 }] });
    driver.writeDescriptor(0, { addr: 0x1fff0, len: 0x20, flags: 0, next: 0 });
    driver.writeDescriptor(1, { addr: 0x20000, len: 0x1000, flags: 0, next: 0 });
    driver.offer(0, 1);
    const queue = driver.queue();
    expect(refused(() => queue.pop()).message).toMatch(/0x1fff0\+32 outside guest memory/);
    expect(popped(queue).readable).toEqual([{ address: 0x20000, length: 0x1000 }]);
  });
});

describe('VirtQueue against a hostile driver: a corrupt available ring', () => {
  it('refuses an available index that jumps by more than the queue size, and stays broken', () => {
    const driver = new MockDriver({ size: 8 });
    const queue = driver.queue();
    driver.offer(driver.addChain([{ write: 1 }]));
    const held = popped(queue);
    driver.setAvailIdx(1 + 9);
    expect(refused(() => queue.pop()).message).toMatch(/available index moved from 1 to 10, more than the queue size 8/);
    expect(queue.broken).toMatch(/available index/);
    // Even if the driver puts idx back, a queue it corrupted once is not trusted again.
    driver.setAvailIdx(1);
    const again = refused(() => queue.pop());
    expect(again.head).toBeUndefined();
    // Chains the device already holds can still be completed.
    queue.push(held.head, 1);
    expect(driver.usedIdx).toBe(1);
  });

  it('accepts an available index exactly the queue size ahead', () => {
    const driver = new MockDriver({ size: 4 });
    const queue = driver.queue();
    driver.offer(...[0, 1, 2, 3].map(() => driver.addChain([{ read: 1 }])));
    for (let i = 0; i < 4; i++) popped(queue);
    expect(queue.pop()).toBeUndefined();
  });

  it('treats an index that went backwards as a jump (it wraps to far ahead)', () => {
    const driver = new MockDriver({ size: 8 });
    const queue = driver.queue();
    driver.offer(driver.addChain([{ write: 1 }]));
    popped(queue);
    driver.setAvailIdx(0);
    expect(refused(() => queue.pop()).message).toMatch(/moved from 1 to 0/);
  });

  for (const head of [8, 0xffff]) {
    it(`refuses an available-ring entry naming descriptor ${head}, and stays broken`, () => {
      const driver = new MockDriver({ size: 8 });
      const queue = driver.queue();
      driver.offer(head);
      const error = refused(() => queue.pop());
      expect(error.message).toMatch(new RegExp(`names descriptor ${head}, beyond the queue size 8`));
      expect(error.head).toBeUndefined();
      expect(queue.broken).toBeDefined();
      expect(queue.inFlight).toBe(0);
    });
  }

  it('refuses to hold more than queue-size chains when the driver re-offers a head in use', () => {
    const driver = new MockDriver({ size: 2 });
    const queue = driver.queue();
    const head = driver.addChain([{ write: 1 }]);
    driver.offer(head, head);
    const a = popped(queue);
    popped(queue);
    driver.offer(head);
    const error = refused(() => queue.pop());
    expect(error.message).toMatch(/already holds 2 chains/);
    expect(error.head).toBeUndefined();
    expect(queue.broken).toBeUndefined();
    // Not consumed: once the device returns one, the entry is popped normally.
    queue.push(a.head, 0);
    expect(popped(queue).head).toBe(head);
  });
});

describe('used-buffer notification (interrupt) suppression', () => {
  it('implements vring_need_event, modulo 2^16', () => {
    // Notify when event lies in [old, new).
    expect(vringNeedEvent(0, 1, 0)).toBe(true);
    expect(vringNeedEvent(1, 1, 0)).toBe(false);
    expect(vringNeedEvent(4, 5, 0)).toBe(true);
    expect(vringNeedEvent(5, 5, 0)).toBe(false);
    expect(vringNeedEvent(0xffff, 5, 0)).toBe(false);
    expect(vringNeedEvent(3, 3, 3)).toBe(false);
    // Across the wrap.
    expect(vringNeedEvent(0xffff, 1, 0xfffe)).toBe(true);
    expect(vringNeedEvent(0, 1, 0xffff)).toBe(true);
    expect(vringNeedEvent(1, 1, 0xffff)).toBe(false);
    expect(vringNeedEvent(0xfffd, 1, 0xfffe)).toBe(false);
  });

  function withPushes(options: { eventIdx: boolean }) {
    const driver = new MockDriver({ size: 8, ...options });
    const queue = driver.queue();
    const push = (n: number) => {
      const heads = Array.from({ length: n }, () => driver.addChain([{ write: 1 }]));
      driver.offer(...heads);
      for (let i = 0; i < n; i++) queue.push(popped(queue).head, 1);
    };
    return { driver, queue, push };
  }

  it('without event index: interrupts unless the driver set VIRTQ_AVAIL_F_NO_INTERRUPT', () => {
    const { driver, queue, push } = withPushes({ eventIdx: false });
    expect(queue.needsInterrupt()).toBe(false);
    push(1);
    expect(queue.needsInterrupt()).toBe(true);
    // Nothing new since: nothing to signal.
    expect(queue.needsInterrupt()).toBe(false);
    driver.setAvailFlags(VIRTQ_AVAIL_F_NO_INTERRUPT);
    push(2);
    expect(queue.needsInterrupt()).toBe(false);
    driver.setAvailFlags(0);
    push(1);
    expect(queue.needsInterrupt()).toBe(true);
  });

  it('with event index: interrupts only when used idx passes used_event, ignoring the flags', () => {
    const { driver, queue, push } = withPushes({ eventIdx: true });
    driver.setAvailFlags(VIRTQ_AVAIL_F_NO_INTERRUPT);
    driver.setUsedEvent(0);
    push(1); // used idx 0 -> 1 passes 0
    expect(queue.needsInterrupt()).toBe(true);
    push(1); // 1 -> 2 does not pass 0 again
    expect(queue.needsInterrupt()).toBe(false);
    driver.setUsedEvent(3);
    push(1); // 2 -> 3: entry 3 not yet written
    expect(queue.needsInterrupt()).toBe(false);
    push(3); // 3 -> 6 in one batch passes 3
    expect(queue.needsInterrupt()).toBe(true);
    expect(queue.needsInterrupt()).toBe(false);
  });

  it('with event index: decides correctly across the 16-bit wrap', () => {
    const driver = new MockDriver({ size: 8, eventIdx: true });
    driver.startAt(0xfffe);
    const queue = driver.restore({ nextAvail: 0xfffe, nextUsed: 0xfffe, signalledUsed: 0xfffe, notificationsEnabled: true });
    driver.setUsedEvent(0xffff);
    driver.offer(driver.addChain([{ write: 1 }]), driver.addChain([{ write: 1 }]), driver.addChain([{ write: 1 }]));
    queue.push(popped(queue).head, 0); // 0xfffe -> 0xffff
    expect(queue.needsInterrupt()).toBe(false);
    queue.push(popped(queue).head, 0); // 0xffff -> 0: passes 0xffff
    expect(queue.needsInterrupt()).toBe(true);
    driver.setUsedEvent(0);
    queue.push(popped(queue).head, 0); // 0 -> 1: passes 0
    expect(queue.needsInterrupt()).toBe(true);
    expect(driver.usedIdx).toBe(1);
  });
});

describe('available-buffer notification suppression', () => {
  it('without event index: sets and clears VIRTQ_USED_F_NO_NOTIFY', () => {
    const driver = new MockDriver({ eventIdx: false });
    const queue = driver.queue();
    queue.setNotificationsEnabled(false);
    expect(driver.usedFlags).toBe(VIRTQ_USED_F_NO_NOTIFY);
    queue.setNotificationsEnabled(true);
    expect(driver.usedFlags).toBe(0);
  });

  it('with event index: keeps avail_event at the next entry while enabled, and leaves it behind while disabled', () => {
    const driver = new MockDriver({ size: 8, eventIdx: true });
    const queue = driver.queue();
    driver.offer(driver.addChain([{ read: 1 }]), driver.addChain([{ read: 1 }]));
    popped(queue);
    expect(driver.availEvent).toBe(1);
    queue.setNotificationsEnabled(false);
    expect(driver.usedFlags).toBe(0);
    popped(queue);
    expect(driver.availEvent).toBe(1);
    queue.setNotificationsEnabled(true);
    expect(driver.availEvent).toBe(2);
    expect(queue.save().notificationsEnabled).toBe(true);
  });
});

describe('VirtQueue save and restore', () => {
  it('carries on where it stopped', () => {
    const driver = new MockDriver({ size: 4, eventIdx: true });
    const queue = driver.queue();
    const heads = [0, 1, 2].map((i) => driver.addChain([{ read: bytes(i) }, { write: 1 }]));
    driver.offer(...heads);
    const first = popped(queue);
    const second = popped(queue);
    queue.push(first.head, 1);
    expect(queue.needsInterrupt()).toBe(true);
    queue.setNotificationsEnabled(false);
    const state = queue.save();
    expect(state).toEqual({ nextAvail: 2, nextUsed: 1, signalledUsed: 1, notificationsEnabled: false });

    const restored = driver.restore(JSON.parse(JSON.stringify(state)) as typeof state);
    expect(restored.inFlight).toBe(1);
    restored.push(second.head, 1);
    expect(restored.readSegments(popped(restored))).toEqual(bytes(2));
    expect(driver.usedIdx).toBe(2);
    expect(restored.save().notificationsEnabled).toBe(false);
  });

  it('refuses states that are not 16-bit indexes or do not fit the ring', () => {
    const driver = new MockDriver({ size: 4 });
    const good = { nextAvail: 5, nextUsed: 3, signalledUsed: 3, notificationsEnabled: true };
    expect(() => driver.restore(good)).not.toThrow();
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ nextAvail: 65536 }, /nextAvail 65536 is not a 16-bit index/],
      [{ nextAvail: -1 }, /nextAvail/],
      [{ nextUsed: 1.5 }, /nextUsed/],
      [{ nextUsed: '3' }, /nextUsed/],
      [{ signalledUsed: undefined }, /signalledUsed/],
      [{ notificationsEnabled: 'yes' }, /notificationsEnabled/],
      [{ nextAvail: 8, nextUsed: 3 }, /5 chains in flight on a queue of 4/],
      [{ nextAvail: 3, nextUsed: 5 }, /65534 chains in flight/],
    ];
    for (const [change, message] of bad) {
      expect(refused(() => driver.restore({ ...good, ...change } as typeof good)).message).toMatch(message);
    }
    expect(refused(() => VirtQueue.restore(driver.memory, { ...driver.config, size: 6 }, good)).message).toMatch(/power of 2/);
    expect(refused(() => driver.restore(null as unknown as typeof good)).message).toMatch(/not an object/);
  });
});

// ---- Property tests: random and mutated guests -------------------------------------------------

interface Expected { readable: { address: number; length: number }[]; writable: { address: number; length: number }[] }

/**
 * An independent reading of §2.7.5 to compare with: plain GuestMemory reads, loops found by
 * remembering visited descriptors, the chain-wide rules checked after the walk.
 */
function referenceWalk(memory: GuestMemory, config: QueueConfig, head: number): Expected | 'refused' {
  const segments: { address: number; length: number; write: boolean }[] = [];
  let table = config.descTable;
  let entries = config.size;
  let index = head;
  let seen = new Set<number>();
  let indirect = false;
  const toNumber = (a: bigint) => (a <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(a) : undefined);
  for (;;) {
    if (index >= entries || seen.has(index)) return 'refused';
    seen.add(index);
    const at = table + index * 16;
    const addr = toNumber(memory.readU64(at));
    const len = memory.readU32(at + 8);
    const flags = memory.readU16(at + 12);
    const next = memory.readU16(at + 14);
    if (flags & INDIRECT) {
      if (!config.indirect || indirect || flags & NEXT || len === 0 || len % 16 !== 0 || len / 16 > config.size) return 'refused';
      if (addr === undefined || !memory.contains(addr, len)) return 'refused';
      table = addr;
      entries = len / 16;
      index = 0;
      seen = new Set();
      indirect = true;
      continue;
    }
    if (addr === undefined || !memory.contains(addr, len)) return 'refused';
    segments.push({ address: addr, length: len, write: (flags & WRITE) !== 0 });
    if (!(flags & NEXT)) break;
    index = next;
  }
  if (segments.length > config.size) return 'refused';
  if (segments.reduce((sum, s) => sum + s.length, 0) > 2 ** 32 - 1) return 'refused';
  const firstWrite = segments.findIndex((s) => s.write);
  if (firstWrite >= 0 && segments.slice(firstWrite).some((s) => !s.write)) return 'refused';
  const plain = ({ address, length }: { address: number; length: number }) => ({ address, length });
  return { readable: segments.filter((s) => !s.write).map(plain), writable: segments.filter((s) => s.write).map(plain) };
}

/**
 * Counts bounds checks (every buffer and indirect table costs one) and throws a plain Error past a
 * budget: a walk that never ended would be synchronous, so no test timeout could stop it.
 */
function stepBudget(memory: GuestMemory): { reset(limit: number): void; used(): number } {
  const original = memory.regionOf.bind(memory);
  let calls = 0;
  let limit = Infinity;
  memory.regionOf = (address: number, length: number) => {
    if (++calls > limit) throw new Error(`walk exceeded ${limit} bounds checks: it does not end`);
    return original(address, length);
  };
  return { reset: (l) => { calls = 0; limit = l; }, used: () => calls };
}

/** Like expect(), but cheap enough for the hundreds of thousands of checks the property tests make. */
function check(condition: boolean, where: string, what: () => string): void {
  if (!condition) throw new Error(`${where}: ${what()}`);
}

const sameSegments = (a: readonly { address: number; length: number }[], b: readonly { address: number; length: number }[]) =>
  a.length === b.length && a.every((s, i) => s.address === b[i]!.address && s.length === b[i]!.length);

/** Pops until the queue is empty or broken, checking every outcome; returns what happened. */
function drain(driver: MockDriver, queue: VirtQueue, random: Prng, budget: ReturnType<typeof stepBudget>, where: string) {
  const size = driver.size;
  const outcome = { chains: 0, refused: 0, broken: 0 };
  const held: number[] = [];
  for (let pops = 0; pops < size + 4; pops++) {
    // Each chain is at most `size` buffers and one indirect table, plus slack for the ring checks.
    budget.reset(2 * size + 8);
    let chain: DescriptorChain | undefined;
    try {
      chain = queue.pop();
    } catch (error) {
      if (!(error instanceof VirtQueueError)) throw new Error(`${where}: pop threw ${String(error)}`, { cause: error });
      budget.reset(Infinity);
      if (error.head === undefined) {
        if (queue.broken) {
          outcome.broken++;
          return outcome;
        }
        // The device holds `size` chains: return one and go on.
        check(queue.inFlight === size && held.length > 0, where, () => `unexpected refusal: ${error.message}`);
        queue.push(held.shift()!, 0);
        continue;
      }
      outcome.refused++;
      check(error.head < size, where, () => `refused head ${error.head} is not a descriptor`);
      check(referenceWalk(driver.memory, driver.config, error.head) === 'refused', where,
        () => `refused a chain the reference accepts: ${error.message}`);
      queue.push(error.head, 0);
      continue;
    }
    budget.reset(Infinity);
    if (!chain) return outcome;
    outcome.chains++;
    const c = chain;
    const all = [...c.readable, ...c.writable];
    for (const s of all) check(driver.memory.contains(s.address, s.length), where, () => `segment ${s.address}+${s.length} outside memory`);
    check(c.readableLength + c.writableLength <= 2 ** 32 - 1, where, () => 'chain longer than 2^32-1');
    check(c.readableLength === c.readable.reduce((sum, s) => sum + s.length, 0), where, () => 'readableLength is not the sum');
    check(c.writableLength === c.writable.reduce((sum, s) => sum + s.length, 0), where, () => 'writableLength is not the sum');
    check(all.length <= size, where, () => `${all.length} buffers in a queue of ${size}`);
    const expected = referenceWalk(driver.memory, driver.config, c.head);
    check(expected !== 'refused' && sameSegments(c.readable, expected.readable) && sameSegments(c.writable, expected.writable),
      where, () => `chain at ${c.head} differs from the reference: ${JSON.stringify(c)} vs ${JSON.stringify(expected)}`);
    // The copies must stay inside the chain too (GuestMemory would throw a non-queue error if not).
    const window = Math.min(c.readableLength, 4096);
    check(queue.readSegments(c, c.readableLength - window).length === window, where, () => 'short read');
    const written = queue.writeSegments(c, new Uint8Array(Math.min(c.writableLength, 4096) + 1).fill(0xa5));
    check(written === Math.min(c.writableLength, 4097), where, () => `wrote ${written} bytes`);
    if (random.chance(0.7)) queue.push(c.head, written);
    else held.push(c.head);
  }
  return outcome;
}

// fast-check draws each case's seed (and prints it with the path to replay a failure); the case
// itself is built by a Prng from that seed, which keeps the generators close to the ring layout.
// `npm run fuzz` runs many more cases (TSVMM_FUZZ_SCALE).
const ITERATIONS = runs(3000).numRuns!;
const SECOND_REGION = 0x40000;

function interestingAddress(random: Prng, driver: MockDriver, length: number): number | bigint {
  const end = driver.ram.length;
  return random.pick<() => number | bigint>([
    () => driver.heapStart + random.below(end - driver.heapStart),
    () => driver.heapStart + random.below(end - driver.heapStart),
    () => random.below(end),
    () => 0,
    () => end - length,
    () => end - length + 1,
    () => end - 1,
    () => end,
    () => SECOND_REGION - 8,
    () => SECOND_REGION + 0x1000 - length,
    () => SECOND_REGION + random.below(0x1000),
    () => 2 ** 32,
    () => 2 ** 53 - 1,
    () => 2n ** 53n,
    () => 2n ** 64n - 1n,
    () => 2n ** 64n - BigInt(length),
    () => BigInt(random.u32()) << 32n | BigInt(random.u32()),
  ])();
}

function interestingLength(random: Prng, driver: MockDriver): number {
  return random.pick<() => number>([
    () => random.below(64),
    () => random.below(4096),
    () => random.below(driver.ram.length),
    () => 0,
    () => 16 * (1 + random.below(driver.size)),
    () => 16 * driver.size + 16,
    () => driver.ram.length,
    () => 2 ** 31,
    () => 2 ** 32 - 1,
    () => 2 ** 32 - 16,
    () => random.u32(),
  ])();
}

function interestingNext(random: Prng, size: number, index: number): number {
  return random.pick<() => number>([
    () => random.below(size),
    () => random.below(size),
    () => (index + 1) % size,
    () => size,
    () => size - 1,
    () => 0xffff,
    () => random.u32() & 0xffff,
  ])();
}

function randomDescriptor(random: Prng, driver: MockDriver, index: number, entries: number): RawDescriptor {
  const len = interestingLength(random, driver);
  let flags = random.below(8);
  if (random.chance(0.1)) flags |= random.u32() & 0xfff8;
  return { addr: interestingAddress(random, driver, len), len, flags, next: interestingNext(random, entries, index) };
}

describe('VirtQueue property tests', () => {
  const sizes = [1, 2, 4, 8, 16, 64, 256, 1024];

  it('random descriptor tables, indirect tables and rings: valid chains or VirtQueueError, in bounded steps', () => {
    const started = performance.now();
    const totals = { chains: 0, refused: 0, broken: 0 };
    fc.assert(fc.property(fc.nat({ max: 0x7fffffff }), (seed) => {
      const random = new Prng(seed);
      const size = random.pick(sizes);
      const where = `seed ${seed}, size ${size}`;
      const driver = new MockDriver({
        size, eventIdx: random.chance(0.5), indirect: random.chance(0.8),
        memorySize: 0x20000, extraRegions: [{ start: SECOND_REGION, size: 0x1000 }],
      });
      const budget = stepBudget(driver.memory);
      // A few indirect tables somewhere in memory, some at its very end.
      for (let t = 0; t < 4; t++) {
        const entries = 1 + random.below(size);
        const table = random.chance(0.2) ? driver.ram.length - entries * 16 : driver.alloc(entries * 16, random.chance(0.5) ? 16 : 1);
        for (let i = 0; i < entries; i++) driver.writeDescriptor(i, randomDescriptor(random, driver, i, entries), table);
        // Point some descriptors of the queue's table at it properly.
        driver.writeDescriptor(random.below(size), { addr: table, len: entries * 16, flags: INDIRECT, next: random.below(size) });
      }
      for (let i = 0; i < size; i++) {
        if (random.chance(0.8)) driver.writeDescriptor(i, randomDescriptor(random, driver, i, size));
      }
      for (let slot = 0; slot < size; slot++) {
        driver.setAvailEntry(slot, random.chance(0.9) ? random.below(size) : random.pick([size, 0xffff, random.u32() & 0xffff]));
      }
      const start = random.chance(0.3) ? 0xffff - random.below(size) : random.u32() & 0xffff;
      const queue = random.chance(0.5)
        ? driver.restore({ nextAvail: start, nextUsed: start, signalledUsed: start, notificationsEnabled: random.chance(0.5) })
        : driver.queue();
      const from = random.chance(0.5) ? start : 0;
      driver.setAvailIdx(random.chance(0.9) ? from + random.below(size + 1) : random.pick([from + size + 1, from - 1, random.u32()]));
      const outcome = drain(driver, queue, random, budget, where);
      totals.chains += outcome.chains;
      totals.refused += outcome.refused;
      totals.broken += outcome.broken;
    }), { numRuns: ITERATIONS });
    // The generator must produce both good and bad chains, or it tests nothing.
    expect(totals.chains).toBeGreaterThan(1000);
    expect(totals.refused).toBeGreaterThan(1000);
    expect(totals.broken).toBeGreaterThan(100);
    expect(performance.now() - started).toBeLessThan(10 * ITERATIONS);
  }, timeout(60_000));

  it('mutated well-formed queues: valid chains or VirtQueueError, in bounded steps', () => {
    const totals = { chains: 0, refused: 0, broken: 0 };
    fc.assert(fc.property(fc.nat({ max: 0x7fffffff }), (seed) => {
      const random = new Prng(seed);
      const size = random.pick(sizes.slice(1, 7));
      const where = `seed ${seed}, size ${size}`;
      const driver = new MockDriver({
        size, eventIdx: true, indirect: true, memorySize: 0x20000,
        extraRegions: [{ start: 0x80000, size: 0x1000 }],
      });
      const budget = stepBudget(driver.memory);
      // Well-formed chains of every kind, filling the table.
      const tables: { at: number; length: number }[] = [];
      let free = size;
      const heads: number[] = [];
      while (free > 0) {
        const n = 1 + random.below(Math.min(free, 6));
        const buffers = Array.from({ length: n }, (_, i) => (i < n / 2 ? { read: 1 + random.below(64) } : { write: 1 + random.below(64) }));
        const indirect = n > 1 && random.chance(0.4);
        const direct = indirect ? random.below(n - 1) : 0;
        const before = driver.alloc(0);
        heads.push(driver.addChain(buffers, { indirect, direct }));
        if (indirect) tables.push({ at: before, length: driver.alloc(0) - before });
        free -= indirect ? direct + 1 : n;
      }
      driver.offer(...heads);
      // Then mutate a few bytes of the table, the rings or an indirect table, the way a buggy or
      // malicious driver (or a torn write) would.
      const regions = [
        { at: driver.config.descTable, length: 16 * size },
        { at: driver.config.availRing, length: 4 + 2 * size },
        ...tables,
      ];
      for (let m = 1 + random.below(4); m > 0; m--) {
        const region = random.pick(regions);
        const at = region.at + random.below(region.length);
        const kind = random.below(4);
        if (kind === 0) driver.ram[at] = driver.ram[at]! ^ (1 << random.below(8));
        else if (kind === 1) driver.ram[at] = random.below(256);
        else if (kind === 2) driver.ram[at] = random.pick([0, 0xff, 0x80, 0x7f, 1, size & 0xff]);
        else driver.ram.fill(0xff, at, Math.min(at + 4, region.at + region.length));
      }
      const outcome = drain(driver, driver.queue(), random, budget, where);
      totals.chains += outcome.chains;
      totals.refused += outcome.refused;
      totals.broken += outcome.broken;
    }), { numRuns: ITERATIONS });
    expect(totals.chains).toBeGreaterThan(3000);
    expect(totals.refused).toBeGreaterThan(300);
    expect(totals.broken).toBeGreaterThan(30);
  }, timeout(60_000));

  it('ends every loop, of every length, with or without a lead-in, directly and in indirect tables', () => {
    for (const size of [1, 2, 8, 64, 256]) {
      for (let loop = 1; loop <= size; loop++) {
        const leadIn = (size - loop) >> 1;
        // Direct: descriptors leadIn .. leadIn+loop-1 form the loop; 0 .. leadIn-1 lead into it.
        const driver = new MockDriver({ size, indirect: true, memorySize: 0x40000 });
        const budget = stepBudget(driver.memory);
        for (let i = 0; i < leadIn + loop; i++) {
          const next = i + 1 < leadIn + loop ? i + 1 : leadIn;
          driver.writeDescriptor(i, { addr: 0x100, len: 1, flags: NEXT, next });
        }
        driver.offer(0);
        const queue = driver.queue();
        budget.reset(size + 1);
        expect(refused(() => queue.pop()).message).toMatch(/loop/);
        expect(budget.used()).toBeLessThanOrEqual(size);

        // Indirect: the same shape inside a table of leadIn + loop entries.
        const entries = leadIn + loop;
        const table = driver.alloc(entries * 16);
        for (let i = 0; i < entries; i++) {
          driver.writeDescriptor(i, { addr: 0x100, len: 1, flags: NEXT, next: i + 1 < entries ? i + 1 : leadIn }, table);
        }
        driver.writeDescriptor(1 % size, { addr: table, len: entries * 16, flags: INDIRECT, next: 0 });
        driver.offer(1 % size);
        queue.push(0, 0);
        budget.reset(size + 2);
        expect(refused(() => queue.pop()).message).toMatch(/indirect descriptor .* a loop/);
      }
    }
  });

  it('ends a loop through all 32768 descriptors of the largest queue', () => {
    const size = 32768;
    const driver = new MockDriver({ size });
    for (let i = 0; i < size; i++) driver.writeDescriptor(i, { addr: 0x100, len: 1, flags: NEXT, next: (i * 7 + 1) % size });
    driver.offer(5);
    const queue = driver.queue();
    expect(refused(() => queue.pop()).message).toMatch(/longer than its table of 32768: a loop/);
    // And the longest legal chain: all 32768 descriptors in a line.
    for (let i = 0; i < size; i++) driver.writeDescriptor(i, { addr: 0x100, len: 1, flags: i === size - 1 ? 0 : NEXT, next: i + 1 });
    queue.push(5, 0);
    driver.offer(0);
    expect(popped(queue).readableLength).toBe(size);
  });
});
