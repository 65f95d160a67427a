// tsvmm's library API: `import { Vm } from 'tsvmm'`.

export { Vm, VmError, type VmState, type VmEvents, type VmRunOptions } from './vmm/vm.js';
export type { VmConfig, ResolvedVmConfig } from './vmm/config.js';
export type { DiskConfig, NetConfig, VirtioConfig } from './vmm/virtio-setup.js';
export type { SnapshotOptions, RestoreOptions, DiskIdentity } from './vmm/snapshot.js';
export type { Counter } from './vmm/vcpu-control.js';
export type { WriteResult } from './snapshot/index.js';
export { SnapshotError, type SnapshotErrorCode } from './snapshot/format.js';
export { DEFAULT_CMDLINE, DEFAULT_KERNEL, GUESTS_DIR, parseSize } from './vmm/config.js';
export { describeOutcome, type VmOutcome, type ShutdownReason, type VmErrorCode } from './vmm/outcome.js';
export type { VcpuDump } from './vmm/diagnostics.js';
export type { TracedExit } from './vmm/exit-trace.js';
export { TsvmmError, isTsvmmError } from './errors.js';
export { Kvm, VmFd, VcpuFd, KvmError } from './kvm/kvm.js';
export { GuestMemory, GuestMemoryError } from './memory/guest-memory.js';
export { Container, ContainerError, describeContainerOutcome, exitStatus, type ContainerConfig, type ContainerLimits, type ContainerOutcome, type ContainerState, type ContainerEvents, type CgroupLimits } from './container/container.js';
