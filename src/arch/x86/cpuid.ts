// The CPUID a vCPU sees: what KVM supports on this host, adjusted per vCPU the way a physical
// package would present it (APIC ids, logical CPU count), marked as a virtual machine, with the
// LAPIC's TSC-deadline mode when KVM emulates it and a brand string when the host gives none.

import type { KvmCpuidEntry2 } from '../../kvm/structs.js';

const LEAF_FEATURES = 0x1;
const LEAF_CACHE_PARAMETERS = 0x4;
const LEAF_PMU = 0xa;
const LEAF_TOPOLOGY = 0xb;
const LEAF_TOPOLOGY_V2 = 0x1f;

const LEAF_EXTENDED_MAX = 0x80000000;
const LEAF_ADDRESS_SIZES = 0x80000008;
const LEAF_BRAND_FIRST = 0x80000002;
const LEAF_BRAND_LAST = 0x80000004;

/** Shown by the guest (/proc/cpuinfo "model name") when the host's CPUID has no brand string. */
export const DEFAULT_BRAND = 'tsvmm virtual CPU';

const ECX_TSC_DEADLINE = 1 << 24;
const ECX_HYPERVISOR = 1 << 31;
const EDX_HTT = 1 << 28;
const LEVEL_TYPE_SMT = 1;
const LEVEL_TYPE_CORE = 2;

export interface CpuidOptions {
  /** This vCPU's APIC id (its index). */
  apicId: number;
  /** vCPUs in the VM, presented as the cores of one package, one thread each. */
  cpuCount: number;
  /**
   * KVM_CAP_TSC_DEADLINE_TIMER: the in-kernel LAPIC emulates TSC-deadline mode. Some host kernels
   * leave the bit out of KVM_GET_SUPPORTED_CPUID though; without it Linux calibrates the LAPIC
   * timer against other clocks and, in a slow nested guest, often disables it.
   */
  tscDeadline?: boolean;
}

/** Bits of the APIC id that number the cores of a package. */
function coreIdBits(cpuCount: number): number {
  return Math.ceil(Math.log2(Math.max(cpuCount, 1)));
}

export function vcpuCpuid(supported: readonly KvmCpuidEntry2[], { apicId, cpuCount, tscDeadline = false }: CpuidOptions): KvmCpuidEntry2[] {
  const entries = supported.map((source) => {
    const e = { ...source, padding: [...source.padding] };
    switch (e.function) {
      case LEAF_FEATURES:
        e.ebx = ((e.ebx & 0x0000ffff) | ((cpuCount & 0xff) << 16) | ((apicId & 0xff) << 24)) >>> 0;
        e.ecx = (e.ecx | ECX_HYPERVISOR | (tscDeadline ? ECX_TSC_DEADLINE : 0)) >>> 0;
        e.edx = (cpuCount > 1 ? e.edx | EDX_HTT : e.edx & ~EDX_HTT) >>> 0;
        break;
      case LEAF_CACHE_PARAMETERS:
        // Cores per package - 1 in bits 31-26; each cache is shared by one thread (bits 25-14 = 0).
        if (e.eax & 0x1f) e.eax = ((e.eax & 0x3fff) | (((cpuCount - 1) & 0x3f) << 26)) >>> 0;
        break;
      case LEAF_PMU:
        // No virtual PMU: a guest that finds none does not program performance counters.
        e.eax = e.ebx = e.ecx = e.edx = 0;
        break;
      case LEAF_TOPOLOGY:
      case LEAF_TOPOLOGY_V2:
        Object.assign(e, topologyLevel(e.index, apicId, cpuCount));
        break;
      case LEAF_ADDRESS_SIZES:
        // AMD's core count: ECX bits 7-0 are cores per package - 1 and bits 15-12 the APIC id bits
        // that number them. The host's values (its own package) would split our vCPUs into packages.
        e.ecx = ((e.ecx & ~0xf0ff) | (coreIdBits(cpuCount) << 12) | ((cpuCount - 1) & 0xff)) >>> 0;
        break;
    }
    return e;
  });
  return withBrandString(entries);
}

/** The brand string leaves 0x80000002-4 (48 ASCII bytes, NUL-padded), filled in if the host left them empty. */
function withBrandString(entries: KvmCpuidEntry2[]): KvmCpuidEntry2[] {
  const brand = entries.filter((e) => e.function >= LEAF_BRAND_FIRST && e.function <= LEAF_BRAND_LAST);
  if (brand.length === 3 && brand.some((e) => e.eax || e.ebx || e.ecx || e.edx)) return entries;
  const max = entries.find((e) => e.function === LEAF_EXTENDED_MAX);
  if (!max) return entries; // no extended leaves at all: nothing to extend
  if (max.eax < LEAF_BRAND_LAST) max.eax = LEAF_BRAND_LAST;
  const text = Buffer.alloc(48);
  text.write(DEFAULT_BRAND, 'latin1');
  const others = entries.filter((e) => e.function < LEAF_BRAND_FIRST || e.function > LEAF_BRAND_LAST);
  const leaves = [0, 1, 2].map((i): KvmCpuidEntry2 => {
    const at = i * 16;
    return {
      function: LEAF_BRAND_FIRST + i, index: 0, flags: 0,
      eax: text.readUInt32LE(at), ebx: text.readUInt32LE(at + 4), ecx: text.readUInt32LE(at + 8), edx: text.readUInt32LE(at + 12),
      padding: [0, 0, 0],
    };
  });
  return [...others, ...leaves];
}

/** Extended topology enumeration, one sub-leaf per level: SMT (1 thread), then core (N cores). */
function topologyLevel(level: number, apicId: number, cpuCount: number): Pick<KvmCpuidEntry2, 'eax' | 'ebx' | 'ecx' | 'edx'> {
  const edx = apicId >>> 0;
  if (level === 0) return { eax: 0, ebx: 1, ecx: (LEVEL_TYPE_SMT << 8) | 0, edx };
  if (level === 1) return { eax: coreIdBits(cpuCount), ebx: cpuCount, ecx: (LEVEL_TYPE_CORE << 8) | 1, edx };
  return { eax: 0, ebx: 0, ecx: level & 0xff, edx }; // no further levels
}
