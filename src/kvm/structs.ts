// The KVM structures tsvmm exchanges with the kernel (linux/kvm.h, asm/kvm.h for x86_64), with
// the kernel's names. Offsets are checked against the installed headers by a unit test.

import { array, bytes, struct, u16, u32, u64, u8, i32, type StructValue } from './struct.js';

export const kvm_regs = struct('kvm_regs', 144, {
  rax: [0, u64], rbx: [8, u64], rcx: [16, u64], rdx: [24, u64],
  rsi: [32, u64], rdi: [40, u64], rsp: [48, u64], rbp: [56, u64],
  r8: [64, u64], r9: [72, u64], r10: [80, u64], r11: [88, u64],
  r12: [96, u64], r13: [104, u64], r14: [112, u64], r15: [120, u64],
  rip: [128, u64], rflags: [136, u64],
} as const);
export type KvmRegs = StructValue<typeof kvm_regs.fields>;

export const kvm_segment = struct('kvm_segment', 24, {
  base: [0, u64], limit: [8, u32], selector: [12, u16], type: [14, u8],
  present: [15, u8], dpl: [16, u8], db: [17, u8], s: [18, u8], l: [19, u8], g: [20, u8],
  avl: [21, u8], unusable: [22, u8], padding: [23, u8],
} as const);
export type KvmSegment = StructValue<typeof kvm_segment.fields>;

export const kvm_dtable = struct('kvm_dtable', 16, {
  base: [0, u64], limit: [8, u16], padding: [10, array(u16, 3)],
} as const);
export type KvmDtable = StructValue<typeof kvm_dtable.fields>;

export const kvm_sregs = struct('kvm_sregs', 312, {
  cs: [0, kvm_segment], ds: [24, kvm_segment], es: [48, kvm_segment], fs: [72, kvm_segment],
  gs: [96, kvm_segment], ss: [120, kvm_segment], tr: [144, kvm_segment], ldt: [168, kvm_segment],
  gdt: [192, kvm_dtable], idt: [208, kvm_dtable],
  cr0: [224, u64], cr2: [232, u64], cr3: [240, u64], cr4: [248, u64], cr8: [256, u64],
  efer: [264, u64], apic_base: [272, u64], interrupt_bitmap: [280, array(u64, 4)],
} as const);
export type KvmSregs = StructValue<typeof kvm_sregs.fields>;

export const kvm_fpu = struct('kvm_fpu', 416, {
  fpr: [0, bytes(128)], fcw: [128, u16], fsw: [130, u16], ftwx: [132, u8], pad1: [133, u8],
  last_opcode: [134, u16], last_ip: [136, u64], last_dp: [144, u64], xmm: [152, bytes(256)],
  mxcsr: [408, u32], pad2: [412, u32],
} as const);
export type KvmFpu = StructValue<typeof kvm_fpu.fields>;

export const kvm_msr_entry = struct('kvm_msr_entry', 16, {
  index: [0, u32], reserved: [4, u32], data: [8, u64],
} as const);
export type KvmMsrEntry = StructValue<typeof kvm_msr_entry.fields>;

/** struct kvm_msrs / kvm_cpuid2 / kvm_msr_list: a count, then a flexible array. */
export const kvm_msrs_header = struct('kvm_msrs', 8, { nmsrs: [0, u32], pad: [4, u32] } as const);
export const kvm_msr_list_header = struct('kvm_msr_list', 4, { nmsrs: [0, u32] } as const);

export const kvm_cpuid_entry2 = struct('kvm_cpuid_entry2', 40, {
  function: [0, u32], index: [4, u32], flags: [8, u32],
  eax: [12, u32], ebx: [16, u32], ecx: [20, u32], edx: [24, u32], padding: [28, array(u32, 3)],
} as const);
export type KvmCpuidEntry2 = StructValue<typeof kvm_cpuid_entry2.fields>;
export const kvm_cpuid2_header = struct('kvm_cpuid2', 8, { nent: [0, u32], padding: [4, u32] } as const);

export const kvm_userspace_memory_region = struct('kvm_userspace_memory_region', 32, {
  slot: [0, u32], flags: [4, u32], guest_phys_addr: [8, u64], memory_size: [16, u64],
  userspace_addr: [24, u64],
} as const);
export type KvmUserspaceMemoryRegion = StructValue<typeof kvm_userspace_memory_region.fields>;

export const kvm_lapic_state = struct('kvm_lapic_state', 1024, { regs: [0, bytes(1024)] } as const);

export const kvm_irq_level = struct('kvm_irq_level', 8, { irq: [0, u32], level: [4, u32] } as const);

export const kvm_pit_config = struct('kvm_pit_config', 64, {
  flags: [0, u32], pad: [4, array(u32, 15)],
} as const);

export const kvm_translation = struct('kvm_translation', 24, {
  linear_address: [0, u64], physical_address: [8, u64], valid: [16, u8], writeable: [17, u8],
  usermode: [18, u8], pad: [19, bytes(5)],
} as const);
export type KvmTranslation = StructValue<typeof kvm_translation.fields>;

export const kvm_mp_state = struct('kvm_mp_state', 4, { mp_state: [0, u32] } as const);

export const kvm_irqfd = struct('kvm_irqfd', 32, {
  fd: [0, u32], gsi: [4, u32], flags: [8, u32], resamplefd: [12, u32], pad: [16, bytes(16)],
} as const);

export const kvm_ioeventfd = struct('kvm_ioeventfd', 64, {
  datamatch: [0, u64], addr: [8, u64], len: [16, u32], fd: [20, i32], flags: [24, u32], pad: [28, bytes(36)],
} as const);

/** The fields of struct kvm_run this VMM reads, and the exit union members it decodes. */
export const KVM_RUN_OFFSETS = {
  request_interrupt_window: 0,
  immediate_exit: 1,
  exit_reason: 8,
  ready_for_interrupt_injection: 12,
  if_flag: 13,
  flags: 14,
  cr8: 16,
  apic_base: 24,
  /** Start of the exit union. */
  exit: 32,
  io_direction: 32,
  io_size: 33,
  io_port: 34,
  io_count: 36,
  io_data_offset: 40,
  mmio_phys_addr: 32,
  mmio_data: 40,
  mmio_len: 48,
  mmio_is_write: 52,
  fail_entry_hardware_entry_failure_reason: 32,
  fail_entry_cpu: 40,
  internal_suberror: 32,
  internal_ndata: 36,
  internal_data: 40,
  system_event_type: 32,
  system_event_ndata: 36,
  system_event_data: 40,
  hw_hardware_exit_reason: 32,
  ex_exception: 32,
  ex_error_code: 36,
  kvm_valid_regs: 288,
  kvm_dirty_regs: 296,
  s: 304,
} as const;
