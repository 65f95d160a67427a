// What a VM snapshot holds, in the sections of the snapshot format (src/snapshot/format.ts):
// the VM's configuration in the manifest; each vCPU's and the VM's KVM state as raw kernel
// structures; the devices' state as JSON; guest RAM as mappable memory sections. And the way
// back: a VM built from a snapshot in a fresh process, its memory mapped from the file.

import type { Kvm, VcpuFd, VmFd } from '../kvm/kvm.js';
import { restoreVcpu, saveVcpu, vcpuMsrIndices, type VcpuSnapshot } from '../kvm/vcpu-state.js';
import { restoreVm, saveVm, type VmSnapshot } from '../kvm/vm-state.js';
import { GuestMemory, type MemoryExtent } from '../memory/guest-memory.js';
import { openSnapshot, writeSnapshot, type Snapshot, type WriteResult } from '../snapshot/index.js';
import type { VirtioRunnerState } from '../devices/virtio/device.js';
import { TsvmmError } from '../errors.js';
import type { LegacyDeviceState } from './legacy-devices.js';
import type { ResolvedVmConfig } from './config.js';

/** The device state a restored VM starts from. */
export interface RestoredDevices {
  legacy: LegacyDeviceState;
  virtio: { registers: Uint8Array; io: VirtioRunnerState | undefined }[];
}

/** What the manifest's `vm` field holds. */
interface VmManifest {
  config: ResolvedVmConfig;
  xsaveSize: number;
}

const VCPU_BLOBS = ['cpuid', 'regs', 'sregs', 'xsave', 'xcrs', 'debugregs', 'lapic', 'msrs', 'vcpuEvents'] as const;
const VM_BLOBS = ['picMaster', 'picSlave', 'ioapic', 'pit2', 'clock'] as const;

export interface SnapshotParts {
  config: ResolvedVmConfig;
  kvm: Kvm;
  vm: VmFd;
  vcpus: readonly VcpuFd[];
  memory: GuestMemory;
  devices: RestoredDevices;
}

export interface SnapshotOptions {
  onProgress?(done: number, total: number): void;
}

/** Writes a snapshot of a paused VM (all vCPUs out of KVM_RUN, the I/O thread idle). */
export async function writeVmSnapshot(path: string, parts: SnapshotParts, options: SnapshotOptions = {}): Promise<WriteResult> {
  const xsaveSize = parts.vm.xsaveSize();
  const states = new Map<string, Uint8Array>();
  const devices = new Map<string, unknown>();
  parts.vcpus.forEach((vcpu) => {
    const s = saveVcpu(vcpu, vcpuMsrIndices(parts.kvm, vcpu), { xsaveSize });
    for (const blob of VCPU_BLOBS) states.set(`vcpu${vcpu.id}/${blob}`, s[blob]);
    devices.set(`vcpu${vcpu.id}`, { id: s.id, mpState: s.mpState, skippedMsrs: s.skippedMsrs });
  });
  const vmState = saveVm(parts.vm);
  for (const blob of VM_BLOBS) states.set(`vm/${blob}`, vmState[blob]);
  devices.set('legacy', parts.devices.legacy);
  parts.devices.virtio.forEach((d, i) => {
    states.set(`virtio${i}/registers`, d.registers);
    devices.set(`virtio${i}`, d.io ?? null);
  });
  const manifest: VmManifest = { config: parts.config, xsaveSize };
  return writeSnapshot(path, {
    vm: manifest as never,
    vcpus: parts.vcpus.length,
    states,
    devices: devices as never,
    memory: parts.memory.regions.map((r, i) => ({ name: `ram${i}`, guestAddress: r.start, size: r.size, source: r.bytes })),
  }, { onProgress: options.onProgress && ((p) => options.onProgress!(p.bytesDone, p.bytesTotal)) });
}

/** A snapshot opened for restoring: its configuration, memory mapped in, and its state. */
export interface OpenedVmSnapshot {
  config: ResolvedVmConfig;
  memory: GuestMemory;
  devices: RestoredDevices;
  /** Puts the saved KVM state into a freshly created VM and its vCPUs. */
  restoreKvm(vm: VmFd, vcpus: readonly VcpuFd[]): void;
}

export async function openVmSnapshot(path: string): Promise<OpenedVmSnapshot> {
  const snapshot = await openSnapshot(path);
  try {
    const manifest = snapshot.manifest.vm as unknown as VmManifest;
    if (!manifest || typeof manifest !== 'object' || !manifest.config || typeof manifest.xsaveSize !== 'number') {
      throw new TsvmmError('BAD_SNAPSHOT', `${path}: not a snapshot of a tsvmm VM (its manifest has no VM configuration)`);
    }
    const config = manifest.config;
    const layout = snapshot.regions.map((r) => ({ start: r.guestAddress, size: r.size }));
    const extents: MemoryExtent[] = snapshot.regions.flatMap((r) => snapshot.memoryExtents(r.name).map((e) => ({
      fd: e.fd, fileOffset: e.fileOffset, guestAddress: r.guestAddress + e.guestOffset, length: e.length,
    })));
    // The mappings keep the file's pages reachable after its descriptors are closed.
    const memory = GuestMemory.mapFiles(layout, extents);
    const state = (name: string) => snapshot.state(name);
    const vcpuSnapshots = Array.from({ length: config.cpus }, (_, id): VcpuSnapshot => {
      const meta = snapshot.device(`vcpu${id}`) as { id: number; mpState: number; skippedMsrs: number[] };
      const blobs = Object.fromEntries(VCPU_BLOBS.map((b) => [b, state(`vcpu${id}/${b}`)]));
      return { ...(blobs as Record<(typeof VCPU_BLOBS)[number], Uint8Array>), id: meta.id, mpState: meta.mpState, skippedMsrs: meta.skippedMsrs };
    });
    const vmSnapshot = Object.fromEntries(VM_BLOBS.map((b) => [b, state(`vm/${b}`)])) as unknown as VmSnapshot;
    const devices: RestoredDevices = {
      legacy: snapshot.device('legacy') as unknown as LegacyDeviceState,
      virtio: virtioCount(snapshot).map((i) => ({
        registers: state(`virtio${i}/registers`),
        io: (snapshot.device(`virtio${i}`) as unknown as VirtioRunnerState | null) ?? undefined,
      })),
    };
    return {
      config, memory, devices,
      restoreKvm(vm, vcpus) {
        if (vm.xsaveSize() !== manifest.xsaveSize) {
          throw new TsvmmError('BAD_SNAPSHOT', `${path}: taken on a CPU with ${manifest.xsaveSize}-byte XSAVE state, this one has ${vm.xsaveSize()}`);
        }
        vcpus.forEach((vcpu, i) => restoreVcpu(vcpu, vcpuSnapshots[i]!, { xsaveSize: manifest.xsaveSize }));
        // The interrupt controllers and PIT last, just before the vCPUs run (see vm-state.ts).
        restoreVm(vm, vmSnapshot);
      },
    };
  } finally {
    snapshot.close();
  }
}

function virtioCount(snapshot: Snapshot): number[] {
  return snapshot.deviceNames.filter((n) => /^virtio\d+$/.test(n)).map((n) => Number(n.slice(6))).sort((a, b) => a - b);
}
