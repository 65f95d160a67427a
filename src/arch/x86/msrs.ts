// Model-specific registers given a defined value at boot, as a real CPU's reset would.

import type { KvmMsrEntry } from '../../kvm/structs.js';

export const MSR = {
  IA32_TSC: 0x10,
  IA32_SYSENTER_CS: 0x174,
  IA32_SYSENTER_ESP: 0x175,
  IA32_SYSENTER_EIP: 0x176,
  IA32_MISC_ENABLE: 0x1a0,
  MTRR_DEF_TYPE: 0x2ff,
  EFER: 0xc0000080,
  STAR: 0xc0000081,
  LSTAR: 0xc0000082,
  CSTAR: 0xc0000083,
  SYSCALL_MASK: 0xc0000084,
  KERNEL_GS_BASE: 0xc0000102,
} as const;

const MISC_ENABLE_FAST_STRING = 1n;
const MTRR_ENABLE = 1n << 11n;
const MTRR_TYPE_WRBACK = 6n;

export function bootMsrs(): KvmMsrEntry[] {
  const entries: [number, bigint][] = [
    [MSR.IA32_SYSENTER_CS, 0n],
    [MSR.IA32_SYSENTER_ESP, 0n],
    [MSR.IA32_SYSENTER_EIP, 0n],
    [MSR.STAR, 0n],
    [MSR.CSTAR, 0n],
    [MSR.KERNEL_GS_BASE, 0n],
    [MSR.SYSCALL_MASK, 0n],
    [MSR.LSTAR, 0n],
    [MSR.IA32_TSC, 0n],
    [MSR.IA32_MISC_ENABLE, MISC_ENABLE_FAST_STRING],
    // Without MTRRs enabled every access would be uncached; write-back is what firmware sets.
    [MSR.MTRR_DEF_TYPE, MTRR_ENABLE | MTRR_TYPE_WRBACK],
  ];
  return entries.map(([index, data]) => ({ index, reserved: 0, data }));
}
