// Handles to /dev/kvm, a VM and a vCPU, each created by its parent (Kvm → VmFd → VcpuFd), with
// one method per ioctl. A failed ioctl throws a KvmError that names the ioctl and the errno.

import {
  addon, EINTR, errnoName, MAP_SHARED, O_RDWR, PROT_READ, PROT_WRITE, type NativeAddon,
} from './addon.js';
import { TsvmmError } from '../errors.js';
import * as ioctl from './ioctls.js';
import {
  kvm_clock_data, kvm_cpuid2_header, kvm_cpuid_entry2, kvm_debugregs, kvm_dirty_log, kvm_fpu, kvm_irq_level,
  kvm_coalesced_mmio_zone, kvm_irqchip, kvm_irqfd, kvm_ioeventfd, kvm_lapic_state, kvm_mp_state, kvm_msr_entry,
  kvm_msr_list_header, kvm_msrs_header, kvm_pit_config, kvm_pit_state2, kvm_regs, kvm_sregs,
  kvm_translation, kvm_userspace_memory_region, kvm_vcpu_events, kvm_xcrs, kvm_xsave,
  type KvmClockData, type KvmCpuidEntry2, type KvmDebugregs, type KvmFpu, type KvmIrqchip,
  type KvmMsrEntry, type KvmPitState2, type KvmRegs, type KvmSregs, type KvmTranslation,
  type KvmUserspaceMemoryRegion, type KvmVcpuEvents, type KvmXcrs,
} from './structs.js';
import type { Codec } from './struct.js';
import { KvmRun } from './kvm-run.js';

export class KvmError extends TsvmmError {
  readonly ioctl: string;
  readonly errno: number;

  constructor(operation: string, errno: number, detail?: string) {
    const name = errnoName(errno);
    super('KVM_IOCTL', `${operation} failed: ${name}${detail ? ` (${detail})` : ''}`);
    this.name = 'KvmError';
    this.ioctl = operation;
    this.errno = errno;
  }
}

function check(result: number, request: number | string): number {
  if (result < 0) {
    const name = typeof request === 'string' ? request : (ioctl.IOCTL_NAMES.get(request) ?? `ioctl 0x${request.toString(16)}`);
    throw new KvmError(name, -result);
  }
  return result;
}

/** A file descriptor that is closed once. */
abstract class Fd {
  protected readonly native: NativeAddon = addon();
  #fd: number;

  protected constructor(fd: number) {
    this.#fd = fd;
  }

  get fd(): number {
    if (this.#fd < 0) throw new TsvmmError('CLOSED', `${this.constructor.name} is closed`);
    return this.#fd;
  }

  /**
   * A set-up ioctl, again while a signal interrupts it: KVM_CREATE_VM, for one, returns EINTR when
   * a signal arrives meanwhile (seen under --cpu-prof's SIGPROF). KVM_RUN has its own path.
   */
  protected ioctl(request: number, arg: number | bigint | ArrayBufferView = 0): number {
    let rc: number;
    do rc = this.native.ioctl(this.fd, request, arg); while (rc === -EINTR);
    return check(rc, request);
  }

  /**
   * An ioctl that only reads its argument and mostly waits in the kernel, on a thread of its own
   * (the addon's ioctlStart) while the caller goes on: returns its join, which throws as ioctl()
   * would, and again on every later call. Where no thread can be had, it runs here and now.
   */
  protected ioctlInBackground(request: number, arg: ArrayBufferView): () => void {
    const handle = this.native.ioctlStart(this.fd, request, arg);
    if (typeof handle === 'number') {
      this.ioctl(request, arg);
      return () => {};
    }
    let result: number | undefined;
    return () => {
      result ??= this.native.ioctlJoin(handle);
      check(result, request);
    };
  }

  /** ioctl with a structure passed by pointer: encodes `value`, returns what the kernel wrote back. */
  protected ioctlStruct<T>(request: number, codec: Codec<T> & { encode?(v: T): Uint8Array }, value?: T): T {
    const buffer = new Uint8Array(codec.size);
    const view = new DataView(buffer.buffer);
    if (value !== undefined) codec.write(view, 0, value);
    this.ioctl(request, buffer);
    return codec.read(view, 0);
  }

  close(): void {
    if (this.#fd >= 0) {
      this.native.close(this.#fd);
      this.#fd = -1;
    }
  }

  /** Marks it closed and hands over the descriptor, which the caller closes (once). */
  protected takeFd(): number | undefined {
    const fd = this.#fd >= 0 ? this.#fd : undefined;
    this.#fd = -1;
    return fd;
  }
}

/** The KVM device; TSVMM_KVM_DEVICE overrides it (tests use it to check the error for a missing one). */
export const KVM_DEVICE = process.env.TSVMM_KVM_DEVICE ?? '/dev/kvm';

/** Why /dev/kvm could not be opened, in words a user can act on. */
export function kvmOpenError(device: string, errno: number): string {
  const name = errnoName(errno);
  if (name === 'ENOENT') return `cannot open ${device}: KVM is not available on this machine (is the kvm module loaded?)`;
  if (name === 'EACCES' || name === 'EPERM') return `cannot open ${device}: permission denied (run as root or join the group that owns ${device}, usually kvm)`;
  return `cannot open ${device}: ${name}`;
}

export class Kvm extends Fd {
  /** Opens /dev/kvm and checks the API version; the error says what to do when it is missing. */
  static open(device = KVM_DEVICE): Kvm {
    const fd = addon().open(device, O_RDWR);
    if (fd < 0) throw new TsvmmError('KVM_UNAVAILABLE', kvmOpenError(device, -fd));
    const kvm = new Kvm(fd);
    const version = kvm.native.ioctl(fd, ioctl.KVM_GET_API_VERSION, 0);
    if (version !== ioctl.KVM_API_VERSION) {
      kvm.close();
      throw new TsvmmError('KVM_UNAVAILABLE', version < 0
        ? `${device} is not a KVM device (KVM_GET_API_VERSION: ${errnoName(-version)})`
        : `${device} speaks KVM API ${version}, tsvmm needs ${ioctl.KVM_API_VERSION}`);
    }
    return kvm;
  }

  checkExtension(capability: number): number {
    return this.ioctl(ioctl.KVM_CHECK_EXTENSION, capability);
  }

  vcpuMmapSize(): number {
    return this.ioctl(ioctl.KVM_GET_VCPU_MMAP_SIZE);
  }

  /** The most vCPUs one VM may have. */
  maxVcpus(): number {
    return this.checkExtension(ioctl.KVM_CAP.KVM_CAP_MAX_VCPUS) || this.checkExtension(ioctl.KVM_CAP.KVM_CAP_NR_VCPUS) || 4;
  }

  supportedCpuid(): KvmCpuidEntry2[] {
    return readFlexibleArray(
      (buffer) => this.native.ioctl(this.fd, ioctl.KVM_GET_SUPPORTED_CPUID, buffer),
      'KVM_GET_SUPPORTED_CPUID', kvm_cpuid2_header.size, kvm_cpuid_entry2,
    );
  }

  /** The MSRs KVM saves and restores for a vCPU. */
  msrIndexList(): number[] {
    const header = kvm_msr_list_header.size;
    for (let capacity = 256; ; capacity *= 2) {
      const buffer = new Uint8Array(header + capacity * 4);
      const view = new DataView(buffer.buffer);
      view.setUint32(0, capacity, true);
      const rc = this.native.ioctl(this.fd, ioctl.KVM_GET_MSR_INDEX_LIST, buffer);
      if (rc === -7 /* E2BIG */ && capacity < 1 << 16) continue;
      check(rc, ioctl.KVM_GET_MSR_INDEX_LIST);
      const n = view.getUint32(0, true);
      return Array.from({ length: n }, (_, i) => view.getUint32(header + i * 4, true));
    }
  }

  createVm(): VmFd {
    return new VmFd(this.ioctl(ioctl.KVM_CREATE_VM, 0), this.vcpuMmapSize());
  }
}

/** Reads a kernel structure of the "count, then entries" shape, growing the buffer on E2BIG. */
function readFlexibleArray<T>(
  call: (buffer: Uint8Array) => number, name: string, headerSize: number, entry: Codec<T>,
): T[] {
  for (let capacity = 128; ; capacity *= 2) {
    const buffer = new Uint8Array(headerSize + capacity * entry.size);
    const view = new DataView(buffer.buffer);
    view.setUint32(0, capacity, true);
    const rc = call(buffer);
    if (rc === -7 /* E2BIG */ && capacity < 1 << 14) continue;
    check(rc, name);
    const n = view.getUint32(0, true);
    return Array.from({ length: n }, (_, i) => entry.read(view, headerSize + i * entry.size));
  }
}

function encodeFlexibleArray<T>(headerSize: number, entry: Codec<T>, entries: readonly T[]): Uint8Array {
  const buffer = new Uint8Array(headerSize + entries.length * entry.size);
  const view = new DataView(buffer.buffer);
  view.setUint32(0, entries.length, true);
  entries.forEach((e, i) => entry.write(view, headerSize + i * entry.size, e));
  return buffer;
}

export class VmFd extends Fd {
  readonly vcpuMmapSize: number;

  constructor(fd: number, vcpuMmapSize: number) {
    super(fd);
    this.vcpuMmapSize = vcpuMmapSize;
  }

  /**
   * Closing a VM's descriptor is when the kernel tears the VM down (1-30 ms here, nested KVM,
   * mostly waiting for RCU grace periods; the C loop's whole run is ~30 ms): a closer process
   * does it (native/tsvmm.c, closeInBackground), so that what follows a VM's end (its outcome,
   * the control socket, the process's own exit) neither waits for it nor makes the process's
   * end wait.
   */
  override close(): void {
    const fd = this.takeFd();
    if (fd !== undefined) this.native.closeInBackground(fd);
  }

  setUserMemoryRegion(region: KvmUserspaceMemoryRegion): void {
    this.ioctl(ioctl.KVM_SET_USER_MEMORY_REGION, kvm_userspace_memory_region.encode(region));
  }

  /**
   * KVM_SET_USER_MEMORY_REGION on a thread of its own; the join throws as setUserMemoryRegion
   * would. A slot's first registration waits for an SRCU grace period while holding the VM's slots
   * lock (~5 ms here, 0.2 ms of it CPU): vCPUs may be created meanwhile, but whatever takes that
   * lock (I/O bus devices, ioeventfds) waits for it.
   */
  setUserMemoryRegionInBackground(region: KvmUserspaceMemoryRegion): () => void {
    return this.ioctlInBackground(ioctl.KVM_SET_USER_MEMORY_REGION, kvm_userspace_memory_region.encode(region));
  }

  /**
   * KVM_GET_DIRTY_LOG: copies into `bitmap` which pages of a slot registered with
   * KVM_MEM_LOG_DIRTY_PAGES the guest (or KVM for it) wrote since the last call, and clears the
   * log. One bit per page, LSB first in 64-bit words: `bitmap` needs ceil(pages / 64) * 8 bytes.
   */
  getDirtyLog(slot: number, bitmap: Uint8Array): void {
    this.ioctl(ioctl.KVM_GET_DIRTY_LOG, kvm_dirty_log.encode({ slot, padding1: 0, dirty_bitmap: this.native.addressOf(bitmap) }));
  }

  setTssAddr(address: number): void {
    this.ioctl(ioctl.KVM_SET_TSS_ADDR, address);
  }

  setIdentityMapAddr(address: number): void {
    const arg = new BigUint64Array([BigInt(address)]);
    this.ioctl(ioctl.KVM_SET_IDENTITY_MAP_ADDR, arg);
  }

  createIrqchip(): void {
    this.ioctl(ioctl.KVM_CREATE_IRQCHIP);
  }

  createPit2(flags = 0): void {
    this.ioctl(ioctl.KVM_CREATE_PIT2, kvm_pit_config.encode({ flags, pad: new Array(15).fill(0) }));
  }

  /** Drives an interrupt line of the in-kernel PIC/IOAPIC. */
  irqLine(irq: number, level: boolean): void {
    this.ioctl(ioctl.KVM_IRQ_LINE, kvm_irq_level.encode({ irq, level: level ? 1 : 0 }));
  }

  irqfd(fd: number, gsi: number, flags = 0): void {
    this.ioctl(ioctl.KVM_IRQFD, kvm_irqfd.encode({ fd, gsi, flags, resamplefd: 0, pad: new Uint8Array(16) }));
  }

  ioeventfd(fd: number, address: bigint, length: number, flags: number, datamatch = 0n): void {
    this.ioctl(ioctl.KVM_IOEVENTFD, kvm_ioeventfd.encode({ datamatch, addr: address, len: length, fd, flags, pad: new Uint8Array(36) }));
  }

  /**
   * KVM_REGISTER_COALESCED_MMIO with pio set: guest writes to these ports no longer exit; KVM
   * queues them in the coalesced ring (coalesced-ring.ts) for the VMM to replay at its next exit.
   */
  registerCoalescedPio(port: number, size: number): void {
    this.ioctl(ioctl.KVM_REGISTER_COALESCED_MMIO, kvm_coalesced_mmio_zone.encode({ addr: BigInt(port), size, pio: 1 }));
  }

  createVcpu(id: number): VcpuFd {
    return new VcpuFd(this.ioctl(ioctl.KVM_CREATE_VCPU, id), id, this.vcpuMmapSize);
  }

  /** KVM_CHECK_EXTENSION asked of this VM, whose answer may differ from /dev/kvm's (KVM_CAP_CHECK_EXTENSION_VM). */
  checkExtension(capability: number): number {
    return this.ioctl(ioctl.KVM_CHECK_EXTENSION, capability);
  }

  /**
   * How many bytes of XSAVE state this VM's vCPUs exchange: KVM_SET_XSAVE reads that many, so a
   * shorter buffer would let the kernel read past it. 4096 unless KVM_CAP_XSAVE2 says more.
   */
  xsaveSize(): number {
    return Math.max(this.checkExtension(ioctl.KVM_CAP.KVM_CAP_XSAVE2), kvm_xsave.size);
  }

  /** One in-kernel interrupt controller's state (chipId: KVM_IRQCHIP.*). */
  getIrqchip(chipId: number): KvmIrqchip {
    return this.ioctlStruct(ioctl.KVM_GET_IRQCHIP, kvm_irqchip, { ...kvm_irqchip.zero(), chip_id: chipId });
  }

  /** Loads the controller named by chip.chip_id. */
  setIrqchip(chip: KvmIrqchip): void {
    this.ioctl(ioctl.KVM_SET_IRQCHIP, kvm_irqchip.encode(chip));
  }

  getPit2(): KvmPitState2 {
    return this.ioctlStruct(ioctl.KVM_GET_PIT2, kvm_pit_state2);
  }

  /** Each channel starts counting again from its count; count_load_time is the kernel's to set. */
  setPit2(state: KvmPitState2): void {
    this.ioctl(ioctl.KVM_SET_PIT2, kvm_pit_state2.encode(state));
  }

  /** The guest's kvmclock now, in ns; with KVM_CLOCK_REALTIME / _HOST_TSC, the host's time at that instant. */
  getClock(): KvmClockData {
    return this.ioctlStruct(ioctl.KVM_GET_CLOCK, kvm_clock_data);
  }

  /** Sets kvmclock to data.clock; with KVM_CLOCK_REALTIME, plus the wall-clock time since data.realtime. */
  setClock(data: KvmClockData): void {
    this.ioctl(ioctl.KVM_SET_CLOCK, kvm_clock_data.encode(data));
  }
}

export class VcpuFd extends Fd {
  readonly id: number;
  readonly mmapSize: number;
  #run: KvmRun | undefined;
  /**
   * KVM_RUN on this vCPU's fd, bound at the first run: the exit path then calls it with no getter
   * and no argument to convert (see native/kvm-run.cc). Dropped at close, so that a run after it
   * throws CLOSED from `fd`, as every other ioctl does.
   */
  #enterGuest: (() => number) | undefined;

  constructor(fd: number, id: number, mmapSize: number) {
    super(fd);
    this.id = id;
    this.mmapSize = mmapSize;
  }

  /** Wraps a vCPU fd created elsewhere (a worker receives the number from the main thread). */
  static fromFd(fd: number, id: number, mmapSize: number): VcpuFd {
    return new VcpuFd(fd, id, mmapSize);
  }

  /** The shared kvm_run page, mapped on first use. */
  get kvmRun(): KvmRun {
    if (!this.#run) {
      const address = this.native.mmap(this.mmapSize, PROT_READ | PROT_WRITE, MAP_SHARED, this.fd, 0);
      if (typeof address === 'number') throw new KvmError('mmap(kvm_run)', -address);
      this.#run = new KvmRun(this.native.arrayBuffer(address, this.mmapSize), address);
    }
    return this.#run;
  }

  override close(): void {
    if (this.#run) {
      this.native.munmap(this.#run.address, this.mmapSize);
      this.#run = undefined;
    }
    this.#enterGuest = undefined;
    super.close();
  }

  /** One KVM_RUN. Returns 0, or -EINTR when a signal (a kick) interrupted it; throws otherwise. */
  run(): number {
    // Called as a plain function: called as a method, with the VcpuFd as receiver, it measured
    // ~20 ns dearer.
    const enterGuest = this.#enterGuest ?? this.#bind();
    const rc = enterGuest();
    if (rc < 0 && rc !== -4 /* EINTR */ && rc !== -11 /* EAGAIN */) check(rc, ioctl.KVM_RUN);
    return rc;
  }

  #bind(): () => number {
    const fd = this.fd;
    const bound = this.native.bindKvmRun(fd);
    if (typeof bound === 'number') throw new KvmError('KVM_RUN', -bound, `vCPU fd ${fd}`);
    this.#enterGuest = bound;
    return bound;
  }

  getRegs(): KvmRegs {
    return this.ioctlStruct(ioctl.KVM_GET_REGS, kvm_regs);
  }

  setRegs(regs: KvmRegs): void {
    this.ioctl(ioctl.KVM_SET_REGS, kvm_regs.encode(regs));
  }

  getSregs(): KvmSregs {
    return this.ioctlStruct(ioctl.KVM_GET_SREGS, kvm_sregs);
  }

  setSregs(sregs: KvmSregs): void {
    this.ioctl(ioctl.KVM_SET_SREGS, kvm_sregs.encode(sregs));
  }

  getFpu(): KvmFpu {
    return this.ioctlStruct(ioctl.KVM_GET_FPU, kvm_fpu);
  }

  setFpu(fpu: KvmFpu): void {
    this.ioctl(ioctl.KVM_SET_FPU, kvm_fpu.encode(fpu));
  }

  setCpuid2(entries: readonly KvmCpuidEntry2[]): void {
    this.ioctl(ioctl.KVM_SET_CPUID2, encodeFlexibleArray(kvm_cpuid2_header.size, kvm_cpuid_entry2, entries));
  }

  getMsrs(indices: readonly number[]): KvmMsrEntry[] {
    const buffer = encodeFlexibleArray(kvm_msrs_header.size, kvm_msr_entry,
      indices.map((index) => ({ index, reserved: 0, data: 0n })));
    const n = this.ioctl(ioctl.KVM_GET_MSRS, buffer);
    const view = new DataView(buffer.buffer);
    return Array.from({ length: n }, (_, i) => kvm_msr_entry.read(view, kvm_msrs_header.size + i * kvm_msr_entry.size));
  }

  /** Sets MSRs; KVM stops at the first one it refuses, which the error names. */
  setMsrs(entries: readonly KvmMsrEntry[]): void {
    const n = this.ioctl(ioctl.KVM_SET_MSRS, encodeFlexibleArray(kvm_msrs_header.size, kvm_msr_entry, entries));
    if (n !== entries.length) {
      const refused = entries[n];
      throw new KvmError('KVM_SET_MSRS', 22 /* EINVAL */, `MSR 0x${refused?.index.toString(16)} refused`);
    }
  }

  getLapic(): Uint8Array {
    return this.ioctlStruct(ioctl.KVM_GET_LAPIC, kvm_lapic_state).regs;
  }

  setLapic(regs: Uint8Array): void {
    this.ioctl(ioctl.KVM_SET_LAPIC, kvm_lapic_state.encode({ regs }));
  }

  getMpState(): number {
    return this.ioctlStruct(ioctl.KVM_GET_MP_STATE, kvm_mp_state).mp_state;
  }

  setMpState(mpState: number): void {
    this.ioctl(ioctl.KVM_SET_MP_STATE, kvm_mp_state.encode({ mp_state: mpState }));
  }

  /** The CPUID entries this vCPU was given (KVM_SET_CPUID2). */
  getCpuid2(): KvmCpuidEntry2[] {
    return readFlexibleArray(
      (buffer) => this.native.ioctl(this.fd, ioctl.KVM_GET_CPUID2, buffer),
      'KVM_GET_CPUID2', kvm_cpuid2_header.size, kvm_cpuid_entry2,
    );
  }

  /** The 4096-byte XSAVE image (legacy x87/SSE area, header, extended components). */
  getXsave(): Uint8Array {
    return this.ioctlStruct(ioctl.KVM_GET_XSAVE, kvm_xsave).region;
  }

  /** The XSAVE image when it may exceed 4096 bytes; `size` comes from VmFd.xsaveSize(). */
  getXsave2(size: number): Uint8Array {
    if (!Number.isInteger(size) || size < kvm_xsave.size || size % 4 !== 0) {
      throw new RangeError(`KVM_GET_XSAVE2 needs a size of at least ${kvm_xsave.size} bytes, a multiple of 4 (got ${size})`);
    }
    const buffer = new Uint8Array(size);
    this.ioctl(ioctl.KVM_GET_XSAVE2, buffer);
    return buffer;
  }

  /**
   * Loads an XSAVE image. KVM reads VmFd.xsaveSize() bytes whatever the length here, so the
   * caller must pass an image of that size (vcpu-state.ts checks it).
   */
  setXsave(image: Uint8Array): void {
    if (image.length < kvm_xsave.size || image.length % 4 !== 0) {
      throw new RangeError(`KVM_SET_XSAVE needs at least ${kvm_xsave.size} bytes, a multiple of 4 (got ${image.length})`);
    }
    this.ioctl(ioctl.KVM_SET_XSAVE, image);
  }

  /** The extended control registers (XCR0). */
  getXcrs(): KvmXcrs {
    return this.ioctlStruct(ioctl.KVM_GET_XCRS, kvm_xcrs);
  }

  setXcrs(xcrs: KvmXcrs): void {
    this.ioctl(ioctl.KVM_SET_XCRS, kvm_xcrs.encode(xcrs));
  }

  /** Pending or injected exception, interrupt and NMI, interrupt shadow, SMM, SIPI vector. */
  getVcpuEvents(): KvmVcpuEvents {
    return this.ioctlStruct(ioctl.KVM_GET_VCPU_EVENTS, kvm_vcpu_events);
  }

  /** Applies the optional members only where events.flags says so (KVM_VCPUEVENT.*). */
  setVcpuEvents(events: KvmVcpuEvents): void {
    this.ioctl(ioctl.KVM_SET_VCPU_EVENTS, kvm_vcpu_events.encode(events));
  }

  getDebugregs(): KvmDebugregs {
    return this.ioctlStruct(ioctl.KVM_GET_DEBUGREGS, kvm_debugregs);
  }

  setDebugregs(debugregs: KvmDebugregs): void {
    this.ioctl(ioctl.KVM_SET_DEBUGREGS, kvm_debugregs.encode(debugregs));
  }

  /**
   * Tells the guest, through its kvmclock page, that the host paused it, so its soft-lockup
   * watchdog does not fire on resume. Returns false when the guest has not enabled kvmclock
   * (EINVAL): there is no one to tell.
   */
  kvmclockCtrl(): boolean {
    const rc = this.native.ioctl(this.fd, ioctl.KVM_KVMCLOCK_CTRL, 0);
    if (rc === -22 /* EINVAL */) return false;
    check(rc, ioctl.KVM_KVMCLOCK_CTRL);
    return true;
  }

  /** Translates a guest linear address through the vCPU's current page tables. */
  translate(linearAddress: bigint): KvmTranslation {
    return this.ioctlStruct(ioctl.KVM_TRANSLATE, kvm_translation, {
      ...kvm_translation.zero(), linear_address: linearAddress,
    });
  }
}
