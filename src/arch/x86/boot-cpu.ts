// The register state of the boot CPU at kernel entry: 32-bit protected mode with paging off
// (PVH), or 64-bit long mode at CPL 0 on identity page tables (plain ELF64, Linux 64-bit entry).

import type { GuestMemory } from '../../memory/guest-memory.js';
import type { VcpuFd } from '../../kvm/kvm.js';
import type { KvmRegs, KvmSregs } from '../../kvm/structs.js';
import { kvm_regs } from '../../kvm/structs.js';
import { bootGdt, CODE32, CODE64, segmentFromGdt } from './gdt.js';
import { BOOT_GDT_START, BOOT_IDT_START, BOOT_STACK_POINTER } from './layout.js';
import { writeIdentityPageTables } from './page-tables.js';

export type EntryMode = 'protected32' | 'long64';

export interface BootCpuState {
  mode: EntryMode;
  entry: number;
  /** General registers to set besides rip/rsp/rflags (e.g. rbx for PVH, rsi for Linux). */
  registers?: Partial<Record<'rbx' | 'rsi', number>>;
}

const CR0_PE = 1n;
const CR0_ET = 1n << 4n;
const CR0_PG = 1n << 31n;
const CR4_PAE = 1n << 5n;
const EFER_LME = 1n << 8n;
const EFER_LMA = 1n << 10n;
const RFLAGS_RESERVED = 2n;

/** Writes the boot GDT and IDT (and page tables for long mode) and returns the special registers. */
export function bootSregs(memory: GuestMemory, current: KvmSregs, mode: EntryMode): KvmSregs {
  const gdt = bootGdt(mode === 'long64' ? CODE64 : CODE32);
  gdt.forEach((entry, i) => memory.writeU64(BOOT_GDT_START + i * 8, entry));
  memory.writeU64(BOOT_IDT_START, 0n);

  const code = segmentFromGdt(gdt[1]!, 1);
  const data = segmentFromGdt(gdt[2]!, 2);
  const tss = segmentFromGdt(gdt[3]!, 3);
  const sregs: KvmSregs = {
    ...current,
    gdt: { base: BigInt(BOOT_GDT_START), limit: gdt.length * 8 - 1, padding: [0, 0, 0] },
    idt: { base: BigInt(BOOT_IDT_START), limit: 7, padding: [0, 0, 0] },
    cs: code, ds: data, es: data, fs: data, gs: data, ss: data, tr: tss,
    cr0: (current.cr0 | CR0_PE | CR0_ET) & ~CR0_PG,
    cr4: 0n,
    efer: 0n,
  };
  if (mode === 'long64') {
    sregs.cr3 = writeIdentityPageTables(memory);
    sregs.cr4 = CR4_PAE;
    sregs.cr0 |= CR0_PG;
    sregs.efer = EFER_LME | EFER_LMA;
  }
  return sregs;
}

export function bootRegs(state: BootCpuState): KvmRegs {
  const regs = kvm_regs.zero();
  regs.rip = BigInt(state.entry);
  regs.rflags = RFLAGS_RESERVED;
  regs.rsp = regs.rbp = BigInt(BOOT_STACK_POINTER);
  if (state.registers?.rbx !== undefined) regs.rbx = BigInt(state.registers.rbx);
  if (state.registers?.rsi !== undefined) regs.rsi = BigInt(state.registers.rsi);
  return regs;
}

/** x87 and SSE control words as after FNINIT / reset; KVM leaves them zero otherwise. */
export function bootFpu(vcpu: VcpuFd): void {
  vcpu.setFpu({ ...vcpu.getFpu(), fcw: 0x37f, mxcsr: 0x1f80 });
}

const APIC_LVT0 = 0x350;
const APIC_LVT1 = 0x360;
const APIC_MODE_NMI = 0x4;
const APIC_MODE_EXTINT = 0x7;

/** LINT0 receives the 8259 PIC's interrupts (ExtINT) and LINT1 NMIs, as firmware sets up a PC. */
export function bootLapic(vcpu: VcpuFd): void {
  const regs = vcpu.getLapic();
  const view = new DataView(regs.buffer, regs.byteOffset, regs.byteLength);
  view.setUint32(APIC_LVT0, APIC_MODE_EXTINT << 8, true);
  view.setUint32(APIC_LVT1, APIC_MODE_NMI << 8, true);
  vcpu.setLapic(regs);
}

export function setupBootCpu(vcpu: VcpuFd, memory: GuestMemory, state: BootCpuState): void {
  vcpu.setSregs(bootSregs(memory, vcpu.getSregs(), state.mode));
  vcpu.setRegs(bootRegs(state));
  bootFpu(vcpu);
}
