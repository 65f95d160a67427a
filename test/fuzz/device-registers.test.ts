// Every emulated device's whole register space, driven with random accesses in random orders and
// sizes, as a hostile guest would: no device method may throw (the bus would catch it, but a
// device that throws is a bug), what a device keeps stays bounded, and the virtio devices' I/O
// side, run against the same random register writes and random bytes in guest memory, fails only
// as the spec allows (DEVICE_NEEDS_RESET for a broken ring), never with another exception.

import { closeSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { constants as fsConstants } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { Bus, PIO_SPACE, type BusDevice } from '../../src/devices/bus.js';
import { Serial16550, COM1, SERIAL_PORT_COUNT, RX_FIFO_SIZE } from '../../src/devices/serial-16550.js';
import { I8042, I8042_DATA_PORT, I8042_PORT_COUNT, I8042_OUTPUT_LIMIT } from '../../src/devices/i8042.js';
import { RtcCmos, RTC_PORT, RTC_PORT_COUNT } from '../../src/devices/rtc-cmos.js';
import { AcpiPm } from '../../src/devices/acpi-pm.js';
import { PostPort, POST_PORT } from '../../src/devices/post-port.js';
import { ACPI_PM } from '../../src/arch/x86/acpi.js';
import { GuestMemory } from '../../src/memory/guest-memory.js';
import {
  REG, STATUS, VIRTIO_F_VERSION_1, VIRTIO_MMIO_SIZE, VirtioMmioState, VirtioMmioTransport, type VirtioDeviceInfo,
} from '../../src/devices/virtio/mmio-transport.js';
import { VirtioDeviceRunner, type VirtioBackend } from '../../src/devices/virtio/device.js';
import { BlockBackend, blockInfo } from '../../src/devices/virtio/block.js';
import { NetBackend, netInfo } from '../../src/devices/virtio/net.js';
import { ConsoleBackend, consoleInfo } from '../../src/devices/virtio/console.js';
import { RngBackend, rngInfo } from '../../src/devices/virtio/rng.js';
import { ByteRing } from '../../src/vmm/byte-ring.js';
import { EventFd } from '../../src/kvm/event-fd.js';
import { accessSize, bytesOf, runs, timeout, wild32 } from '../helpers/fuzz.js';

interface Access { write: boolean; offset: number; size: number; value: number }

/** Accesses anywhere in a device's window (and a little past it, which the bus must refuse). */
const accesses = (span: number) => fc.array(
  fc.record({ write: fc.boolean(), offset: fc.nat({ max: span + 3 }), size: accessSize, value: wild32 }),
  { maxLength: 60 },
);

/** Plays accesses through a bus holding one device; returns the bus (its `faults` must stay 0). */
function play(bus: Bus, base: number, list: readonly Access[]): void {
  for (const a of list) {
    const data = bytesOf(a.value, a.size);
    if (a.write) bus.write(base + a.offset, data);
    else bus.read(base + a.offset, data);
  }
}

describe('legacy devices under random register traffic', () => {
  const cases: { name: string; base: number; span: number; make(): { device: BusDevice; bounded(): boolean } }[] = [
    {
      name: '16550 UART', base: COM1.port, span: SERIAL_PORT_COUNT,
      make() {
        let input = 0;
        const serial = new Serial16550({ set: () => {} }, { write: () => {} }, { read: (into) => { into.fill(0x61); return input++ % 3 === 0 ? into.length : 0; } });
        return { device: serial, bounded: () => serial.save().rx.length <= RX_FIFO_SIZE };
      },
    },
    {
      name: 'i8042', base: I8042_DATA_PORT, span: I8042_PORT_COUNT,
      make() {
        const i8042 = new I8042({ onReset: () => {} });
        return { device: i8042, bounded: () => i8042.save().output.length <= I8042_OUTPUT_LIMIT };
      },
    },
    {
      name: 'CMOS RTC', base: RTC_PORT, span: RTC_PORT_COUNT,
      make() {
        const rtc = new RtcCmos();
        return { device: rtc, bounded: () => rtc.save().ram.length === 128 && Number.isFinite(rtc.save().offsetMs) };
      },
    },
    {
      name: 'ACPI PM', base: ACPI_PM.base, span: ACPI_PM.length,
      make() {
        const pm = new AcpiPm({ onPowerOff: () => {}, onReset: () => {}, onUnsupportedSleep: () => {} });
        return { device: pm, bounded: () => true };
      },
    },
    {
      name: 'POST port', base: POST_PORT, span: 1,
      make() {
        const post = new PostPort();
        return { device: post, bounded: () => post.lastCode >= 0 && post.lastCode <= 0xff };
      },
    },
  ];

  for (const c of cases) {
    it(`${c.name}: no access throws, reads return bytes, state stays bounded`, () => {
      fc.assert(fc.property(accesses(c.span), (list) => {
        const { device, bounded } = c.make();
        const bus = new Bus('port I/O', PIO_SPACE, (f) => { throw f.error; });
        bus.insert(c.name, c.base, c.span, device);
        play(bus, c.base, list);
        expect(bus.faults).toBe(0);
        expect(bounded()).toBe(true);
      }), runs(1000));
    }, timeout(60_000));
  }

  it('the i8042 keeps at most a few replies however many commands go unread', () => {
    fc.assert(fc.property(fc.array(fc.constantFrom(0x20, 0xaa, 0xab, 0xa9, 0xd0, 0x60, 0xd1, 0xa7, 0xae), { maxLength: 200 }), (commands) => {
      const i8042 = new I8042({ onReset: () => {} });
      for (const command of commands) i8042.write(4, Uint8Array.of(command));
      expect(i8042.save().output.length).toBeLessThanOrEqual(I8042_OUTPUT_LIMIT);
    }), runs(200));
  });

  it('the RTC keeps a finite clock whatever BCD garbage sets it', () => {
    fc.assert(fc.property(fc.array(fc.tuple(fc.nat({ max: 0x7f }), fc.nat({ max: 0xff })), { maxLength: 40 }), (writes) => {
      const rtc = new RtcCmos();
      for (const [index, value] of writes) {
        rtc.write(0, Uint8Array.of(index));
        rtc.write(1, Uint8Array.of(value));
      }
      const data = new Uint8Array(1);
      for (const index of [0, 2, 4, 6, 7, 8, 9, 0x32]) {
        rtc.write(0, Uint8Array.of(index));
        rtc.read(1, data);
        expect(Number.isInteger(data[0])).toBe(true);
      }
      expect(Number.isFinite(rtc.save().offsetMs)).toBe(true);
    }), runs(1000));
  });
});

// ---------------------------------------------------------------------------------------------
// virtio: the transport on the vCPU side and the device's I/O side together.

const RAM = 0x20000;
const dir = mkdtempSync(path.join(tmpdir(), 'tsvmm-fuzz-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Step =
  | { kind: 'register'; offset: number; value: number }
  | { kind: 'access'; offset: number; size: number; write: boolean; value: number }
  | { kind: 'init'; queue: number; size: number; layout: { desc: number; avail: number; used: number } | null; features: number }
  | { kind: 'offer'; descriptors: { index: number; addr: number; len: number; flags: number; next: number }[]; head: number }
  | { kind: 'poke'; at: number; bytes: Uint8Array }
  | { kind: 'notify'; queue: number }
  | { kind: 'state' };

/** Where a well-behaved driver puts its rings (the "init" step's default layout). */
const RINGS = { desc: 0x1000, avail: 0x2000, used: 0x3000 };
const HEAP = 0x8000;
const registerOffsets = Object.values(REG);
/** Addresses a driver might give: aligned inside RAM, or anything. */
const guestAddress = fc.oneof(fc.nat({ max: RAM / 16 - 1 }).map((n) => n * 16), wild32);
const descriptor = fc.record({
  index: fc.nat({ max: 17 }),
  addr: fc.oneof({ weight: 4, arbitrary: fc.nat({ max: RAM - HEAP - 1 }).map((n) => HEAP + n) }, { weight: 1, arbitrary: guestAddress }),
  len: fc.oneof({ weight: 4, arbitrary: fc.nat({ max: 600 }) }, { weight: 1, arbitrary: wild32 }),
  // NEXT, WRITE, INDIRECT in every combination, and stray bits.
  flags: fc.oneof({ weight: 4, arbitrary: fc.nat({ max: 7 }) }, { weight: 1, arbitrary: fc.nat({ max: 0xffff }) }),
  next: fc.nat({ max: 17 }),
});
const steps: fc.Arbitrary<Step[]> = fc.array(fc.oneof(
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('register' as const), offset: fc.constantFrom(...registerOffsets), value: wild32 }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('access' as const), offset: fc.nat({ max: VIRTIO_MMIO_SIZE - 1 }), size: accessSize, write: fc.boolean(), value: wild32 }) },
  {
    weight: 2, arbitrary: fc.record({
      kind: fc.constant('init' as const), queue: fc.oneof(fc.nat({ max: 1 }), fc.nat({ max: 3 })),
      size: fc.oneof({ weight: 5, arbitrary: fc.constantFrom(1, 2, 4, 8, 16) }, { weight: 1, arbitrary: fc.constantFrom(0, 3, 256, 512) }),
      layout: fc.option(fc.record({ desc: guestAddress, avail: guestAddress, used: guestAddress }), { freq: 4 }),
      features: fc.nat({ max: 0xffffffff }),
    }),
  },
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('offer' as const), descriptors: fc.array(descriptor, { minLength: 1, maxLength: 4 }), head: fc.nat({ max: 17 }) }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('poke' as const), at: fc.nat({ max: RAM - 1 }), bytes: fc.uint8Array({ minLength: 1, maxLength: 32 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('notify' as const), queue: fc.nat({ max: 3 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('state' as const) }) },
), { maxLength: 50 });

/**
 * One driver that does everything right: set-up, a three-part request (a readable 16-byte header,
 * a writable buffer, a writable status byte) on every queue, a notify. Random chains reach a
 * served request only now and then (a block request needs all three parts), so this example runs
 * first in every property and the "served" count below does not depend on the seed.
 */
const wellBehaved: Step[] = [
  { kind: 'init', queue: 0, size: 8, layout: null, features: 0 },
  {
    kind: 'offer', head: 0, descriptors: [
      { index: 0, addr: HEAP, len: 16, flags: 1, next: 1 },
      { index: 1, addr: HEAP + 0x100, len: 512, flags: 3, next: 2 },
      { index: 2, addr: HEAP + 0x400, len: 1, flags: 2, next: 0 },
    ],
  },
  { kind: 'notify', queue: 0 },
];

interface VirtioCase { name: string; info: VirtioDeviceInfo; backend(): VirtioBackend }

const diskPath = path.join(dir, 'disk.img');
writeFileSync(diskPath, new Uint8Array(64 * 1024));
const disk = openSync(diskPath, 'r+');
const tap = openSync('/dev/null', fsConstants.O_RDWR | fsConstants.O_NONBLOCK);
const consoleReady = EventFd.create();
afterAll(() => { for (const fd of [disk, tap, consoleReady.fd]) closeSync(fd); });

const virtioCases: VirtioCase[] = [
  { name: 'virtio-blk', info: blockInfo({ size: 64 * 1024, readOnly: false, id: 'fuzz' }), backend: () => new BlockBackend(disk, { size: 64 * 1024, readOnly: false, id: 'fuzz' }) },
  { name: 'virtio-net', info: netInfo(Uint8Array.of(0x52, 0x54, 0, 1, 2, 3)), backend: () => new NetBackend(tap) },
  {
    name: 'virtio-console', info: consoleInfo(), backend: () => {
      const input = ByteRing.create(64);
      input.writeSome(Uint8Array.of(1, 2, 3, 4, 5));
      // Output to a sink that never fills: a ByteRing with no reader would block, as a busy line does.
      return new ConsoleBackend({ write: () => {} }, input, consoleReady.fd);
    },
  },
  { name: 'virtio-rng', info: rngInfo(), backend: () => new RngBackend() },
];

describe('virtio devices under random register traffic and random ring contents', () => {
  for (const c of virtioCases) {
    it(`${c.name}: the transport never throws; the I/O side fails only into DEVICE_NEEDS_RESET`, () => {
      // How deep the runs got, so that a generator that never reaches the rings shows up as a failure.
      const reached = { served: 0, broken: 0 };
      fc.assert(fc.property(steps, (list) => {
        const ram = new Uint8Array(RAM);
        const view = new DataView(ram.buffer);
        const driver = { size: 1 };
        const memory = GuestMemory.fromBuffers([{ start: 0, bytes: ram }]);
        const state = VirtioMmioState.create(c.info);
        const irq = EventFd.create();
        const logs: string[] = [];
        const runner = new VirtioDeviceRunner(c.name, state, c.info, c.backend(), memory, irq.fd,
          { watch: () => {}, unwatch: () => {} }, (m) => logs.push(m));
        const pending = { state: false, notify: new Set<number>() };
        const transport = new VirtioMmioTransport(state, c.info, {
          onStateChange: () => { pending.state = true; },
          onQueueNotify: (q) => pending.notify.add(q),
          onInterrupt: () => {},
        });
        const write = (offset: number, value: number) => transport.write(offset, bytesOf(value, 4));
        try {
          for (const step of list) {
            switch (step.kind) {
              case 'register': write(step.offset, step.value); break;
              case 'access': {
                const data = bytesOf(step.value, step.size);
                if (step.write) transport.write(step.offset, data);
                else transport.read(step.offset, data);
                break;
              }
              case 'init': {
                const layout = step.layout ?? RINGS;
                write(REG.Status, 0);
                write(REG.Status, STATUS.ACKNOWLEDGE | STATUS.DRIVER);
                write(REG.DriverFeaturesSel, 0);
                write(REG.DriverFeatures, step.features & Number(c.info.features & 0xffffffffn));
                write(REG.DriverFeaturesSel, 1);
                write(REG.DriverFeatures, Number(VIRTIO_F_VERSION_1 >> 32n));
                write(REG.Status, STATUS.ACKNOWLEDGE | STATUS.DRIVER | STATUS.FEATURES_OK);
                // Every queue of the device, or just the one the step names.
                for (const q of step.queue < c.info.queueSizes.length ? c.info.queueSizes.map((_, i) => i) : [step.queue]) {
                  write(REG.QueueSel, q);
                  write(REG.QueueNum, step.size);
                  write(REG.QueueDescLow, layout.desc + q * 0x400);
                  write(REG.QueueDriverLow, layout.avail + q * 0x400);
                  write(REG.QueueDeviceLow, layout.used + q * 0x400);
                  write(REG.QueueReady, 1);
                }
                write(REG.Status, STATUS.ACKNOWLEDGE | STATUS.DRIVER | STATUS.FEATURES_OK | STATUS.DRIVER_OK);
                driver.size = step.size;
                break;
              }
              case 'offer': {
                // Descriptors and an available-ring entry where the default layout's queues are,
                // offered to every queue: plausible chains, often broken in some way.
                for (let q = 0; q < c.info.queueSizes.length; q++) {
                  const base = q * 0x400;
                  for (const d of step.descriptors) {
                    const at = RINGS.desc + base + 16 * d.index;
                    if (at + 16 > RAM) continue;
                    view.setBigUint64(at, BigInt(d.addr), true);
                    view.setUint32(at + 8, d.len >>> 0, true);
                    view.setUint16(at + 12, d.flags, true);
                    view.setUint16(at + 14, d.next, true);
                  }
                  const idx = view.getUint16(RINGS.avail + base + 2, true);
                  view.setUint16(RINGS.avail + base + 4 + 2 * (idx % Math.max(1, driver.size)), step.head, true);
                  view.setUint16(RINGS.avail + base + 2, (idx + 1) & 0xffff, true);
                }
                break;
              }
              case 'poke': ram.set(step.bytes.subarray(0, RAM - step.at), step.at); break;
              case 'notify': runner.onQueueNotify(step.queue); break;
              case 'state': runner.onStateChange(); break;
            }
            // What the I/O thread does when its eventfds fire.
            if (pending.state) { pending.state = false; runner.onStateChange(); }
            for (const q of pending.notify) runner.onQueueNotify(q);
            pending.notify.clear();
          }
        } finally {
          closeSync(irq.fd);
        }
        if (state.interruptStatus & 1) reached.served++;
        if (state.status & STATUS.DEVICE_NEEDS_RESET) reached.broken++;
        // A broken ring is the guest's fault and is reported as such; anything else is our bug.
        expect(logs.filter((m) => !/virtqueue is unusable|request without header|frame of|request type/.test(m))).toEqual([]);
      }), { ...runs(250), examples: [[wellBehaved]] });
      expect(reached.served).toBeGreaterThan(0);
      expect(reached.broken).toBeGreaterThan(0);
    }, timeout(120_000));
  }
});
