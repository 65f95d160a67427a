// The I/O side of a virtio device (VirtioDeviceRunner) against the transport's shared register
// file and a mock driver: the orderings that epoll and a fast driver can produce.

import { closeSync, readSync } from 'node:fs';
import { afterEach, describe, expect, it } from 'vitest';
import { addon, EFD_NONBLOCK } from '../../src/kvm/addon.js';
import { INTERRUPT, REG, STATUS, VIRTIO_F_VERSION_1, VirtioMmioState, VirtioMmioTransport } from '../../src/devices/virtio/mmio-transport.js';
import { VirtioDeviceRunner, type FdWatcher, type VirtioBackend } from '../../src/devices/virtio/device.js';
import { RngBackend, rngInfo } from '../../src/devices/virtio/rng.js';
import { MockDriver } from '../helpers/virtq-builder.js';

const VIRTQ_DESC_F_NEXT = 1;

function setup(backend: VirtioBackend = new RngBackend()) {
  const driver = new MockDriver({ size: 16 });
  const info = rngInfo();
  const state = VirtioMmioState.create(info);
  const transport = new VirtioMmioTransport(state, info, { onStateChange: () => {}, onQueueNotify: () => {}, onInterrupt: () => {} });
  const irqfd = addon().eventfd(0, EFD_NONBLOCK);
  const logs: string[] = [];
  const watcher: FdWatcher = { watch: () => {}, unwatch: () => {} };
  const runner = new VirtioDeviceRunner('virtio-rng', state, info, backend, driver.memory, irqfd, watcher, (m) => logs.push(m));
  const write = (offset: number, value: number) => transport.write(offset, new Uint8Array(new Uint32Array([value >>> 0]).buffer));
  /** What a driver does from reset to DRIVER_OK, with the queue rings at `base` offsets of the mock's. */
  const initialize = (shift = 0) => {
    write(REG.Status, 0);
    write(REG.Status, STATUS.ACKNOWLEDGE | STATUS.DRIVER);
    write(REG.DriverFeaturesSel, 1);
    write(REG.DriverFeatures, Number(VIRTIO_F_VERSION_1 >> 32n));
    write(REG.Status, STATUS.ACKNOWLEDGE | STATUS.DRIVER | STATUS.FEATURES_OK);
    write(REG.QueueSel, 0);
    write(REG.QueueNum, driver.size);
    write(REG.QueueDescLow, driver.config.descTable + shift);
    write(REG.QueueDriverLow, driver.config.availRing + shift);
    write(REG.QueueDeviceLow, driver.config.usedRing + shift);
    write(REG.QueueReady, 1);
    write(REG.Status, STATUS.ACKNOWLEDGE | STATUS.DRIVER | STATUS.FEATURES_OK | STATUS.DRIVER_OK);
  };
  const interrupts = () => {
    const counter = new BigUint64Array(1);
    try { readSync(irqfd, counter); } catch { /* none */ }
    return Number(counter[0]);
  };
  return { driver, state, runner, irqfd, logs, initialize, interrupts, write };
}

describe('virtio device runner', () => {
  let fd = -1;
  afterEach(() => { if (fd >= 0) closeSync(fd); });

  it('serves a request whose notification arrives before it has seen DRIVER_OK', () => {
    const s = setup();
    fd = s.irqfd;
    s.initialize();
    const head = s.driver.addChain([{ write: 32 }]);
    s.driver.offer(head);
    s.runner.onQueueNotify(0); // no onStateChange() yet: epoll reported the queue first
    expect(s.driver.usedIdx).toBe(1);
    expect(s.driver.usedElem(0)).toEqual({ id: head, len: 32 });
    expect(s.interrupts()).toBe(1);
    expect(s.state.interruptStatus & INTERRUPT.USED_BUFFER).toBe(INTERRUPT.USED_BUFFER);
  });

  it('serves buffers posted before activation as soon as it activates', () => {
    const s = setup();
    fd = s.irqfd;
    s.initialize();
    s.driver.offer(s.driver.addChain([{ write: 8 }]));
    s.runner.onStateChange();
    expect(s.driver.usedIdx).toBe(1);
  });

  it('marks a corrupted queue NEEDS_RESET once, then comes back after a reset it only sees in hindsight', () => {
    const s = setup();
    fd = s.irqfd;
    s.initialize();
    s.runner.onStateChange();
    s.driver.writeDescriptor(0, { addr: s.driver.heapStart, len: 16, flags: VIRTQ_DESC_F_NEXT, next: 0 }); // a loop
    s.driver.offer(0);
    s.runner.onQueueNotify(0);
    expect(s.state.status & STATUS.DEVICE_NEEDS_RESET).toBe(STATUS.DEVICE_NEEDS_RESET);
    expect(s.state.interruptStatus & INTERRUPT.CONFIG_CHANGE).toBe(INTERRUPT.CONFIG_CHANGE);
    expect(s.logs).toHaveLength(1);
    expect(s.logs[0]).toMatch(/virtio-rng: the guest's virtqueue is unusable .*loop.*; device needs reset/);
    s.runner.onQueueNotify(0); // still broken: no second line, no crash
    expect(s.logs).toHaveLength(1);

    // The driver resets and sets everything up again before the I/O thread wakes up once.
    const fresh = new MockDriver({ size: 16 });
    s.driver.ram.fill(0, 0x1000, fresh.heapStart);
    s.initialize();
    expect(s.state.status & STATUS.DEVICE_NEEDS_RESET).toBe(0);
    const head = s.driver.addChain([{ write: 16 }]);
    s.driver.startAt(0);
    s.driver.offer(head);
    s.runner.onStateChange();
    expect(s.driver.usedIdx).toBe(1);
    expect(s.driver.usedElem(0).len).toBe(16);
  });

  it('a backend that throws anything puts the device in NEEDS_RESET, logged once per kind and counted; the I/O thread goes on', () => {
    let calls = 0;
    const s = setup({
      activate: () => {},
      process: () => { calls++; throw new TypeError(`bug number ${calls}`); },
      reset: () => {},
    });
    fd = s.irqfd;
    s.initialize();
    s.runner.onStateChange(); // activation serves the queue once: the first throw
    expect(() => s.runner.onQueueNotify(0)).not.toThrow();
    expect(s.state.status & STATUS.DEVICE_NEEDS_RESET).toBe(STATUS.DEVICE_NEEDS_RESET);
    expect(s.interrupts()).toBeGreaterThan(0);
    // The driver resets and sets up again, and the backend throws again: counted, not logged again.
    s.initialize();
    s.runner.onStateChange();
    expect(calls).toBe(2);
    expect(s.runner.faults.total).toBe(2);
    expect(s.logs).toEqual(['virtio-rng: the device failed (TypeError: bug number 1); device needs reset (logged once; repeats are counted)']);
  });
});
