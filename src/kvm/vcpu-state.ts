// The complete KVM state of one paused vCPU, and putting it back into a fresh one.
//
// Each piece is kept as the bytes of its kernel structure: they survive a file round trip
// exactly, need no schema of our own, and a decoded view is one codec call away. A snapshot read
// back from a file is untrusted, so restore checks every length before any ioctl; the values
// themselves are KVM's to judge (it refuses bad ones with EINVAL, and the error names the ioctl).
//
// The FPU/SSE state is not saved separately: the XSAVE image holds it (its legacy area), and
// KVM_SET_FPU after KVM_SET_XSAVE would only overwrite part of the same state.

import { TsvmmError } from '../errors.js';
import { KVM_MP_STATE, KVM_VCPUEVENT } from './ioctls.js';
import type { Kvm, VcpuFd } from './kvm.js';
import {
  kvm_cpuid_entry2, kvm_debugregs, kvm_lapic_state, kvm_msr_entry, kvm_regs, kvm_sregs,
  kvm_vcpu_events, kvm_xcrs, kvm_xsave, type KvmMsrEntry, type KvmRegs,
  type KvmSregs,
} from './structs.js';

export interface VcpuSnapshot {
  /** The vCPU id, which is also its initial APIC id: restore refuses a vCPU with another. */
  id: number;
  /** kvm_cpuid_entry2[], as KVM_GET_CPUID2 returned them. */
  cpuid: Uint8Array;
  /** struct kvm_regs. */
  regs: Uint8Array;
  /** struct kvm_sregs. */
  sregs: Uint8Array;
  /** struct kvm_xsave: 4096 bytes, or VmFd.xsaveSize() where KVM_CAP_XSAVE2 reports more. */
  xsave: Uint8Array;
  /** struct kvm_xcrs. */
  xcrs: Uint8Array;
  /** struct kvm_debugregs. */
  debugregs: Uint8Array;
  /** struct kvm_lapic_state: the local APIC's register page. */
  lapic: Uint8Array;
  /** kvm_msr_entry[], in the order they were read. */
  msrs: Uint8Array;
  /** KVM_MP_STATE_*: runnable, halted, or an AP still waiting for INIT/SIPI. */
  mpState: number;
  /** struct kvm_vcpu_events. */
  vcpuEvents: Uint8Array;
  /** MSRs of the list asked for that KVM refused to read, so they are not in `msrs`. */
  skippedMsrs: number[];
}

/** A snapshot's bytes do not fit the structure they claim to hold. */
export class KvmStateError extends TsvmmError {
  /** The snapshot field at fault, e.g. "vcpu 1: xsave" or "vm: ioapic". */
  readonly field: string;

  constructor(field: string, message: string) {
    super('BAD_SNAPSHOT', `snapshot ${field}: ${message}`);
    this.name = 'KvmStateError';
    this.field = field;
  }
}

export interface VcpuStateOptions {
  /** VmFd.xsaveSize() of the VM the vCPU belongs to; 4096 where KVM_CAP_XSAVE2 is absent. */
  xsaveSize?: number;
}

export interface VcpuRestoreOptions extends VcpuStateOptions {
  /** Tell the guest through kvmclock that it was paused (KVM_KVMCLOCK_CTRL). Default true. */
  notifyGuest?: boolean;
}

export interface VcpuRestoreResult {
  /** Whether KVM_KVMCLOCK_CTRL reached the guest; false when it does not use kvmclock. */
  guestNotified: boolean;
}

export const MSR_IA32_TSC = 0x10;
export const MSR_IA32_TSC_DEADLINE = 0x6e0;
const APIC_LVTT = 0x320;
const APIC_LVT_MASKED = 1 << 16;
const APIC_LVT_TIMER_TSC_DEADLINE = 2 << 17;
const APIC_LVT_TIMER_MODE = 3 << 17;

const MSR_MTRRCAP = 0xfe;
const MSR_MTRR_DEF_TYPE = 0x2ff;
const MSR_MTRR_FIXED = [0x250, 0x258, 0x259, 0x268, 0x269, 0x26a, 0x26b, 0x26c, 0x26d, 0x26e, 0x26f];
const MSR_MTRR_PHYSBASE0 = 0x200;
const MSR_IA32_MCG_CAP = 0x179;
const MSR_IA32_MC0_CTL = 0x400;
const MSR_IA32_MC0_CTL2 = 0x280;
const MCG_CMCI_P = 1n << 10n;

/**
 * The MSRs a snapshot saves: KVM's index list, plus two groups KVM leaves out of it although
 * they are vCPU state a guest writes (QEMU saves them the same way): the MTRRs, and the
 * machine-check banks, whose number KVM_GET_MSR_INDEX_LIST cannot know (it is per vCPU).
 * MCG_CAP itself stays out: it is configuration (KVM_X86_SETUP_MCE), like CPUID.
 */
export function vcpuMsrIndices(kvm: Kvm, vcpu: VcpuFd): number[] {
  const indices = kvm.msrIndexList();
  const caps = readMsrs(vcpu, [MSR_MTRRCAP, MSR_IA32_MCG_CAP]).entries;
  const mtrrcap = caps.find((e) => e.index === MSR_MTRRCAP)?.data;
  if (mtrrcap !== undefined) {
    const variable = Number(mtrrcap & 0xffn);
    indices.push(MSR_MTRR_DEF_TYPE, ...MSR_MTRR_FIXED,
      ...Array.from({ length: 2 * variable }, (_, i) => MSR_MTRR_PHYSBASE0 + i));
  }
  const mcgCap = caps.find((e) => e.index === MSR_IA32_MCG_CAP)?.data;
  if (mcgCap !== undefined) {
    const banks = Number(mcgCap & 0xffn);
    indices.push(...Array.from({ length: 4 * banks }, (_, i) => MSR_IA32_MC0_CTL + i));
    if (mcgCap & MCG_CMCI_P) indices.push(...Array.from({ length: banks }, (_, i) => MSR_IA32_MC0_CTL2 + i));
  }
  return [...new Set(indices)];
}

/** KVM_GET_MSRS and KVM_SET_MSRS refuse 256 entries or more at once (MAX_IO_MSRS). */
const MSR_CHUNK = 255;

/**
 * Reads `indices`, skipping the ones KVM refuses. KVM_GET_MSRS stops at the first MSR it cannot
 * read and returns how many it read, so that count points at the culprit: note it, go on after it.
 */
export function readMsrs(vcpu: VcpuFd, indices: readonly number[]): { entries: KvmMsrEntry[]; refused: number[] } {
  const entries: KvmMsrEntry[] = [];
  const refused: number[] = [];
  let rest = indices.slice();
  while (rest.length > 0) {
    const chunk = rest.slice(0, MSR_CHUNK);
    const read = vcpu.getMsrs(chunk);
    entries.push(...read);
    if (read.length < chunk.length) {
      refused.push(chunk[read.length]!);
      rest = rest.slice(read.length + 1);
    } else {
      rest = rest.slice(chunk.length);
    }
  }
  return { entries, refused };
}

function checkXsaveSize(size: number): number {
  if (!Number.isInteger(size) || size < kvm_xsave.size || size % 4 !== 0) {
    throw new RangeError(`xsaveSize must be at least ${kvm_xsave.size} and a multiple of 4, got ${size}`);
  }
  return size;
}

function encodeArray<T>(codec: { size: number; encode(v: T): Uint8Array }, values: readonly T[]): Uint8Array {
  const out = new Uint8Array(values.length * codec.size);
  values.forEach((v, i) => out.set(codec.encode(v), i * codec.size));
  return out;
}

function decodeArray<T>(codec: { size: number; decode(d: Uint8Array, o?: number): T }, data: Uint8Array): T[] {
  return Array.from({ length: data.length / codec.size }, (_, i) => codec.decode(data, i * codec.size));
}

/**
 * Finishes the instruction behind the last exit. After a port-I/O or MMIO exit, KVM completes the
 * instruction (stores an IN's value, moves RIP past an OUT) only on the next KVM_RUN, and that
 * half-done state is in no structure a snapshot saves: saved as it is, an OUT would run twice.
 * immediate_exit makes KVM do just that completion and return EINTR without running the guest.
 */
export function completePendingIo(vcpu: VcpuFd): void {
  const run = vcpu.kvmRun;
  const before = run.immediateExit;
  run.immediateExit = true;
  try {
    vcpu.run();
  } finally {
    run.immediateExit = before;
  }
}

/**
 * Saves a paused vCPU: not in KVM_RUN, and neither is any other vCPU of its VM (the events and
 * the LAPIC are only coherent while all of them stand still), with its last exit completed (a
 * kick that ends KVM_RUN with EINTR leaves it so; otherwise see completePendingIo).
 */
export function saveVcpu(vcpu: VcpuFd, msrIndices: readonly number[], options: VcpuStateOptions = {}): VcpuSnapshot {
  const xsaveSize = checkXsaveSize(options.xsaveSize ?? kvm_xsave.size);
  // KVM_GET_MP_STATE first: it makes the LAPIC accept pending INIT/SIPI, which changes the
  // registers and the LAPIC that follow. Events last: the other GETs may settle what is pending.
  const mpState = vcpu.getMpState();
  const regs = kvm_regs.encode(vcpu.getRegs());
  const sregs = kvm_sregs.encode(vcpu.getSregs());
  const xsave = xsaveSize > kvm_xsave.size ? vcpu.getXsave2(xsaveSize) : vcpu.getXsave();
  const xcrs = kvm_xcrs.encode(vcpu.getXcrs());
  const debugregs = kvm_debugregs.encode(vcpu.getDebugregs());
  const lapic = vcpu.getLapic();
  const cpuid = encodeArray(kvm_cpuid_entry2, vcpu.getCpuid2());
  const { entries, refused } = readMsrs(vcpu, msrIndices);
  const vcpuEvents = kvm_vcpu_events.encode(vcpu.getVcpuEvents());
  return {
    id: vcpu.id, cpuid, regs, sregs, xsave, xcrs, debugregs, lapic,
    msrs: encodeArray(kvm_msr_entry, entries), mpState, vcpuEvents, skippedMsrs: refused,
  };
}

/** Checks every field's type and length; throws a KvmStateError naming the first bad one. */
export function checkVcpuSnapshot(snapshot: VcpuSnapshot, options: VcpuStateOptions = {}): void {
  const xsaveSize = checkXsaveSize(options.xsaveSize ?? kvm_xsave.size);
  if (typeof snapshot !== 'object' || snapshot === null) throw new KvmStateError('vcpu', 'is not an object');
  const who = `vcpu ${String(snapshot.id)}`;
  if (!Number.isInteger(snapshot.id) || snapshot.id < 0) throw new KvmStateError(`${who}: id`, 'is not a vCPU id');
  const exact: [keyof VcpuSnapshot, number, string][] = [
    ['regs', kvm_regs.size, 'kvm_regs'],
    ['sregs', kvm_sregs.size, 'kvm_sregs'],
    ['xsave', xsaveSize, 'kvm_xsave (this VM\'s XSAVE size)'],
    ['xcrs', kvm_xcrs.size, 'kvm_xcrs'],
    ['debugregs', kvm_debugregs.size, 'kvm_debugregs'],
    ['lapic', kvm_lapic_state.size, 'kvm_lapic_state'],
    ['vcpuEvents', kvm_vcpu_events.size, 'kvm_vcpu_events'],
  ];
  const bytes = (field: keyof VcpuSnapshot): Uint8Array => {
    const value = snapshot[field];
    if (!(value instanceof Uint8Array)) throw new KvmStateError(`${who}: ${field}`, 'is not a byte array');
    return value;
  };
  for (const [field, size, struct] of exact) {
    const length = bytes(field).length;
    if (length !== size) throw new KvmStateError(`${who}: ${field}`, `has ${length} bytes, ${struct} is ${size}`);
  }
  for (const [field, size, struct] of [['cpuid', kvm_cpuid_entry2.size, 'kvm_cpuid_entry2'], ['msrs', kvm_msr_entry.size, 'kvm_msr_entry']] as const) {
    const length = bytes(field).length;
    if (length % size !== 0) throw new KvmStateError(`${who}: ${field}`, `has ${length} bytes, not a whole number of ${size}-byte ${struct}`);
  }
  if (snapshot.cpuid.length === 0) throw new KvmStateError(`${who}: cpuid`, 'is empty');
  if (!Number.isInteger(snapshot.mpState) || snapshot.mpState < 0 || snapshot.mpState > 0xffffffff) {
    throw new KvmStateError(`${who}: mpState`, `${String(snapshot.mpState)} is not a KVM_MP_STATE value`);
  }
}

/**
 * The MSRs in the order KVM_SET_MSRS must see them. TSC_DEADLINE goes after TSC: KVM arms the
 * deadline timer by comparing it with the guest's TSC, which must already be the restored one.
 */
function msrsForRestore(entries: KvmMsrEntry[], lapic: Uint8Array): KvmMsrEntry[] {
  const view = new DataView(lapic.buffer, lapic.byteOffset, lapic.byteLength);
  const lvtt = view.getUint32(APIC_LVTT, true);
  const deadlineArmed = (lvtt & APIC_LVT_TIMER_MODE) === APIC_LVT_TIMER_TSC_DEADLINE && !(lvtt & APIC_LVT_MASKED);
  const tsc = entries.find((e) => e.index === MSR_IA32_TSC)?.data;
  const out = entries.filter((e) => e.index !== MSR_IA32_TSC_DEADLINE);
  for (const e of entries.filter((x) => x.index === MSR_IA32_TSC_DEADLINE)) {
    // A deadline that expired while the VM was paused reads 0, and its interrupt sits in a KVM
    // counter (lapic_timer.pending) that no ioctl saves. Restoring 0 would leave the guest's timer
    // dead for good; a deadline of "now" delivers the tick (at worst one spurious interrupt).
    out.push(deadlineArmed && e.data === 0n && tsc !== undefined ? { ...e, data: tsc } : e);
  }
  return out;
}

/**
 * Restores a snapshot into a vCPU of a fresh VM that has not run since it was built (the builder
 * has set its CPUID; this sets the snapshot's, which is the same on the same host). Order:
 *
 * 1. CPUID: KVM checks MSR values, XSAVE components, XCR0 and x2APIC against it.
 * 2. regs, then sregs: KVM_SET_SREGS restores EFER, CR0/3/4 and the APIC base MSR.
 * 3. XSAVE, XCRs, debug registers.
 * 4. LAPIC, after sregs: KVM_SET_LAPIC reads the APIC base (xAPIC or x2APIC) that sregs set.
 * 5. MSRs, after the LAPIC: TSC_DEADLINE only takes while the LVT timer is in TSC-deadline mode.
 * 6. mp_state, after everything that can move it, before events: KVM refuses INIT_RECEIVED while
 *    an INIT is latched (SMM), which the events restore.
 * 7. vCPU events last: KVM_SET_REGS drops a pending exception, the events bring it back, with
 *    the interrupt shadow, NMI and SMM state.
 * 8. KVM_KVMCLOCK_CTRL, so the guest's watchdog knows the host stopped it.
 */
export function restoreVcpu(vcpu: VcpuFd, snapshot: VcpuSnapshot, options: VcpuRestoreOptions = {}): VcpuRestoreResult {
  checkVcpuSnapshot(snapshot, options);
  if (snapshot.id !== vcpu.id) {
    throw new KvmStateError(`vcpu ${snapshot.id}: id`, `cannot be restored into vCPU ${vcpu.id} (its APIC id differs)`);
  }
  vcpu.setCpuid2(decodeArray(kvm_cpuid_entry2, snapshot.cpuid));
  vcpu.setRegs(kvm_regs.decode(snapshot.regs));
  vcpu.setSregs(kvm_sregs.decode(snapshot.sregs));
  vcpu.setXsave(snapshot.xsave);
  const xcrs = kvm_xcrs.decode(snapshot.xcrs);
  // A host without XSAVE (KVM on a CPU or an L1 that lacks it) reports no XCRs and refuses
  // KVM_SET_XCRS with EINVAL whatever it is given: there is nothing to restore.
  if (xcrs.nr_xcrs > 0) vcpu.setXcrs(xcrs);
  vcpu.setDebugregs(kvm_debugregs.decode(snapshot.debugregs));
  vcpu.setLapic(snapshot.lapic);
  const msrs = msrsForRestore(decodeArray(kvm_msr_entry, snapshot.msrs), snapshot.lapic);
  for (let i = 0; i < msrs.length; i += MSR_CHUNK) vcpu.setMsrs(msrs.slice(i, i + MSR_CHUNK));
  vcpu.setMpState(snapshot.mpState);
  const events = kvm_vcpu_events.decode(snapshot.vcpuEvents);
  // KVM_GET_VCPU_EVENTS never sets VALID_SIPI_VECTOR, yet an AP between INIT and SIPI needs it.
  events.flags |= KVM_VCPUEVENT.KVM_VCPUEVENT_VALID_SIPI_VECTOR;
  vcpu.setVcpuEvents(events);
  const guestNotified = options.notifyGuest === false ? false : vcpu.kvmclockCtrl();
  return { guestNotified };
}

/** The general registers, decoded (rip for a status line). */
export function snapshotRegs(snapshot: VcpuSnapshot): KvmRegs {
  return kvm_regs.decode(snapshot.regs);
}

export function snapshotSregs(snapshot: VcpuSnapshot): KvmSregs {
  return kvm_sregs.decode(snapshot.sregs);
}

export function snapshotMsrs(snapshot: VcpuSnapshot): KvmMsrEntry[] {
  return decodeArray(kvm_msr_entry, snapshot.msrs);
}

/** "runnable", "halted", ... for a status display. */
export function mpStateName(mpState: number): string {
  const name = Object.entries(KVM_MP_STATE).find(([, v]) => v === mpState)?.[0];
  return name ? name.replace('KVM_MP_STATE_', '').toLowerCase() : `mp_state ${mpState}`;
}
