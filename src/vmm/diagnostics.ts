// What the VMM shows when a vCPU cannot go on: registers, segment state and the instruction
// bytes at RIP, so an emulation failure says which instruction rather than just "error".

import type { VcpuFd } from '../kvm/kvm.js';
import type { GuestMemory } from '../memory/guest-memory.js';
import type { KvmRegs, KvmSregs } from '../kvm/structs.js';

const h = (n: bigint, width = 16) => n.toString(16).padStart(width, '0');

export function formatRegisters(regs: KvmRegs, sregs: KvmSregs): string {
  const r = regs;
  const lines = [
    `rip=${h(r.rip)} rsp=${h(r.rsp)} rflags=${h(r.rflags, 8)}`,
    `rax=${h(r.rax)} rbx=${h(r.rbx)} rcx=${h(r.rcx)} rdx=${h(r.rdx)}`,
    `rsi=${h(r.rsi)} rdi=${h(r.rdi)} rbp=${h(r.rbp)}`,
    `r8=${h(r.r8)} r9=${h(r.r9)} r10=${h(r.r10)} r11=${h(r.r11)}`,
    `r12=${h(r.r12)} r13=${h(r.r13)} r14=${h(r.r14)} r15=${h(r.r15)}`,
    `cs=${h(BigInt(sregs.cs.selector), 4)} (cpl ${sregs.cs.selector & 3}, ${sregs.cs.l ? '64-bit' : sregs.cs.db ? '32-bit' : '16-bit'}) ss=${h(BigInt(sregs.ss.selector), 4)}`,
    `cr0=${h(sregs.cr0, 8)} cr2=${h(sregs.cr2)} cr3=${h(sregs.cr3)} cr4=${h(sregs.cr4, 8)} efer=${h(sregs.efer, 4)}`,
  ];
  return lines.join('\n');
}

/** Up to 16 bytes at CS:RIP, translated through the guest's page tables; undefined if unmapped. */
export function bytesAtRip(vcpu: VcpuFd, memory: GuestMemory, regs: KvmRegs, sregs: KvmSregs): Uint8Array | undefined {
  const linear = sregs.cs.base + regs.rip;
  let physical = linear;
  if (sregs.cr0 & (1n << 31n)) {
    const t = vcpu.translate(linear);
    if (!t.valid) return undefined;
    physical = t.physical_address;
  }
  const address = Number(physical);
  for (let n = 16; n > 0; n--) {
    if (memory.contains(address, n)) return memory.read(address, n);
  }
  return undefined;
}

/** A multi-line report for an error outcome; never throws (the vCPU may be in any state). */
export function vcpuReport(vcpu: VcpuFd, memory: GuestMemory): string {
  try {
    const regs = vcpu.getRegs();
    const sregs = vcpu.getSregs();
    const bytes = bytesAtRip(vcpu, memory, regs, sregs);
    const code = bytes ? [...bytes].map((b) => b.toString(16).padStart(2, '0')).join(' ') : '(not in guest memory)';
    return `${formatRegisters(regs, sregs)}\ncode at rip: ${code}`;
  } catch (error) {
    return `registers unavailable: ${(error as Error).message}`;
  }
}
