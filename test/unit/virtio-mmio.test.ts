import { describe, expect, it } from 'vitest';
import {
  INTERRUPT, REG, STATUS, VIRTIO_F_VERSION_1, VirtioMmioState, VirtioMmioTransport, type VirtioDeviceInfo,
} from '../../src/devices/virtio/mmio-transport.js';

const info: VirtioDeviceInfo = {
  deviceId: 2,
  features: VIRTIO_F_VERSION_1 | (1n << 5n),
  queueSizes: [256, 64],
  config: Uint8Array.of(1, 2, 3, 4, 5, 6, 7, 8),
};

function device() {
  const events: string[] = [];
  const state = VirtioMmioState.create(info);
  const transport = new VirtioMmioTransport(state, info, {
    onStateChange: () => events.push('state'),
    onQueueNotify: (q) => events.push(`notify ${q}`),
    onInterrupt: () => events.push('interrupt'),
  });
  const read = (offset: number) => {
    const d = new Uint8Array(4);
    transport.read(offset, d);
    return new DataView(d.buffer).getUint32(0, true);
  };
  const write = (offset: number, value: number) => {
    const d = new Uint8Array(4);
    new DataView(d.buffer).setUint32(0, value >>> 0, true);
    transport.write(offset, d);
  };
  return { state, transport, events, read, write };
}

describe('virtio-mmio transport (version 2)', () => {
  it('identifies itself: magic, version, device and vendor id', () => {
    const d = device();
    expect(d.read(REG.MagicValue)).toBe(0x74726976);
    expect(d.read(REG.Version)).toBe(2);
    expect(d.read(REG.DeviceID)).toBe(2);
    expect(d.read(REG.VendorID)).toBe(0x4d565354);
  });

  it('offers features in two 32-bit halves and accepts a subset with VERSION_1', () => {
    const d = device();
    d.write(REG.DeviceFeaturesSel, 0);
    expect(d.read(REG.DeviceFeatures)).toBe(1 << 5);
    d.write(REG.DeviceFeaturesSel, 1);
    expect(d.read(REG.DeviceFeatures)).toBe(1);
    d.write(REG.Status, STATUS.ACKNOWLEDGE | STATUS.DRIVER);
    d.write(REG.DriverFeaturesSel, 1);
    d.write(REG.DriverFeatures, 1);
    d.write(REG.Status, STATUS.ACKNOWLEDGE | STATUS.DRIVER | STATUS.FEATURES_OK);
    expect(d.read(REG.Status) & STATUS.FEATURES_OK).toBe(STATUS.FEATURES_OK);
    expect(d.state.driverFeatures).toBe(VIRTIO_F_VERSION_1);
  });

  it('refuses FEATURES_OK for features it did not offer or without VERSION_1', () => {
    const d = device();
    d.write(REG.DriverFeaturesSel, 0);
    d.write(REG.DriverFeatures, 1 << 7); // not offered
    d.write(REG.DriverFeaturesSel, 1);
    d.write(REG.DriverFeatures, 1);
    d.write(REG.Status, STATUS.FEATURES_OK);
    expect(d.read(REG.Status) & STATUS.FEATURES_OK).toBe(0);
    const legacy = device(); // a legacy driver that does not speak VERSION_1
    legacy.write(REG.Status, STATUS.FEATURES_OK);
    expect(legacy.read(REG.Status) & STATUS.FEATURES_OK).toBe(0);
  });

  it('takes queue set-up per QueueSel, only while the queue is not ready', () => {
    const d = device();
    d.write(REG.QueueSel, 1);
    expect(d.read(REG.QueueNumMax)).toBe(64);
    d.write(REG.QueueNum, 32);
    d.write(REG.QueueDescLow, 0x1000);
    d.write(REG.QueueDescHigh, 0x1);
    d.write(REG.QueueDriverLow, 0x2000);
    d.write(REG.QueueDeviceLow, 0x3000);
    d.write(REG.QueueReady, 1);
    expect(d.state.queue(1)).toEqual({ size: 32, ready: true, descTable: 0x1_0000_1000, availRing: 0x2000, usedRing: 0x3000 });
    d.write(REG.QueueDescLow, 0x9000); // ignored: the queue is live
    d.write(REG.QueueNum, 16);
    expect(d.state.queue(1)).toMatchObject({ size: 32, descTable: 0x1_0000_1000 });
    expect(d.events).toEqual(['state']);
  });

  it('refuses queue sizes that are too large or not a power of two, and queues that do not exist', () => {
    const d = device();
    d.write(REG.QueueSel, 1);
    d.write(REG.QueueNum, 128);
    d.write(REG.QueueNum, 48);
    expect(d.read(REG.QueueNum)).toBe(64);
    d.write(REG.QueueSel, 5);
    expect(d.read(REG.QueueNumMax)).toBe(0);
    d.write(REG.QueueReady, 1);
    expect(d.read(REG.QueueReady)).toBe(0);
  });

  it('reports interrupt status set by the device and clears what the driver acknowledges', () => {
    const d = device();
    d.state.raiseInterrupt(3);
    expect(d.read(REG.InterruptStatus)).toBe(3);
    d.write(REG.InterruptACK, 1);
    expect(d.read(REG.InterruptStatus)).toBe(2);
  });

  it('passes QueueNotify writes that no ioeventfd caught to the device', () => {
    const d = device();
    d.write(REG.QueueNotify, 1);
    d.write(REG.QueueNotify, 9); // no such queue
    expect(d.events).toEqual(['notify 1']);
  });

  it('resets everything on Status = 0, keeping DEVICE_NEEDS_RESET only until then', () => {
    const d = device();
    d.write(REG.QueueSel, 0);
    d.write(REG.QueueReady, 1);
    d.state.orStatus(STATUS.DEVICE_NEEDS_RESET);
    d.write(REG.Status, STATUS.ACKNOWLEDGE);
    expect(d.read(REG.Status)).toBe(STATUS.ACKNOWLEDGE | STATUS.DEVICE_NEEDS_RESET);
    d.write(REG.Status, 0);
    expect(d.read(REG.Status)).toBe(0);
    expect(d.state.queue(0)).toMatchObject({ ready: false, size: 256 });
  });

  it('serves the config space byte-wise and ignores odd-sized register accesses', () => {
    const d = device();
    const b = new Uint8Array(2);
    d.transport.read(REG.Config + 3, b);
    expect([...b]).toEqual([4, 5]);
    const odd = new Uint8Array(2);
    d.transport.read(REG.MagicValue, odd);
    expect([...odd]).toEqual([0, 0]);
  });
});

describe('virtio-mmio transport under a hostile driver', () => {
  const registers = Object.values(REG).filter((offset) => offset < REG.Config);
  const wild = [0, 1, 2, 7, 8, 0x7fffffff, 0x80000000, 0x80000001, 0xfffffffe, 0xffffffff];

  it('takes QueueSel = 0x80000000 (and every other selector value ≥ 2^31) as no queue, then survives every register', () => {
    for (const selector of [0x80000000, 0xffffffff, 0x80000001]) {
      const d = device();
      d.write(REG.QueueSel, selector);
      for (const offset of registers) expect(() => d.read(offset)).not.toThrow();
      for (const offset of registers) {
        if (offset === REG.QueueSel || offset === REG.Status) continue;
        for (const value of wild) {
          d.write(REG.QueueSel, selector);
          expect(() => d.write(offset, value)).not.toThrow();
          for (const read of registers) expect(() => d.read(read)).not.toThrow();
        }
      }
      // No queue is selected, so nothing a queue holds changed.
      d.write(REG.QueueSel, 0);
      expect(d.read(REG.QueueNum)).toBe(256);
      expect(d.read(REG.QueueDescLow)).toBe(0);
    }
  });

  it('reads feature selectors ≥ 2^31 as beyond the two feature words', () => {
    const d = device();
    d.write(REG.DeviceFeaturesSel, 0x80000000);
    expect(d.read(REG.DeviceFeatures)).toBe(0);
    d.write(REG.DriverFeaturesSel, 0xffffffff);
    d.write(REG.DriverFeatures, 0xffffffff);
    expect(d.state.driverFeatures).toBe(0n);
  });

  it('a fault puts the device in DEVICE_NEEDS_RESET with a config-change interrupt, until the driver resets it', () => {
    const d = device();
    d.write(REG.Status, STATUS.ACKNOWLEDGE);
    d.transport.fault();
    expect(d.read(REG.Status)).toBe(STATUS.ACKNOWLEDGE | STATUS.DEVICE_NEEDS_RESET);
    expect(d.read(REG.InterruptStatus) & INTERRUPT.CONFIG_CHANGE).toBe(INTERRUPT.CONFIG_CHANGE);
    expect(d.events).toContain('interrupt');
    d.write(REG.Status, 0);
    expect(d.read(REG.Status)).toBe(0);
  });
});
