// The CPUID a vCPU sees: what KVM supports on this host, adjusted per vCPU the way a physical
// package would present it (APIC ids, logical CPU count) and marked as a virtual machine.

import type { KvmCpuidEntry2 } from '../../kvm/structs.js';

const LEAF_FEATURES = 0x1;
const LEAF_PMU = 0xa;
const LEAF_TOPOLOGY = 0xb;
const LEAF_TOPOLOGY_V2 = 0x1f;

const ECX_HYPERVISOR = 1 << 31;
const EDX_HTT = 1 << 28;

export interface CpuidOptions {
  /** This vCPU's APIC id (its index). */
  apicId: number;
  /** vCPUs in the VM, reported as logical processors of one package. */
  cpuCount: number;
}

export function vcpuCpuid(supported: readonly KvmCpuidEntry2[], { apicId, cpuCount }: CpuidOptions): KvmCpuidEntry2[] {
  return supported.map((source) => {
    const e = { ...source, padding: [...source.padding] };
    switch (e.function) {
      case LEAF_FEATURES:
        e.ebx = ((e.ebx & 0x0000ffff) | ((cpuCount & 0xff) << 16) | ((apicId & 0xff) << 24)) >>> 0;
        e.ecx = (e.ecx | ECX_HYPERVISOR) >>> 0;
        e.edx = (cpuCount > 1 ? e.edx | EDX_HTT : e.edx & ~EDX_HTT) >>> 0;
        break;
      case LEAF_PMU:
        // No virtual PMU: a guest that finds none does not program performance counters.
        e.eax = e.ebx = e.ecx = e.edx = 0;
        break;
      case LEAF_TOPOLOGY:
      case LEAF_TOPOLOGY_V2:
        e.edx = apicId >>> 0;
        break;
    }
    return e;
  });
}
