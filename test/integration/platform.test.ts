// The PC platform a Linux guest relies on, exercised on /dev/kvm by our own guests: every AP
// started through INIT/SIPI in the in-kernel LAPIC (finding the CPUs in our MADT), LAPIC-timer
// and PIT interrupts, serial receive interrupts through the IOAPIC, ACPI power-off and reset
// through our FADT, and the CMOS clock.

import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { Vm } from 'tsvmm';
import { GUESTS, kvmMissingReason, TEST_ELF } from '../helpers/kvm.js';

const SMP_ELF = path.join(GUESTS, 'smp.elf');

describe.skipIf(kvmMissingReason)('PC platform', () => {
  it.each([1, 2, 4])('starts all %i vCPUs, takes timer and serial interrupts', async (cpus) => {
    const vm = Vm.boot({ kernel: SMP_ELF, cpus, memory: '64M' });
    await vm.waitForOutput('smp: waiting for input', 60_000);
    vm.write('ping\r');
    expect(await vm.wait()).toEqual({ kind: 'shutdown', reason: 'i8042-reset' });
    const out = vm.output;
    const ids = Array.from({ length: cpus }, (_, i) => i);
    expect(out).toContain(`smp: cpus=${cpus} apic-ids=${ids.join(',')}`);
    // Each AP prints its own line from its own thread, through the boot CPU's UART.
    for (const id of ids.slice(1)) expect(out).toContain(`smp: ap apic-id=${id} online`);
    expect(out).toContain(`smp: all ${cpus} cpus online`);
    expect(out).toContain('smp: lapic timer ticks=10');
    expect(out).toContain('smp: pit ticks=10');
    expect(out).toContain('smp: rx "ping"');
    expect(out).toContain('smp: done');
  });

  it('powers off through the FADT: S5 written to the PM1a control block', async () => {
    const vm = Vm.boot({ kernel: TEST_ELF, cmdline: 'mode=acpi-poweroff', memory: '32M' });
    expect(await vm.wait()).toEqual({ kind: 'shutdown', reason: 'acpi-poweroff' });
    expect(vm.output).toContain('acpi: pm1a_cnt=0x604 slp_typ=5');
    expect(vm.output).not.toContain('still running');
  });

  it('resets through the FADT reset register', async () => {
    const vm = Vm.boot({ kernel: TEST_ELF, cmdline: 'mode=acpi-reset', memory: '32M' });
    expect(await vm.wait()).toEqual({ kind: 'shutdown', reason: 'acpi-reset' });
    expect(vm.output).toContain('acpi: reset reg=0x608 value=0x1 supported=1');
  });

  it("gives the guest the host's UTC time through the CMOS RTC", async () => {
    const before = Date.now();
    const vm = Vm.boot({ kernel: TEST_ELF, cmdline: 'mode=rtc', memory: '32M' });
    await vm.wait();
    const match = /rtc: (\d{4})-(\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)/.exec(vm.output);
    expect(match, vm.output).not.toBeNull();
    const [, y, mo, d, h, mi, s] = match!.map(Number);
    const guest = Date.UTC(y!, mo! - 1, d!, h!, mi!, s!);
    expect(guest).toBeGreaterThanOrEqual(Math.floor(before / 1000) * 1000);
    expect(guest).toBeLessThanOrEqual(Date.now());
    expect(vm.output).toContain('rtc: status-b=0x2 valid=1');
  });
});
