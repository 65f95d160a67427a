import { describe, expect, it } from 'vitest';
import { Bus, BusError, type BusDevice, type DeviceFault } from '../../src/devices/bus.js';
import { FaultLog } from '../../src/devices/fault-log.js';

class Recorder implements BusDevice {
  readonly writes: [number, number[]][] = [];
  read(offset: number, data: Uint8Array): void { data.fill(offset); }
  write(offset: number, data: Uint8Array): void { this.writes.push([offset, [...data]]); }
}

describe('Bus', () => {
  it('hands a device only offsets inside its own range', () => {
    const bus = new Bus('pio', 0x10000);
    const dev = new Recorder();
    bus.insert('dev', 0x3f8, 8, dev);
    const data = new Uint8Array(1);
    expect(bus.read(0x3fd, data)).toBe(true);
    expect(data[0]).toBe(5);
    bus.write(0x3f8, Uint8Array.of(0x41));
    expect(dev.writes).toEqual([[0, [0x41]]]);
  });

  it('refuses empty, overflowing and overlapping ranges with a typed error', () => {
    const bus = new Bus('pio', 0x10000);
    bus.insert('a', 0x60, 5, new Recorder());
    expect(() => bus.insert('empty', 0x100, 0, new Recorder())).toThrow(BusError);
    expect(() => bus.insert('over', 0xfffe, 4, new Recorder())).toThrow(/overflows/);
    expect(() => bus.insert('clash', 0x64, 2, new Recorder())).toThrow(/overlaps a at 0x60-0x64/);
    expect(() => bus.insert('neg', -1, 2, new Recorder())).toThrow(BusError);
    bus.insert('adjacent', 0x65, 1, new Recorder());
    expect(bus.devices.map((d) => d.name)).toEqual(['a', 'adjacent']);
  });

  it('answers unclaimed reads with all ones, drops unclaimed writes and reports both to the caller', () => {
    const bus = new Bus('mmio', 2 ** 52);
    const data = new Uint8Array(4);
    expect(bus.read(0xd0000000, data)).toBe(false);
    expect([...data]).toEqual([0xff, 0xff, 0xff, 0xff]);
    expect(bus.write(0xd0000000, data)).toBe(false);
  });

  it('does not give a device an access that runs past the end of its range', () => {
    const bus = new Bus('mmio', 2 ** 52);
    const dev = new Recorder();
    bus.insert('dev', 0x1000, 4, dev);
    expect(bus.write(0x1002, new Uint8Array(4))).toBe(false);
    expect(dev.writes).toEqual([]);
  });

  it('finds the right device among many (binary search and last-hit cache)', () => {
    const bus = new Bus('pio', 0x10000);
    const devices = Array.from({ length: 50 }, () => new Recorder());
    devices.forEach((d, i) => bus.insert(`d${i}`, i * 16, 8, d));
    for (const i of [49, 0, 25, 25, 7]) bus.write(i * 16 + 3, Uint8Array.of(i));
    expect(devices[25]!.writes).toEqual([[3, [25]], [3, [25]]]);
    expect(bus.write(16 * 10 + 9, Uint8Array.of(1))).toBe(false); // the gap after d10
  });

  it('catches a device that throws: the access counts as claimed, a read gives all ones, the device and the caller hear of it', () => {
    const faults: DeviceFault[] = [];
    const bus = new Bus('mmio', 2 ** 52, (f) => faults.push(f));
    let broken = 0;
    const device: BusDevice = {
      read: () => { throw new RangeError('Invalid atomic access index'); },
      write: () => { throw new TypeError('boom'); },
      fault: () => { broken++; throw new Error('and fault() throws too'); },
    };
    bus.insert('bad', 0x1000, 0x100, device);
    const data = new Uint8Array(4);
    expect(bus.read(0x1010, data)).toBe(true);
    expect([...data]).toEqual([0xff, 0xff, 0xff, 0xff]);
    expect(bus.write(0x1020, data)).toBe(true);
    expect(broken).toBe(2);
    expect(bus.faults).toBe(2);
    expect(faults.map((f) => [f.device, f.write, f.offset, (f.error as Error).name])).toEqual([
      ['bad', false, 0x10, 'RangeError'], ['bad', true, 0x20, 'TypeError'],
    ]);
  });
});

describe('FaultLog', () => {
  it('logs the first fault of each kind, counts all, and stops remembering kinds past its limit', () => {
    const lines: string[] = [];
    const log = new FaultLog('unassigned addresses', (m) => lines.push(m), 4);
    for (let i = 0; i < 100_000; i++) log.report(`port 0x${(i % 1000).toString(16)}`, () => `port ${i % 1000}`);
    expect(log.total).toBe(100_000);
    expect(lines).toEqual([
      'port 0 (logged once; repeats are counted)', 'port 1 (logged once; repeats are counted)',
      'port 2 (logged once; repeats are counted)', 'port 3 (logged once; repeats are counted)',
      'more than 4 kinds of unassigned addresses: further ones are counted, not logged',
    ]);
  });
});
