// What a snapshot will be made of: the devices' state, taken from a paused VM's threads.

import { mkdtempSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
// deviceStateOf is not part of the library: the unbundled build of the module behind it has it.
import { deviceStateOf, Vm } from '../../dist/vmm/vm.js';
import { GUESTS, HELLO_ELF, kvmMissingReason } from '../helpers/kvm.js';

describe.skipIf(kvmMissingReason)('device state of a paused VM', () => {
  it('legacy devices: the UART as the guest programmed it, the RTC, ACPI PM', async () => {
    const vm = Vm.boot({ kernel: HELLO_ELF, memory: '64M' });
    // Once the guest has echoed a line, it has set up its UART for receive interrupts.
    await vm.waitForOutput('type something');
    vm.write('first\r');
    await vm.waitForOutput('you typed "first"');
    await vm.pause();
    const { legacy, virtio } = await deviceStateOf(vm);
    expect(legacy.serial.ier & 1).toBe(1); // hello.elf takes receive interrupts
    expect(legacy.serial.mcr & 0x08).toBe(0x08); // OUT2, as a PC driver sets it
    expect(legacy.rtc.ram).toHaveLength(128);
    expect(legacy.acpiPm.control & 1).toBe(1);
    expect(virtio).toEqual([]);
    vm.resume();
    vm.write('still here\r');
    await vm.waitForOutput('you typed "still here"');
    await vm.stop();
  });

  it('virtio: register file and queue positions, and the device goes on after resume', async () => {
    const disk = path.join(mkdtempSync(path.join(tmpdir(), 'tsvmm-ds-')), 'd.img');
    writeFileSync(disk, '');
    truncateSync(disk, 1 << 20);
    const vm = Vm.boot({ kernel: path.join(GUESTS, 'virtio.elf'), memory: '64M', cmdline: 'mode=blk op=write seed=5 start=0 sectors=200', disks: [{ path: disk }] });
    await vm.waitForOutput('blk: capacity=');
    await vm.pause();
    const { virtio } = await deviceStateOf(vm);
    expect(virtio).toHaveLength(1);
    expect(virtio[0]!.registers.length).toBeGreaterThan(64);
    expect(virtio[0]!.io).toMatchObject({ active: true, broken: false });
    expect(virtio[0]!.io!.queues[0]![1].nextAvail).toBeGreaterThanOrEqual(0);
    vm.resume();
    await vm.wait();
    expect(vm.output).toContain('blk: wrote 200 sectors');
  });
});
