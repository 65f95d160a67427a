// The crash report reads what a hostile guest left in its registers: it must never throw.

import { describe, expect, it } from 'vitest';
import { Kvm } from '../../src/kvm/kvm.js';
import { GuestMemory } from '../../src/memory/guest-memory.js';
import { bytesAtRip, vcpuDump } from '../../src/vmm/diagnostics.js';
import { kvmMissingReason } from '../helpers/kvm.js';

describe.skipIf(kvmMissingReason)('crash report of a wild RIP', () => {
  it('finds no bytes, instead of throwing, where CS base + RIP leaves 64 bits or guest memory', () => {
    const kvm = Kvm.open();
    const vm = kvm.createVm();
    const vcpu = vm.createVcpu(0);
    const memory = GuestMemory.allocate([{ start: 0, size: 0x10000 }]);
    try {
      const regs = vcpu.getRegs();
      const sregs = vcpu.getSregs();
      const paging = { ...sregs, cr0: sregs.cr0 | (1n << 31n) };
      const wild = { ...regs, rip: (1n << 64n) - 2n };
      // 64-bit code: the base is ignored, as the CPU ignores it.
      expect(bytesAtRip(vcpu, memory, wild, { ...paging, cs: { ...sregs.cs, l: 1, base: 0xffff0000n } })).toBeUndefined();
      // 32-bit code: the sum wraps at 4 GiB.
      const wrapped = bytesAtRip(vcpu, memory, { ...regs, rip: 0x1010n }, { ...sregs, cs: { ...sregs.cs, l: 0, base: 0xfffff000n } });
      expect(wrapped?.length).toBe(16);
      expect(bytesAtRip(vcpu, memory, wild, { ...paging, cs: { ...sregs.cs, l: 0, base: 0xffffffffn } })).toBeUndefined();
      expect(vcpuDump(vcpu, memory, []).code).not.toBe('');
    } finally {
      vcpu.close();
      vm.close();
      kvm.close();
    }
  });
});
