import { describe, expect, it } from 'vitest';
import { Bus } from '../../src/devices/bus.js';
import { DeviceMailbox, RemoteBus } from '../../src/vmm/device-mailbox.js';

describe('device mailbox (an AP reaching the boot CPU’s devices)', () => {
  // The owner is simulated by answering inside wake(), which the real owner does after a kick.
  function setup() {
    const pio = new Bus('pio', 0x10000);
    const mmio = new Bus('mmio', 2 ** 52);
    const seen: [string, number, number[]][] = [];
    pio.insert('dev', 0x3f8, 8, {
      read: (offset, data) => { data.fill(0); data[0] = 0x60 + offset; },
      write: (offset, data) => { seen.push(['pio', offset, [...data]]); },
    });
    mmio.insert('mmio-dev', 2 ** 33, 0x1000, {
      read: (_offset, data) => { data.set([1, 2, 3, 4].slice(0, data.length)); },
      write: (offset, data) => { seen.push(['mmio', offset, [...data]]); },
    });
    const mailbox = DeviceMailbox.create();
    const owner = DeviceMailbox.attach(mailbox.buffer);
    let wakes = 0;
    const wake = () => { wakes++; owner.serve(pio, mmio); };
    return { mailbox, seen, wake, wakes: () => wakes };
  }

  it('carries writes and reads, with their data and the claimed flag, both ways', () => {
    const s = setup();
    const remotePio = new RemoteBus('pio', s.mailbox, s.wake, () => false);
    const remoteMmio = new RemoteBus('mmio', s.mailbox, s.wake, () => false);
    expect(remotePio.write(0x3f8, Uint8Array.of(0x41))).toBe(true);
    const byte = new Uint8Array(1);
    expect(remotePio.read(0x3fd, byte)).toBe(true);
    expect(byte[0]).toBe(0x65);
    const word = new Uint8Array(4);
    expect(remoteMmio.read(2 ** 33 + 8, word)).toBe(true); // an address above 4 GiB survives the trip
    expect([...word]).toEqual([1, 2, 3, 4]);
    remoteMmio.write(2 ** 33 + 4, Uint8Array.of(9, 9));
    expect(s.seen).toEqual([['pio', 0, [0x41]], ['mmio', 4, [9, 9]]]);
  });

  it('reports unclaimed accesses on the AP side', () => {
    const s = setup();
    const remote = new RemoteBus('pio', s.mailbox, s.wake, () => false);
    const data = new Uint8Array(1);
    expect(remote.read(0x1234, data)).toBe(false);
    expect(data[0]).toBe(0xff);
  });

  it('gives up instead of hanging when the VM is stopping and the owner does not answer', () => {
    const mailbox = DeviceMailbox.create();
    let tries = 0;
    const remote = new RemoteBus('pio', mailbox, () => { tries++; }, () => tries >= 3);
    expect(remote.write(0x3f8, Uint8Array.of(1))).toBe(false);
    expect(tries).toBe(3);
  });
});
