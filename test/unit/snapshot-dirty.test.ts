// The pages the VMM writes into guest memory, which KVM's dirty log cannot see: GuestMemory marks
// them, and a diff snapshot stores them with the pages the vCPUs wrote (src/vmm/snapshot.ts).
// Every way the device thread writes guest memory must mark the page; reading must not.

import { closeSync, mkdtempSync, openSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { dirtyBitmapBytes, GuestMemory } from '../../src/memory/guest-memory.js';
import type { VirtioBackend, VirtioBackendContext } from '../../src/devices/virtio/device.js';
import type { VirtQueue } from '../../src/devices/virtio/queue.js';
import { BlockBackend } from '../../src/devices/virtio/block.js';
import { RngBackend } from '../../src/devices/virtio/rng.js';
import { ConsoleBackend } from '../../src/devices/virtio/console.js';
import { ByteRing } from '../../src/vmm/byte-ring.js';
import { addon, EFD_NONBLOCK } from '../../src/kvm/addon.js';
import { MockDriver } from '../helpers/virtq-builder.js';

const PAGE = 4096;

/** The pages set in a bitmap laid out as KVM_GET_DIRTY_LOG fills it (bit p % 8 of byte p / 8). */
function pages(bitmap: Uint8Array): number[] {
  const out: number[] = [];
  bitmap.forEach((byte, i) => { for (let bit = 0; bit < 8; bit++) if (byte & (1 << bit)) out.push(i * 8 + bit); });
  return out;
}

/** What the VMM marked in the first region since the last call. */
const taken = (memory: GuestMemory) => pages(memory.takeDirty()[0]!);

const VIRTQ_DESC_F_NEXT = 1;
const VIRTQ_DESC_F_WRITE = 2;

/** The guest-physical pages of a direct (not indirect) chain's device-writable buffers, and the ring page: what a device that fills them marks. */
function expectedMarks(driver: MockDriver, head: number): number[] {
  const out = new Set([Math.floor(driver.config.usedRing / PAGE)]);
  for (let index = head; ;) {
    const d = driver.readDescriptor(index);
    const start = Number(d.addr);
    if (d.flags & VIRTQ_DESC_F_WRITE) for (let p = Math.floor(start / PAGE); p <= Math.floor((start + d.len - 1) / PAGE); p++) out.add(p);
    if (!(d.flags & VIRTQ_DESC_F_NEXT)) return [...out].sort((a, b) => a - b);
    index = d.next;
  }
}

/** A device backend activated on a mock driver's queue 0 (and 1, if asked). */
function activate(backend: VirtioBackend, driver: MockDriver, queues = 1): Map<number, VirtQueue> {
  const map = new Map(Array.from({ length: queues }, (_, i) => [i, i === 0 ? driver.queue() : new MockDriver().queue()] as const));
  const context: VirtioBackendContext = {
    memory: driver.memory, queues: map, features: 0n, usedBuffers: () => {}, watch: () => {}, unwatch: () => {}, log: () => {},
  };
  backend.activate(context);
  return map;
}

describe('GuestMemory marks the pages the VMM writes', () => {
  const memory = () => GuestMemory.fromBuffers([{ start: 0, bytes: new Uint8Array(80 * PAGE) }, { start: 0x100000, bytes: new Uint8Array(PAGE) }]);

  it('every writer marks, readers do not', () => {
    const m = memory();
    m.writeU8(0 * PAGE + 5, 1);
    m.writeU16(1 * PAGE + 4094, 1); // the last two bytes of page 1
    m.writeU32(2 * PAGE + 4094, 1); // straddles pages 2 and 3
    m.writeU64(5 * PAGE, 1n);
    m.write(7 * PAGE - 1, Uint8Array.of(1, 2)); // pages 6 and 7
    m.fill(9 * PAGE, 2 * PAGE + 1, 3); // pages 9, 10, 11
    m.slice(40 * PAGE, 1)[0] = 7;
    m.markDirty(70 * PAGE + 100, 0); // nothing
    expect(taken(m)).toEqual([0, 1, 2, 3, 5, 6, 7, 9, 10, 11, 40]);

    m.read(0, 20 * PAGE);
    m.readView(20 * PAGE, 10 * PAGE);
    m.readU8(0); m.readU16(2); m.readU32(4); m.readU64(8); m.readCString(0, 10);
    expect(taken(m)).toEqual([]);
  });

  it('hands out bitmaps in KVM\'s layout, one per region, starting over each time; a failed diff gives them back', () => {
    const m = memory();
    m.writeU8(0x100000, 1);
    m.writeU8(65 * PAGE, 1);
    const first = m.takeDirty();
    expect(first.map((b) => b.length)).toEqual([dirtyBitmapBytes(80 * PAGE), dirtyBitmapBytes(PAGE)]);
    expect(first.map((b) => b.length)).toEqual([16, 8]); // 64-bit words, as KVM rounds them
    expect(first.map(pages)).toEqual([[65], [0]]);
    expect(m.takeDirty().map(pages)).toEqual([[], []]);
    m.writeU8(3 * PAGE, 1);
    m.markDirtyPages(first);
    expect(m.takeDirty().map(pages)).toEqual([[3, 65], [0]]);
  });

  it('every thread\'s view of the same mapping shares the marks', () => {
    const own = GuestMemory.allocate([{ start: 0, size: 16 * PAGE }]);
    try {
      // A worker attaches the descriptors it was sent; the SharedArrayBuffer goes with them.
      const other = GuestMemory.attach(structuredClone(own.descriptors));
      other.writeU32(12 * PAGE, 0xdeadbeef);
      expect(own.readU32(12 * PAGE)).toBe(0xdeadbeef);
      expect(taken(own)).toEqual([12]);
      expect(taken(other)).toEqual([]);
    } finally {
      own.close();
    }
  });
});

describe('virtqueues and devices mark what they write into guest memory', () => {
  it('a queue marks its used ring on push and when it moves avail_event; reading a chain marks nothing', () => {
    const driver = new MockDriver({ size: 16, eventIdx: true });
    const ringPage = Math.floor(driver.config.usedRing / PAGE);
    const q = driver.queue();
    const head = driver.addChain([{ read: Uint8Array.of(1, 2, 3) }, { write: 64 }]);
    driver.offer(head);
    driver.memory.takeDirty();
    const chain = q.pop()!; // with event index, pop() writes avail_event in the used ring
    expect(taken(driver.memory)).toEqual([ringPage]);
    expect(q.readSegments(chain)).toEqual(Uint8Array.of(1, 2, 3));
    expect(taken(driver.memory)).toEqual([]);
    q.writeSegments(chain, Uint8Array.of(9, 9));
    expect(taken(driver.memory)).toEqual([Math.floor(chain.writable[0]!.address / PAGE)]);
    q.push(chain.head, 2);
    expect(taken(driver.memory)).toEqual([ringPage]);
    q.setNotificationsEnabled(false);
    q.setNotificationsEnabled(true);
    expect(taken(driver.memory)).toEqual([ringPage]);
  });

  it('virtio-blk: a read marks its data buffers, a write only the status byte', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tsvmm-dirty-'));
    const fd = openSync(path.join(dir, 'disk.img'), 'w+');
    try {
      writeSync(fd, Buffer.alloc(64 * 1024, 0x5a));
      const driver = new MockDriver({ size: 16, memorySize: 64 * PAGE });
      const block = new BlockBackend(fd, { size: 64 * 1024, readOnly: false, id: 'disk' });
      activate(block, driver);
      const header = (type: number) => {
        const h = new Uint8Array(16);
        new DataView(h.buffer).setUint32(0, type, true);
        return h;
      };
      const read = driver.addChain([{ read: header(0) }, { write: 3 * PAGE }, { write: 1 }]);
      driver.offer(read);
      driver.memory.takeDirty();
      block.process(0);
      expect(driver.usedElem(0)).toEqual({ id: read, len: 3 * PAGE + 1 });
      expect(driver.ram[Number(driver.readDescriptor(driver.readDescriptor(read).next).addr)]).toBe(0x5a);
      // Four pages or five: the 12 KiB buffer, the status byte's page and the ring's.
      expect(expectedMarks(driver, read).length).toBeGreaterThanOrEqual(4);
      expect(taken(driver.memory)).toEqual(expectedMarks(driver, read));

      const write = driver.addChain([{ read: header(1) }, { read: 3 * PAGE }, { write: 1 }]);
      driver.offer(write);
      driver.memory.takeDirty();
      block.process(0);
      expect(driver.usedElem(1)).toEqual({ id: write, len: 1 });
      expect(expectedMarks(driver, write).length).toBeLessThanOrEqual(2);
      expect(taken(driver.memory)).toEqual(expectedMarks(driver, write));
    } finally {
      closeSync(fd);
    }
  });

  it('virtio-rng and virtio-console mark the buffers they fill', () => {
    const driver = new MockDriver({ size: 16, memorySize: 32 * PAGE });
    const rng = new RngBackend();
    activate(rng, driver);
    const head = driver.addChain([{ write: PAGE + 8 }]);
    driver.offer(head);
    driver.memory.takeDirty();
    rng.process(0);
    expect(taken(driver.memory)).toEqual(expectedMarks(driver, head));

    const consoleDriver = new MockDriver({ size: 16, memorySize: 32 * PAGE });
    const input = ByteRing.create(64);
    const inputReady = addon().eventfd(0, EFD_NONBLOCK);
    try {
      const console = new ConsoleBackend(ByteRing.create(64), input, inputReady);
      activate(console, consoleDriver, 2);
      const rx = consoleDriver.addChain([{ write: 16 }]);
      consoleDriver.offer(rx);
      consoleDriver.memory.takeDirty();
      input.writeSome(Buffer.from('typed'));
      console.process(0);
      expect(consoleDriver.usedElem(0)).toEqual({ id: rx, len: 5 });
      expect(taken(consoleDriver.memory)).toEqual(expectedMarks(consoleDriver, rx));
    } finally {
      closeSync(inputReady);
    }
  });
});
