// ioctl request numbers, computed the way <asm-generic/ioctl.h> does from the structure sizes
// in structs.ts. A unit test compares each with the value the C headers give.

import {
  kvm_clock_data, kvm_coalesced_mmio_zone, kvm_cpuid2_header, kvm_debugregs, kvm_dirty_log, kvm_fpu, kvm_ioeventfd, kvm_irq_level,
  kvm_irqchip, kvm_irqfd, kvm_lapic_state, kvm_mp_state, kvm_msr_list_header, kvm_msrs_header,
  kvm_pit_config, kvm_pit_state2, kvm_regs, kvm_sregs, kvm_translation,
  kvm_userspace_memory_region, kvm_vcpu_events, kvm_xcrs, kvm_xsave,
} from './structs.js';

const KVMIO = 0xae;
const IOC_NONE = 0;
const IOC_WRITE = 1;
const IOC_READ = 2;

function ioc(dir: number, nr: number, size: number): number {
  return ((dir << 30) | (size << 16) | (KVMIO << 8) | nr) >>> 0;
}
const io = (nr: number) => ioc(IOC_NONE, nr, 0);
const ior = (nr: number, size: number) => ioc(IOC_READ, nr, size);
const iow = (nr: number, size: number) => ioc(IOC_WRITE, nr, size);
const iowr = (nr: number, size: number) => ioc(IOC_READ | IOC_WRITE, nr, size);

export const KVM_GET_API_VERSION = io(0x00);
export const KVM_CREATE_VM = io(0x01);
export const KVM_GET_MSR_INDEX_LIST = iowr(0x02, kvm_msr_list_header.size);
export const KVM_CHECK_EXTENSION = io(0x03);
export const KVM_GET_VCPU_MMAP_SIZE = io(0x04);
export const KVM_GET_SUPPORTED_CPUID = iowr(0x05, kvm_cpuid2_header.size);

export const KVM_CREATE_VCPU = io(0x41);
export const KVM_GET_DIRTY_LOG = iow(0x42, kvm_dirty_log.size);
export const KVM_SET_USER_MEMORY_REGION = iow(0x46, kvm_userspace_memory_region.size);
export const KVM_SET_TSS_ADDR = io(0x47);
export const KVM_SET_IDENTITY_MAP_ADDR = iow(0x48, 8);
export const KVM_CREATE_IRQCHIP = io(0x60);
export const KVM_IRQ_LINE = iow(0x61, kvm_irq_level.size);
export const KVM_GET_IRQCHIP = iowr(0x62, kvm_irqchip.size);
/** _IOR although the kernel reads the structure: a historical slip the header keeps. */
export const KVM_SET_IRQCHIP = ior(0x63, kvm_irqchip.size);
export const KVM_REGISTER_COALESCED_MMIO = iow(0x67, kvm_coalesced_mmio_zone.size);
export const KVM_IRQFD = iow(0x76, kvm_irqfd.size);
export const KVM_CREATE_PIT2 = iow(0x77, kvm_pit_config.size);
export const KVM_IOEVENTFD = iow(0x79, kvm_ioeventfd.size);
export const KVM_SET_CLOCK = iow(0x7b, kvm_clock_data.size);
export const KVM_GET_CLOCK = ior(0x7c, kvm_clock_data.size);
export const KVM_GET_PIT2 = ior(0x9f, kvm_pit_state2.size);
export const KVM_SET_PIT2 = iow(0xa0, kvm_pit_state2.size);

export const KVM_RUN = io(0x80);
export const KVM_GET_REGS = ior(0x81, kvm_regs.size);
export const KVM_SET_REGS = iow(0x82, kvm_regs.size);
export const KVM_GET_SREGS = ior(0x83, kvm_sregs.size);
export const KVM_SET_SREGS = iow(0x84, kvm_sregs.size);
export const KVM_TRANSLATE = iowr(0x85, kvm_translation.size);
export const KVM_GET_MSRS = iowr(0x88, kvm_msrs_header.size);
export const KVM_SET_MSRS = iow(0x89, kvm_msrs_header.size);
export const KVM_GET_FPU = ior(0x8c, kvm_fpu.size);
export const KVM_SET_FPU = iow(0x8d, kvm_fpu.size);
export const KVM_GET_LAPIC = ior(0x8e, kvm_lapic_state.size);
export const KVM_SET_LAPIC = iow(0x8f, kvm_lapic_state.size);
export const KVM_SET_CPUID2 = iow(0x90, kvm_cpuid2_header.size);
export const KVM_GET_MP_STATE = ior(0x98, kvm_mp_state.size);
export const KVM_SET_MP_STATE = iow(0x99, kvm_mp_state.size);
export const KVM_GET_CPUID2 = iowr(0x91, kvm_cpuid2_header.size);
export const KVM_GET_VCPU_EVENTS = ior(0x9f, kvm_vcpu_events.size);
export const KVM_SET_VCPU_EVENTS = iow(0xa0, kvm_vcpu_events.size);
export const KVM_GET_DEBUGREGS = ior(0xa1, kvm_debugregs.size);
export const KVM_SET_DEBUGREGS = iow(0xa2, kvm_debugregs.size);
export const KVM_GET_XSAVE = ior(0xa4, kvm_xsave.size);
export const KVM_SET_XSAVE = iow(0xa5, kvm_xsave.size);
export const KVM_GET_XCRS = ior(0xa6, kvm_xcrs.size);
export const KVM_SET_XCRS = iow(0xa7, kvm_xcrs.size);
export const KVM_KVMCLOCK_CTRL = io(0xad);
/** Encodes sizeof(struct kvm_xsave) like KVM_GET_XSAVE; the buffer may be larger (KVM_CAP_XSAVE2). */
export const KVM_GET_XSAVE2 = ior(0xcf, kvm_xsave.size);

/** Names for error messages: "KVM_CREATE_VM failed: ENOMEM". */
export const IOCTL_NAMES: ReadonlyMap<number, string> = new Map(
  Object.entries({
    KVM_GET_API_VERSION, KVM_CREATE_VM, KVM_GET_MSR_INDEX_LIST, KVM_CHECK_EXTENSION,
    KVM_GET_VCPU_MMAP_SIZE, KVM_GET_SUPPORTED_CPUID, KVM_CREATE_VCPU, KVM_GET_DIRTY_LOG, KVM_SET_USER_MEMORY_REGION,
    KVM_SET_TSS_ADDR, KVM_SET_IDENTITY_MAP_ADDR, KVM_CREATE_IRQCHIP, KVM_IRQ_LINE, KVM_IRQFD, KVM_REGISTER_COALESCED_MMIO,
    KVM_CREATE_PIT2, KVM_IOEVENTFD, KVM_RUN, KVM_GET_REGS, KVM_SET_REGS, KVM_GET_SREGS,
    KVM_SET_SREGS, KVM_TRANSLATE, KVM_GET_MSRS, KVM_SET_MSRS, KVM_GET_FPU, KVM_SET_FPU,
    KVM_GET_LAPIC, KVM_SET_LAPIC, KVM_SET_CPUID2, KVM_GET_MP_STATE, KVM_SET_MP_STATE,
    KVM_GET_IRQCHIP, KVM_SET_IRQCHIP, KVM_SET_CLOCK, KVM_GET_CLOCK, KVM_GET_PIT2, KVM_SET_PIT2,
    KVM_GET_CPUID2, KVM_GET_VCPU_EVENTS, KVM_SET_VCPU_EVENTS, KVM_GET_DEBUGREGS, KVM_SET_DEBUGREGS,
    KVM_GET_XSAVE, KVM_SET_XSAVE, KVM_GET_XCRS, KVM_SET_XCRS, KVM_KVMCLOCK_CTRL, KVM_GET_XSAVE2,
  }).map(([name, value]) => [value, name]),
);

/** Capabilities tsvmm asks about (KVM_CHECK_EXTENSION), with their header names. */
export const KVM_CAP = {
  KVM_CAP_IRQCHIP: 0,
  KVM_CAP_HLT: 1,
  KVM_CAP_USER_MEMORY: 3,
  KVM_CAP_SET_TSS_ADDR: 4,
  KVM_CAP_EXT_CPUID: 7,
  KVM_CAP_NR_VCPUS: 9,
  KVM_CAP_NR_MEMSLOTS: 10,
  KVM_CAP_MP_STATE: 14,
  KVM_CAP_COALESCED_MMIO: 15,
  KVM_CAP_IRQ_INJECT_STATUS: 26,
  KVM_CAP_SET_IDENTITY_MAP_ADDR: 37,
  KVM_CAP_IRQFD: 32,
  KVM_CAP_PIT2: 33,
  KVM_CAP_IOEVENTFD: 36,
  KVM_CAP_MAX_VCPUS: 66,
  KVM_CAP_IMMEDIATE_EXIT: 136,
  KVM_CAP_ADJUST_CLOCK: 39,
  KVM_CAP_VCPU_EVENTS: 41,
  KVM_CAP_DEBUGREGS: 50,
  KVM_CAP_XSAVE: 55,
  KVM_CAP_XCRS: 56,
  KVM_CAP_TSC_DEADLINE_TIMER: 72,
  KVM_CAP_KVMCLOCK_CTRL: 76,
  KVM_CAP_CHECK_EXTENSION_VM: 105,
  KVM_CAP_COALESCED_PIO: 162,
  KVM_CAP_XSAVE2: 208,
} as const;

/** kvm_userspace_memory_region's flags. */
export const KVM_MEM = {
  KVM_MEM_LOG_DIRTY_PAGES: 1 << 0,
  KVM_MEM_READONLY: 1 << 1,
} as const;

/** struct kvm_irqchip's chip_id. */
export const KVM_IRQCHIP = {
  KVM_IRQCHIP_PIC_MASTER: 0,
  KVM_IRQCHIP_PIC_SLAVE: 1,
  KVM_IRQCHIP_IOAPIC: 2,
} as const;

/** struct kvm_clock_data's flags. */
export const KVM_CLOCK = {
  KVM_CLOCK_TSC_STABLE: 2,
  KVM_CLOCK_REALTIME: 1 << 2,
  KVM_CLOCK_HOST_TSC: 1 << 3,
} as const;

/** struct kvm_vcpu_events' flags: on KVM_SET_VCPU_EVENTS, which optional members to apply. */
export const KVM_VCPUEVENT = {
  KVM_VCPUEVENT_VALID_NMI_PENDING: 0x01,
  KVM_VCPUEVENT_VALID_SIPI_VECTOR: 0x02,
  KVM_VCPUEVENT_VALID_SHADOW: 0x04,
  KVM_VCPUEVENT_VALID_SMM: 0x08,
  KVM_VCPUEVENT_VALID_PAYLOAD: 0x10,
  KVM_VCPUEVENT_VALID_TRIPLE_FAULT: 0x20,
} as const;

export const KVM_EXIT = {
  KVM_EXIT_UNKNOWN: 0,
  KVM_EXIT_EXCEPTION: 1,
  KVM_EXIT_IO: 2,
  KVM_EXIT_HYPERCALL: 3,
  KVM_EXIT_DEBUG: 4,
  KVM_EXIT_HLT: 5,
  KVM_EXIT_MMIO: 6,
  KVM_EXIT_IRQ_WINDOW_OPEN: 7,
  KVM_EXIT_SHUTDOWN: 8,
  KVM_EXIT_FAIL_ENTRY: 9,
  KVM_EXIT_INTR: 10,
  KVM_EXIT_INTERNAL_ERROR: 17,
  KVM_EXIT_SYSTEM_EVENT: 24,
} as const;

export const KVM_SYSTEM_EVENT = {
  KVM_SYSTEM_EVENT_SHUTDOWN: 1,
  KVM_SYSTEM_EVENT_RESET: 2,
  KVM_SYSTEM_EVENT_CRASH: 3,
} as const;

export const KVM_INTERNAL_ERROR = {
  KVM_INTERNAL_ERROR_EMULATION: 1,
  KVM_INTERNAL_ERROR_SIMUL_EX: 2,
  KVM_INTERNAL_ERROR_DELIVERY_EV: 3,
  KVM_INTERNAL_ERROR_UNEXPECTED_EXIT_REASON: 4,
} as const;

export const KVM_MP_STATE = {
  KVM_MP_STATE_RUNNABLE: 0,
  KVM_MP_STATE_UNINITIALIZED: 1,
  KVM_MP_STATE_INIT_RECEIVED: 2,
  KVM_MP_STATE_HALTED: 3,
  KVM_MP_STATE_SIPI_RECEIVED: 4,
  KVM_MP_STATE_AP_RESET_HOLD: 9,
  KVM_MP_STATE_SUSPENDED: 10,
} as const;

export const KVM_API_VERSION = 12;
