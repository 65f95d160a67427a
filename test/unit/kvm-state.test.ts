// vcpu-state.ts and vm-state.ts without KVM: a snapshot's bytes are untrusted, so every wrong
// length or type must be refused before the first ioctl; and restore must issue its ioctls in the
// order KVM needs. The vCPU and VM here are stand-ins that record what they are asked to do.

import { describe, expect, it } from 'vitest';
import type { VcpuFd, VmFd } from '../../src/kvm/kvm.js';
import { KVM_CLOCK, KVM_MP_STATE, KVM_VCPUEVENT } from '../../src/kvm/ioctls.js';
import {
  kvm_clock_data, kvm_cpuid_entry2, kvm_debugregs, kvm_irqchip, kvm_lapic_state, kvm_msr_entry,
  kvm_pit_state2, kvm_regs, kvm_sregs, kvm_vcpu_events, kvm_xcrs, kvm_xsave, type KvmMsrEntry,
} from '../../src/kvm/structs.js';
import {
  KvmStateError, MSR_IA32_TSC, MSR_IA32_TSC_DEADLINE, mpStateName, readMsrs, restoreVcpu,
  snapshotRegs, type VcpuSnapshot,
} from '../../src/kvm/vcpu-state.js';
import { clockForRestore, restoreVm, type VmSnapshot } from '../../src/kvm/vm-state.js';

type Call = [method: string, arg: unknown];

/** A stand-in whose every method records its call; `overrides` answer the ones that return something. */
function recorder<T>(props: Record<string, unknown>, overrides: Record<string, (arg: never) => unknown> = {}): { fd: T; calls: Call[] } {
  const calls: Call[] = [];
  const fd = new Proxy(props, {
    get(target, key) {
      if (typeof key !== 'string') return undefined;
      if (key in target) return target[key];
      return (arg: never) => {
        calls.push([key, arg]);
        return overrides[key]?.(arg);
      };
    },
  }) as T;
  return { fd, calls };
}

const MSR_MISC_ENABLE = 0x1a0;
const lapicWithTscDeadlineTimer = (): Uint8Array => {
  const page = new Uint8Array(kvm_lapic_state.size);
  new DataView(page.buffer).setUint32(0x320, (2 << 17) | 0xec, true); // LVTT: TSC-deadline, vector 0xec, unmasked
  return page;
};
const msrBytes = (entries: KvmMsrEntry[]) => {
  const out = new Uint8Array(entries.length * kvm_msr_entry.size);
  entries.forEach((e, i) => out.set(kvm_msr_entry.encode(e), i * kvm_msr_entry.size));
  return out;
};

function vcpuSnapshot(): VcpuSnapshot {
  return {
    id: 1,
    cpuid: kvm_cpuid_entry2.encode({ ...kvm_cpuid_entry2.zero(), function: 0, eax: 0xd }),
    regs: kvm_regs.encode({ ...kvm_regs.zero(), rip: 0x1234n }),
    sregs: new Uint8Array(kvm_sregs.size),
    xsave: new Uint8Array(kvm_xsave.size),
    xcrs: kvm_xcrs.encode({ ...kvm_xcrs.zero(), nr_xcrs: 1 }),
    debugregs: new Uint8Array(kvm_debugregs.size),
    lapic: lapicWithTscDeadlineTimer(),
    msrs: msrBytes([
      { index: MSR_IA32_TSC_DEADLINE, reserved: 0, data: 0n },
      { index: MSR_IA32_TSC, reserved: 0, data: 123456789n },
      { index: MSR_MISC_ENABLE, reserved: 0, data: 1n },
    ]),
    mpState: KVM_MP_STATE.KVM_MP_STATE_HALTED,
    vcpuEvents: kvm_vcpu_events.encode({ ...kvm_vcpu_events.zero(), sipi_vector: 0x9a, flags: KVM_VCPUEVENT.KVM_VCPUEVENT_VALID_SHADOW }),
    skippedMsrs: [],
  };
}

function vmSnapshot(): VmSnapshot {
  const chip = (chipId: number) => kvm_irqchip.encode({ ...kvm_irqchip.zero(), chip_id: chipId });
  return {
    picMaster: chip(0), picSlave: chip(1), ioapic: chip(2),
    pit2: new Uint8Array(kvm_pit_state2.size),
    clock: kvm_clock_data.encode({
      ...kvm_clock_data.zero(), clock: 5_000_000_000n, realtime: 1n,
      flags: KVM_CLOCK.KVM_CLOCK_REALTIME | KVM_CLOCK.KVM_CLOCK_HOST_TSC | KVM_CLOCK.KVM_CLOCK_TSC_STABLE,
    }),
  };
}

describe('restoreVcpu', () => {
  it('issues the ioctls in the order KVM needs, then tells the guest it was paused', () => {
    const { fd, calls } = recorder<VcpuFd>({ id: 1 }, { kvmclockCtrl: () => true });
    expect(restoreVcpu(fd, vcpuSnapshot())).toEqual({ guestNotified: true });
    expect(calls.map(([m]) => m)).toEqual([
      'setCpuid2', 'setRegs', 'setSregs', 'setXsave', 'setXcrs', 'setDebugregs', 'setLapic',
      'setMsrs', 'setMpState', 'setVcpuEvents', 'kvmclockCtrl',
    ]);
    expect((calls[1]![1] as { rip: bigint }).rip).toBe(0x1234n);
    expect(calls[8]![1]).toBe(KVM_MP_STATE.KVM_MP_STATE_HALTED);
  });

  it('skips KVM_SET_XCRS when the snapshot has no XCRs (a host without XSAVE refuses it)', () => {
    const { fd, calls } = recorder<VcpuFd>({ id: 1 });
    restoreVcpu(fd, { ...vcpuSnapshot(), xcrs: kvm_xcrs.encode(kvm_xcrs.zero()) }, { notifyGuest: false });
    expect(calls.map(([m]) => m)).not.toContain('setXcrs');
    expect(calls.map(([m]) => m)).toContain('setDebugregs');
  });

  it('restores TSC before TSC_DEADLINE, and re-arms a deadline that expired while paused', () => {
    const { fd, calls } = recorder<VcpuFd>({ id: 1 });
    restoreVcpu(fd, vcpuSnapshot(), { notifyGuest: false });
    const msrs = calls.find(([m]) => m === 'setMsrs')![1] as KvmMsrEntry[];
    expect(msrs.map((e) => [e.index, e.data])).toEqual([
      [MSR_IA32_TSC, 123456789n], [MSR_MISC_ENABLE, 1n], [MSR_IA32_TSC_DEADLINE, 123456789n],
    ]);
    expect(calls.some(([m]) => m === 'kvmclockCtrl')).toBe(false);
  });

  it('leaves a zero TSC_DEADLINE alone when the LAPIC timer is not in TSC-deadline mode', () => {
    const { fd, calls } = recorder<VcpuFd>({ id: 1 });
    restoreVcpu(fd, { ...vcpuSnapshot(), lapic: new Uint8Array(kvm_lapic_state.size) });
    const msrs = calls.find(([m]) => m === 'setMsrs')![1] as KvmMsrEntry[];
    expect(msrs.at(-1)).toMatchObject({ index: MSR_IA32_TSC_DEADLINE, data: 0n });
  });

  it('hands the SIPI vector back: KVM_GET_VCPU_EVENTS never marks it valid', () => {
    const { fd, calls } = recorder<VcpuFd>({ id: 1 });
    restoreVcpu(fd, vcpuSnapshot());
    const events = calls.find(([m]) => m === 'setVcpuEvents')![1] as { flags: number; sipi_vector: number };
    expect(events.sipi_vector).toBe(0x9a);
    expect(events.flags).toBe(KVM_VCPUEVENT.KVM_VCPUEVENT_VALID_SHADOW | KVM_VCPUEVENT.KVM_VCPUEVENT_VALID_SIPI_VECTOR);
  });

  it('sends MSRs in chunks KVM accepts (fewer than 256 at once)', () => {
    const { fd, calls } = recorder<VcpuFd>({ id: 1 });
    const many = Array.from({ length: 600 }, (_, i) => ({ index: 0x4000_0000 + i, reserved: 0, data: BigInt(i) }));
    restoreVcpu(fd, { ...vcpuSnapshot(), msrs: msrBytes(many) });
    const chunks = calls.filter(([m]) => m === 'setMsrs').map(([, a]) => (a as KvmMsrEntry[]).length);
    expect(chunks).toEqual([255, 255, 90]);
  });

  const wrongLengths: [keyof VcpuSnapshot, number, RegExp][] = [
    ['regs', 143, /vcpu 1: regs: has 143 bytes, kvm_regs is 144/],
    ['sregs', 313, /sregs: has 313 bytes, kvm_sregs is 312/],
    ['xsave', 4095, /xsave: has 4095 bytes/],
    ['xsave', 8192, /xsave: has 8192 bytes/],
    ['xcrs', 0, /xcrs: has 0 bytes, kvm_xcrs is 392/],
    ['debugregs', 127, /debugregs/],
    ['lapic', 1023, /lapic: has 1023 bytes, kvm_lapic_state is 1024/],
    ['vcpuEvents', 65, /vcpuEvents: has 65 bytes, kvm_vcpu_events is 64/],
    ['msrs', 17, /msrs: has 17 bytes, not a whole number of 16-byte kvm_msr_entry/],
    ['cpuid', 41, /cpuid: has 41 bytes/],
    ['cpuid', 0, /cpuid: is empty/],
  ];

  it.each(wrongLengths)('refuses %s of %i bytes before any ioctl', (field, length, message) => {
    const { fd, calls } = recorder<VcpuFd>({ id: 1 });
    const bad = { ...vcpuSnapshot(), [field]: new Uint8Array(length) };
    const error = (() => {
      try {
        restoreVcpu(fd, bad);
      } catch (e) {
        return e;
      }
      return undefined;
    })();
    expect(error).toBeInstanceOf(KvmStateError);
    expect((error as KvmStateError).message).toMatch(message);
    expect((error as KvmStateError).field).toBe(`vcpu 1: ${field}`);
    expect((error as KvmStateError).code).toBe('BAD_SNAPSHOT');
    expect(calls).toEqual([]);
  });

  it('refuses fields that are not bytes, a bad mp_state, and a snapshot of another vCPU', () => {
    const { fd, calls } = recorder<VcpuFd>({ id: 1 });
    expect(() => restoreVcpu(fd, { ...vcpuSnapshot(), regs: [1, 2, 3] as unknown as Uint8Array })).toThrow(/vcpu 1: regs: is not a byte array/);
    expect(() => restoreVcpu(fd, { ...vcpuSnapshot(), mpState: -1 })).toThrow(/mpState: -1 is not a KVM_MP_STATE value/);
    expect(() => restoreVcpu(fd, { ...vcpuSnapshot(), id: 0 })).toThrow(/cannot be restored into vCPU 1/);
    expect(() => restoreVcpu(fd, null as unknown as VcpuSnapshot)).toThrow(KvmStateError);
    expect(calls).toEqual([]);
  });

  it('takes an XSAVE image of the size the VM says (KVM_CAP_XSAVE2)', () => {
    const { fd, calls } = recorder<VcpuFd>({ id: 1 });
    expect(() => restoreVcpu(fd, vcpuSnapshot(), { xsaveSize: 8192 })).toThrow(/xsave: has 4096 bytes, kvm_xsave \(this VM's XSAVE size\) is 8192/);
    restoreVcpu(fd, { ...vcpuSnapshot(), xsave: new Uint8Array(8192) }, { xsaveSize: 8192 });
    expect((calls.find(([m]) => m === 'setXsave')![1] as Uint8Array).length).toBe(8192);
  });

  it('decodes what a status line needs', () => {
    expect(snapshotRegs(vcpuSnapshot()).rip).toBe(0x1234n);
    expect(mpStateName(KVM_MP_STATE.KVM_MP_STATE_UNINITIALIZED)).toBe('uninitialized');
    expect(mpStateName(77)).toBe('mp_state 77');
  });
});

describe('readMsrs', () => {
  it('skips each MSR KVM refuses and goes on with the next', () => {
    // KVM_GET_MSRS reads in order and stops at the first MSR it refuses, returning how many it read.
    const refuse = new Set([0x11, 0x14]);
    const asked: number[][] = [];
    const { fd } = recorder<VcpuFd>({
      id: 0,
      getMsrs: (indices: number[]) => {
        asked.push(indices);
        const n = indices.findIndex((i) => refuse.has(i));
        return indices.slice(0, n < 0 ? indices.length : n).map((index) => ({ index, reserved: 0, data: BigInt(index) }));
      },
    });
    const { entries, refused } = readMsrs(fd, [0x10, 0x11, 0x12, 0x13, 0x14]);
    expect(entries.map((e) => e.index)).toEqual([0x10, 0x12, 0x13]);
    expect(refused).toEqual([0x11, 0x14]);
    expect(asked).toEqual([[0x10, 0x11, 0x12, 0x13, 0x14], [0x12, 0x13, 0x14]]);
  });
});

describe('restoreVm', () => {
  it('loads the PICs and the IOAPIC, then the PIT, then the clock with no flags', () => {
    const { fd, calls } = recorder<VmFd>({});
    restoreVm(fd, vmSnapshot());
    expect(calls.map(([m, a]) => (m === 'setIrqchip' ? `setIrqchip ${(a as { chip_id: number }).chip_id}` : m))).toEqual([
      'setIrqchip 0', 'setIrqchip 1', 'setIrqchip 2', 'setPit2', 'setClock',
    ]);
    expect(calls[4]![1]).toMatchObject({ clock: 5_000_000_000n, flags: 0 });
  });

  it('never passes KVM_CLOCK_REALTIME back, which would add the time the VM spent saved', () => {
    const saved = kvm_clock_data.decode(vmSnapshot().clock);
    expect(saved.flags & KVM_CLOCK.KVM_CLOCK_REALTIME).not.toBe(0);
    expect(clockForRestore(saved)).toEqual({ ...saved, flags: 0 });
  });

  it.each([
    ['picMaster', new Uint8Array(519), /vm: picMaster: has 519 bytes, kvm_irqchip is 520/],
    ['ioapic', kvm_irqchip.encode({ ...kvm_irqchip.zero(), chip_id: 0 }), /vm: ioapic: holds chip_id 0, expected 2/],
    ['pit2', new Uint8Array(113), /vm: pit2: has 113 bytes, kvm_pit_state2 is 112/],
    ['clock', new Uint8Array(40), /vm: clock: has 40 bytes, kvm_clock_data is 48/],
    ['picSlave', 'abc', /vm: picSlave: is not a byte array/],
  ] as const)('refuses a bad %s before any ioctl', (field, value, message) => {
    const { fd, calls } = recorder<VmFd>({});
    expect(() => restoreVm(fd, { ...vmSnapshot(), [field]: value })).toThrow(message);
    expect(calls).toEqual([]);
  });
});
