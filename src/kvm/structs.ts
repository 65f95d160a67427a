// The KVM structures tsvmm exchanges with the kernel (linux/kvm.h, asm/kvm.h for x86_64), with
// the kernel's names. Offsets are checked against the installed headers by a unit test.

import { array, bytes, struct, u16, u32, u64, u8, i32, type Codec, type StructValue } from './struct.js';

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

/** KVM_GET_DIRTY_LOG's argument: a slot, and where the kernel copies its bitmap (a pointer in a u64 union). */
export const kvm_dirty_log = struct('kvm_dirty_log', 16, {
  slot: [0, u32], padding1: [4, u32], dirty_bitmap: [8, u64],
} as const);
export type KvmDirtyLog = StructValue<typeof kvm_dirty_log.fields>;

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

/** KVM_REGISTER_COALESCED_MMIO's argument: a range whose writes KVM queues instead of exiting (pio: 1 for ports). */
export const kvm_coalesced_mmio_zone = struct('kvm_coalesced_mmio_zone', 16, {
  addr: [0, u64], size: [8, u32], pio: [12, u32],
} as const);

/** One queued write in the coalesced ring (coalesced-ring.ts reads these in place). */
export const kvm_coalesced_mmio = struct('kvm_coalesced_mmio', 24, {
  phys_addr: [0, u64], len: [8, u32], pio: [12, u32], data: [16, bytes(8)],
} as const);

/** The ring's header: the next entry to read and the next KVM writes; the entries follow. */
export const kvm_coalesced_mmio_ring = struct('kvm_coalesced_mmio_ring', 8, {
  first: [0, u32], last: [4, u32],
} as const);

// The state a snapshot carries (vcpu-state.ts, vm-state.ts). Every one of these codecs covers
// each byte of its structure, padding and reserved fields included, so decode → encode gives back
// the kernel's bytes exactly (test/unit/kvm-structs.test.ts checks that too).

const i64: Codec<bigint> = {
  size: 8,
  read: (v, o) => v.getBigInt64(o, true),
  write: (v, o, x) => v.setBigInt64(o, BigInt.asIntN(64, x), true),
};

/** struct kvm_xsave without its flexible tail: what KVM_GET_XSAVE returns. */
export const KVM_XSAVE_SIZE = 4096;
export const kvm_xsave = struct('kvm_xsave', KVM_XSAVE_SIZE, { region: [0, bytes(KVM_XSAVE_SIZE)] } as const);

export const kvm_xcr = struct('kvm_xcr', 16, { xcr: [0, u32], reserved: [4, u32], value: [8, u64] } as const);
export type KvmXcr = StructValue<typeof kvm_xcr.fields>;
export const KVM_MAX_XCRS = 16;
export const kvm_xcrs = struct('kvm_xcrs', 392, {
  nr_xcrs: [0, u32], flags: [4, u32], xcrs: [8, array(kvm_xcr, KVM_MAX_XCRS)], padding: [264, array(u64, 16)],
} as const);
export type KvmXcrs = StructValue<typeof kvm_xcrs.fields>;

export const kvm_debugregs = struct('kvm_debugregs', 128, {
  db: [0, array(u64, 4)], dr6: [32, u64], dr7: [40, u64], flags: [48, u64], reserved: [56, array(u64, 9)],
} as const);
export type KvmDebugregs = StructValue<typeof kvm_debugregs.fields>;

// kvm_vcpu_events' members are anonymous structures in C: these codecs have no C name of their
// own, so they are not exported; the layout test reaches their fields through the member path
// (offsetof(struct kvm_vcpu_events, exception.error_code)).
const vcpu_events_exception = struct('exception', 8, {
  injected: [0, u8], nr: [1, u8], has_error_code: [2, u8], pending: [3, u8], error_code: [4, u32],
} as const);
const vcpu_events_interrupt = struct('interrupt', 4, {
  injected: [0, u8], nr: [1, u8], soft: [2, u8], shadow: [3, u8],
} as const);
const vcpu_events_nmi = struct('nmi', 4, {
  injected: [0, u8], pending: [1, u8], masked: [2, u8], pad: [3, u8],
} as const);
const vcpu_events_smi = struct('smi', 4, {
  smm: [0, u8], pending: [1, u8], smm_inside_nmi: [2, u8], latched_init: [3, u8],
} as const);
const vcpu_events_triple_fault = struct('triple_fault', 1, { pending: [0, u8] } as const);

export const kvm_vcpu_events = struct('kvm_vcpu_events', 64, {
  exception: [0, vcpu_events_exception], interrupt: [8, vcpu_events_interrupt], nmi: [12, vcpu_events_nmi],
  sipi_vector: [16, u32], flags: [20, u32], smi: [24, vcpu_events_smi], triple_fault: [28, vcpu_events_triple_fault],
  reserved: [29, bytes(26)], exception_has_payload: [55, u8], exception_payload: [56, u64],
} as const);
export type KvmVcpuEvents = StructValue<typeof kvm_vcpu_events.fields>;

/** The chip union's members, for reading the 512 bytes of kvm_irqchip.chip. */
export const kvm_pic_state = struct('kvm_pic_state', 16, {
  last_irr: [0, u8], irr: [1, u8], imr: [2, u8], isr: [3, u8], priority_add: [4, u8], irq_base: [5, u8],
  read_reg_select: [6, u8], poll: [7, u8], special_mask: [8, u8], init_state: [9, u8], auto_eoi: [10, u8],
  rotate_on_auto_eoi: [11, u8], special_fully_nested_mode: [12, u8], init4: [13, u8], elcr: [14, u8],
  elcr_mask: [15, u8],
} as const);
export type KvmPicState = StructValue<typeof kvm_pic_state.fields>;

export const KVM_IOAPIC_NUM_PINS = 24;
/** Redirection entries stay 64-bit words (the C union's `bits`); the bit-fields are the IOAPIC's. */
export const kvm_ioapic_state = struct('kvm_ioapic_state', 216, {
  base_address: [0, u64], ioregsel: [8, u32], id: [12, u32], irr: [16, u32], pad: [20, u32],
  redirtbl: [24, array(u64, KVM_IOAPIC_NUM_PINS)],
} as const);
export type KvmIoapicState = StructValue<typeof kvm_ioapic_state.fields>;

export const kvm_irqchip = struct('kvm_irqchip', 520, {
  chip_id: [0, u32], pad: [4, u32], chip: [8, bytes(512)],
} as const);
export type KvmIrqchip = StructValue<typeof kvm_irqchip.fields>;

export const kvm_pit_channel_state = struct('kvm_pit_channel_state', 24, {
  count: [0, u32], latched_count: [4, u16], count_latched: [6, u8], status_latched: [7, u8],
  status: [8, u8], read_state: [9, u8], write_state: [10, u8], write_latch: [11, u8],
  rw_mode: [12, u8], mode: [13, u8], bcd: [14, u8], gate: [15, u8], count_load_time: [16, i64],
} as const);
export type KvmPitChannelState = StructValue<typeof kvm_pit_channel_state.fields>;

export const kvm_pit_state2 = struct('kvm_pit_state2', 112, {
  channels: [0, array(kvm_pit_channel_state, 3)], flags: [72, u32], reserved: [76, array(u32, 9)],
} as const);
export type KvmPitState2 = StructValue<typeof kvm_pit_state2.fields>;

export const kvm_clock_data = struct('kvm_clock_data', 48, {
  clock: [0, u64], flags: [8, u32], pad0: [12, u32], realtime: [16, u64], host_tsc: [24, u64],
  pad: [32, array(u32, 4)],
} as const);
export type KvmClockData = StructValue<typeof kvm_clock_data.fields>;

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
