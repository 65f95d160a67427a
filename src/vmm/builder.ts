// Config in, a KVM VM ready to run out: guest memory with the kernel and ACPI tables, devices,
// then the KVM side (memory slots, interrupt controllers, vCPUs with CPUID, MSRs and the boot
// CPU's entry state). Everything it opened is released if a later step fails, so a bad kernel
// leaves no VM behind.

import { Kvm, VcpuFd, VmFd } from '../kvm/kvm.js';
import { KVM_CAP } from '../kvm/ioctls.js';
import { GuestMemory } from '../memory/guest-memory.js';
import { KVM_IDENTITY_MAP_START, KVM_TSS_START, ramLayout } from '../arch/x86/layout.js';
import { vcpuCpuid } from '../arch/x86/cpuid.js';
import { bootMsrs } from '../arch/x86/msrs.js';
import { bootLapic, setupBootCpu } from '../arch/x86/boot-cpu.js';
import { loadKernel, openUserFile, type LoadedKernel, type UserFile } from '../boot/loader.js';
import { isBzImage } from '../boot/bzimage.js';
import { VIRTIO_MMIO_SIZE } from '../devices/virtio/mmio-transport.js';
import { writeAcpiTables } from '../arch/x86/acpi.js';
import { TsvmmError } from '../errors.js';
import type { ResolvedVmConfig } from './config.js';
import { attachVirtio, openVirtio, type VirtioSetup } from './virtio-setup.js';
import { COM1, UART_THR } from '../devices/serial-16550.js';
import { startupMark } from '../meta/startup-trace.js';

export interface BuiltVm {
  kvm: Kvm;
  vm: VmFd;
  memory: GuestMemory;
  vcpus: VcpuFd[];
  kernel: LoadedKernel;
  virtio: VirtioSetup;
  /** Where the coalesced ring lies in a vCPU's mapping (in pages), when the UART's writes go there. */
  coalescedRingPage: number | undefined;
  /**
   * Waits until guest memory is registered with KVM (a boot's is, on threads of their own, while
   * the rest is built); throws if that failed. Before any vCPU runs; again is a no-op.
   */
  memoryReady(): void;
  release(): void;
}

const REQUIRED_CAPS = [
  ['KVM_CAP_IRQCHIP', KVM_CAP.KVM_CAP_IRQCHIP],
  ['KVM_CAP_USER_MEMORY', KVM_CAP.KVM_CAP_USER_MEMORY],
  ['KVM_CAP_SET_TSS_ADDR', KVM_CAP.KVM_CAP_SET_TSS_ADDR],
  ['KVM_CAP_PIT2', KVM_CAP.KVM_CAP_PIT2],
  ['KVM_CAP_IMMEDIATE_EXIT', KVM_CAP.KVM_CAP_IMMEDIATE_EXIT],
  ['KVM_CAP_EXT_CPUID', KVM_CAP.KVM_CAP_EXT_CPUID],
] as const;

/** Releases, in reverse order, what a build acquired; for the error path and for Vm's end. */
class Resources {
  readonly #cleanups: (() => void)[] = [];

  add<T>(resource: T, cleanup: (r: T) => void): T {
    this.#cleanups.push(() => cleanup(resource));
    return resource;
  }

  release = (): void => {
    for (const c of this.#cleanups.splice(0).reverse()) {
      try { c(); } catch { /* already released */ }
    }
  };
}

export function buildVm(config: ResolvedVmConfig): BuiltVm {
  // Read the user's files before opening anything, so their errors come first and cheaply.
  const kernelFile = openUserFile(config.kernel, 'kernel', config.memory);
  let initrdFile: UserFile | undefined;
  try {
    initrdFile = config.initrd ? openUserFile(config.initrd, 'initrd', config.memory) : undefined;
  } catch (error) {
    kernelFile.release();
    throw error;
  }
  const releaseFiles = () => { kernelFile.release(); initrdFile?.release(); };
  const kernelImage = kernelFile.data;
  const initrdImage = initrdFile?.data;
  const resources = new Resources();
  try {
    // Everything that depends only on the user's input comes first: a bad kernel, initrd, disk
    // or command line is refused before /dev/kvm is opened.
    const memory = resources.add(GuestMemory.allocate(ramLayout(config.memory)), (m) => m.close());
    startupMark('memory');
    const virtio = resources.add(openVirtio(config.virtio), (v) => v.release());
    const acpiRsdp = writeAcpiTables(memory, config.cpus, virtio.slots.map(({ base, irq }) => ({ base, size: VIRTIO_MMIO_SIZE, irq })));
    // The DSDT always describes the virtio devices; the command-line form is for kernels that read
    // no ACPI (tsvmm's test guests, Firecracker-style vmlinux). A distribution bzImage that also
    // has CONFIG_VIRTIO_MMIO_CMDLINE_DEVICES would probe each device twice, so it gets the DSDT only.
    const virtioOnCmdline = config.virtio.cmdline ?? !isBzImage(kernelImage);
    const kernel = loadKernel(memory, {
      acpiRsdp,
      kernelPath: config.kernel, kernel: kernelImage,
      initrdPath: config.initrd, initrd: initrdImage,
      cmdline: [config.cmdline, virtioOnCmdline ? virtio.cmdline : ''].filter(Boolean).join(' '),
    });
    releaseFiles();
    startupMark('kernel');
    const { kvm, vm, vcpus, coalescedRingPage, memoryReady } = createKvmVm(config, memory, virtio, resources, true);
    startupMark('kvm-vm');
    const supported = kvm.supportedCpuid();
    const tscDeadline = kvm.checkExtension(KVM_CAP.KVM_CAP_TSC_DEADLINE_TIMER) > 0;
    for (const vcpu of vcpus) {
      vcpu.setCpuid2(vcpuCpuid(supported, { apicId: vcpu.id, cpuCount: config.cpus, tscDeadline }));
      vcpu.setMsrs(bootMsrs());
      bootLapic(vcpu);
    }
    // Only the boot CPU starts; the others wait for INIT/SIPI in the in-kernel LAPIC.
    setupBootCpu(vcpus[0]!, memory, kernel.cpu);
    startupMark('vcpus');
    return { kvm, vm, memory, vcpus, kernel, virtio, coalescedRingPage, memoryReady, release: resources.release };
  } catch (error) {
    releaseFiles();
    resources.release();
    throw error;
  }
}

/**
 * A VM that continues from a snapshot: `memory` already holds the guest (mapped from the file)
 * and `restore` puts the saved KVM state into the new VM and vCPUs in place of a boot.
 */
export function buildRestoredVm(
  config: ResolvedVmConfig,
  memory: GuestMemory,
  restore: (kvm: Kvm, vm: VmFd, vcpus: VcpuFd[]) => void,
): BuiltVm {
  const resources = new Resources();
  resources.add(memory, (m) => m.close());
  try {
    const virtio = resources.add(openVirtio(config.virtio), (v) => v.release());
    const { kvm, vm, vcpus, coalescedRingPage, memoryReady } = createKvmVm(config, memory, virtio, resources, false);
    restore(kvm, vm, vcpus);
    return {
      kvm, vm, memory, vcpus, kernel: { protocol: 'snapshot', cpu: { mode: 'long64', entry: 0 } }, virtio,
      coalescedRingPage, memoryReady, release: resources.release,
    };
  } catch (error) {
    resources.release();
    throw error;
  }
}

/**
 * Queues the guest's writes to the UART's transmit register in KVM's coalesced ring instead of
 * exiting for each (kvm/coalesced-ring.ts): a console byte then costs one exit, the status read
 * before it, not two. Nested under a software CPU, where an exit to the VMM costs most of a
 * millisecond, that is a third of a stock kernel's boot with its whole banner. Returns the ring's
 * page in the vCPU mapping, or undefined where KVM cannot (no KVM_CAP_COALESCED_PIO).
 */
function coalesceUartWrites(kvm: Kvm, vm: VmFd): number | undefined {
  const page = kvm.checkExtension(KVM_CAP.KVM_CAP_COALESCED_MMIO);
  if (page <= 0 || vm.checkExtension(KVM_CAP.KVM_CAP_COALESCED_PIO) <= 0) return undefined;
  vm.registerCoalescedPio(COM1.port + UART_THR, 1);
  return page;
}

/**
 * The KVM side that boots and restores share: the VM, its interrupt controllers, slots, vCPUs.
 * With `background`, the memory slots are registered on threads of their own (a slot's first
 * registration is ~5 ms of waiting here): the caller joins with memoryReady before any vCPU runs.
 * A restore registers them at once, since restoring its state and its dirty log need them.
 */
function createKvmVm(config: ResolvedVmConfig, memory: GuestMemory, virtio: VirtioSetup, resources: Resources, background: boolean) {
  const kvm = resources.add(Kvm.open(), (k) => k.close());
  for (const [name, cap] of REQUIRED_CAPS) {
    if (!kvm.checkExtension(cap)) throw new TsvmmError('KVM_UNSUPPORTED', `this KVM lacks ${name}, which tsvmm needs`);
  }
  const maxVcpus = kvm.maxVcpus();
  if (config.cpus > maxVcpus) {
    throw new TsvmmError('BAD_CONFIG', `--cpus ${config.cpus}: KVM allows at most ${maxVcpus} vCPUs per VM here`);
  }
  const vm = resources.add(kvm.createVm(), (v) => v.close());
  vm.setIdentityMapAddr(KVM_IDENTITY_MAP_START);
  vm.setTssAddr(KVM_TSS_START);
  vm.createIrqchip();
  vm.createPit2();
  // What takes the VM's slots lock (devices on its I/O buses: ioeventfds, the coalesced ring) comes
  // first: a memory slot's registration holds that lock while it waits.
  attachVirtio(vm, virtio);
  const coalescedRingPage = coalesceUartWrites(kvm, vm);
  let memoryReady = () => {};
  if (background) memoryReady = resources.add(memory.registerInBackground(vm), (join) => join());
  else memory.registerWith(vm);
  const vcpus = Array.from({ length: config.cpus }, (_, id) => resources.add(vm.createVcpu(id), (v) => v.close()));
  return { kvm, vm, vcpus, coalescedRingPage, memoryReady };
}
