import { describe, expect, it } from 'vitest';
import { CODE64, DATA, gdtEntry, segmentFromGdt, TSS64 } from '../../src/arch/x86/gdt.js';
import { writeIdentityPageTables } from '../../src/arch/x86/page-tables.js';
import { DEFAULT_BRAND, vcpuCpuid } from '../../src/arch/x86/cpuid.js';
import { bootSregs, bootRegs } from '../../src/arch/x86/boot-cpu.js';
import { kvm_sregs, type KvmCpuidEntry2 } from '../../src/kvm/structs.js';
import { GuestMemory } from '../../src/memory/guest-memory.js';
import { BOOT_GDT_START, PML4_START } from '../../src/arch/x86/layout.js';

describe('GDT entries', () => {
  it('encode flags, base and limit as the CPU expects', () => {
    expect(gdtEntry(CODE64, 0, 0xfffff)).toBe(0x00af9b000000ffffn);
    expect(gdtEntry(DATA, 0, 0xfffff)).toBe(0x00cf93000000ffffn);
    expect(gdtEntry(TSS64, 0, 0xfffff)).toBe(0x008f8b000000ffffn);
    expect(gdtEntry(0x0093, 0x12345678, 0xabcde)).toBe(0x120a93345678bcden);
  });

  it('decode into the hidden segment state KVM wants', () => {
    const cs = segmentFromGdt(gdtEntry(CODE64, 0, 0xfffff), 1);
    expect(cs).toMatchObject({ selector: 8, type: 0xb, present: 1, dpl: 0, s: 1, l: 1, db: 0, g: 1, limit: 0xffffffff, base: 0n, unusable: 0 });
    const ds = segmentFromGdt(gdtEntry(DATA, 0x1000, 0xff), 2);
    expect(ds).toMatchObject({ selector: 16, type: 3, db: 1, l: 0, limit: 0xfffff, base: 0x1000n });
    expect(segmentFromGdt(0n, 0).unusable).toBe(1);
  });
});

/** Walks 4-level page tables like the MMU does, for 2 MiB pages. */
function translate(m: GuestMemory, cr3: bigint, linear: number): number | undefined {
  const idx = (shift: number) => Math.floor(linear / 2 ** shift) % 512;
  const pml4e = m.readU64(Number(cr3) + idx(39) * 8);
  if (!(pml4e & 1n)) return undefined;
  const pdpte = m.readU64(Number(pml4e & ~0xfffn) + idx(30) * 8);
  if (!(pdpte & 1n)) return undefined;
  const pde = m.readU64(Number(pdpte & ~0xfffn) + idx(21) * 8);
  if (!(pde & 1n) || !(pde & 0x80n)) return undefined;
  return Number(pde & ~0x1fffffn) + (linear % (2 * 1024 * 1024));
}

describe('identity page tables', () => {
  const m = GuestMemory.fromBuffers([{ start: 0, bytes: new Uint8Array(0x20000) }]);
  const cr3 = writeIdentityPageTables(m);

  it('map the first 4 GiB one to one, the PCI hole included', () => {
    expect(cr3).toBe(BigInt(PML4_START));
    for (const address of [0, 0x1000, 0x100000, 0x7fffffff, 0xc0000000, 0xfee00000, 0xffffffff]) {
      expect(translate(m, cr3, address)).toBe(address);
    }
    expect(translate(m, cr3, 0x100000000)).toBeUndefined();
  });
});

describe('boot CPU state', () => {
  const m = GuestMemory.fromBuffers([{ start: 0, bytes: new Uint8Array(0x20000) }]);

  it('32-bit protected mode for PVH: PE on, paging and long mode off, flat 32-bit segments', () => {
    const s = bootSregs(m, kvm_sregs.zero(), 'protected32');
    expect(s.cr0 & 1n).toBe(1n);
    expect(s.cr0 & (1n << 31n)).toBe(0n);
    expect(s.efer).toBe(0n);
    expect(s.cs).toMatchObject({ selector: 8, db: 1, l: 0, limit: 0xffffffff });
    expect(m.readU64(BOOT_GDT_START + 8)).toBe(0x00cf9b000000ffffn);
  });

  it('64-bit long mode at CPL 0: paging, PAE, LME and LMA on, L=1 code segment', () => {
    const s = bootSregs(m, kvm_sregs.zero(), 'long64');
    expect(s.cr0 & 0x80000001n).toBe(0x80000001n);
    expect(s.cr4 & 0x20n).toBe(0x20n);
    expect(s.efer & 0x500n).toBe(0x500n);
    expect(s.cr3).toBe(BigInt(PML4_START));
    expect(s.cs).toMatchObject({ selector: 8, l: 1, db: 0, dpl: 0 });
    const regs = bootRegs({ mode: 'long64', entry: 0x200000, registers: { rsi: 0x7000 } });
    expect(regs).toMatchObject({ rip: 0x200000n, rsi: 0x7000n, rflags: 2n });
  });
});

describe('CPUID per vCPU', () => {
  const entry = (fn: number, regs: Partial<KvmCpuidEntry2> = {}): KvmCpuidEntry2 => ({ function: fn, index: 0, flags: 0, eax: 0, ebx: 0, ecx: 0, edx: 0, padding: [0, 0, 0], ...regs });
  const supported = [entry(0, { eax: 0x1f }), entry(1, { ebx: 0xff00_0800, ecx: 0x1 }), entry(0xa, { eax: 0x7300_0000 }), entry(0xb, { edx: 7 })];

  it('sets the APIC id, CPU count and hypervisor bit, and hides the PMU', () => {
    const cpuid = vcpuCpuid(supported, { apicId: 3, cpuCount: 4 });
    const leaf = (fn: number) => cpuid.find((e) => e.function === fn)!;
    expect(leaf(1).ebx >>> 24).toBe(3);
    expect((leaf(1).ebx >>> 16) & 0xff).toBe(4);
    expect(leaf(1).ebx & 0xffff).toBe(0x0800);
    expect(leaf(1).ecx >>> 31).toBe(1);
    expect(leaf(1).ecx & 1).toBe(1);
    expect(leaf(0xa).eax).toBe(0);
    expect(leaf(0xb).edx).toBe(3);
    expect(supported[1]!.ebx).toBe(0xff00_0800); // the input is not modified
  });

  it('describes one package of N single-thread cores in leaves 4 and 0xB', () => {
    const withTopology = [
      ...supported.filter((e) => e.function !== 0xb),
      entry(4, { eax: 0x1c00_4121 }),
      entry(0xb, { index: 0, eax: 1, ebx: 2, ecx: 0x100 }), entry(0xb, { index: 1, eax: 5, ebx: 32, ecx: 0x201 }), entry(0xb, { index: 2 }),
    ];
    const cpuid = vcpuCpuid(withTopology, { apicId: 2, cpuCount: 3 });
    const sub = (fn: number, index: number) => cpuid.find((e) => e.function === fn && e.index === index)!;
    expect(sub(4, 0).eax >>> 26).toBe(2); // cores per package - 1
    expect(sub(4, 0).eax & 0x3fff).toBe(0x0121); // cache type and level untouched
    expect(sub(0xb, 0)).toMatchObject({ eax: 0, ebx: 1, ecx: 0x100, edx: 2 }); // SMT: 1 thread
    expect(sub(0xb, 1)).toMatchObject({ eax: 2, ebx: 3, ecx: 0x201, edx: 2 }); // core: 3 cores, 2 id bits
    expect(sub(0xb, 2)).toMatchObject({ eax: 0, ebx: 0, ecx: 2, edx: 2 }); // the end of the list
  });

  it('gives AMD\'s core count in leaf 0x80000008 (cores - 1, and the APIC id bits that number them)', () => {
    // As a 2-core host's KVM reports it: 40 physical address bits, NC = 1, ApicIdCoreIdSize = 1.
    const host = [...supported, entry(0x80000000, { eax: 0x80000008 }), entry(0x80000008, { eax: 0x3028, ecx: 0x1001 })];
    const leaf = (cpuCount: number) => vcpuCpuid(host, { apicId: 0, cpuCount }).find((e) => e.function === 0x80000008)!;
    expect(leaf(4)).toMatchObject({ eax: 0x3028, ecx: 0x2003 });
    expect(leaf(3).ecx).toBe(0x2002);
    expect(leaf(1).ecx).toBe(0x0000);
  });

  const brandOf = (cpuid: KvmCpuidEntry2[]) => Buffer.from(new Uint32Array([0x80000002, 0x80000003, 0x80000004]
    .flatMap((fn) => { const e = cpuid.find((x) => x.function === fn)!; return [e.eax, e.ebx, e.ecx, e.edx]; })).buffer).toString('latin1').replace(/\0+$/, '');

  it('offers TSC-deadline mode when KVM_CAP_TSC_DEADLINE_TIMER says the LAPIC emulates it', () => {
    const bit = (cpuid: KvmCpuidEntry2[]) => (cpuid.find((e) => e.function === 1)!.ecx >>> 24) & 1;
    expect(bit(vcpuCpuid(supported, { apicId: 0, cpuCount: 1 }))).toBe(0);
    expect(bit(vcpuCpuid(supported, { apicId: 0, cpuCount: 1, tscDeadline: true }))).toBe(1);
  });

  it('fills in a brand string when the host has none, raising the extended leaf range to reach it', () => {
    const cpuid = vcpuCpuid([...supported, entry(0x80000000, { eax: 0x80000001 }), entry(0x80000001)], { apicId: 0, cpuCount: 1 });
    expect(cpuid.find((e) => e.function === 0x80000000)!.eax).toBe(0x80000004);
    expect(brandOf(cpuid)).toBe(DEFAULT_BRAND);
  });

  it("keeps the host's brand string", () => {
    const text = Buffer.alloc(48);
    text.write('AMD EPYC 7B13 64-Core Processor', 'latin1');
    const leaves = [0, 1, 2].map((i) => entry(0x80000002 + i, { eax: text.readUInt32LE(i * 16), ebx: text.readUInt32LE(i * 16 + 4), ecx: text.readUInt32LE(i * 16 + 8), edx: text.readUInt32LE(i * 16 + 12) }));
    const cpuid = vcpuCpuid([...supported, entry(0x80000000, { eax: 0x80000008 }), ...leaves], { apicId: 0, cpuCount: 1 });
    expect(brandOf(cpuid)).toBe('AMD EPYC 7B13 64-Core Processor');
  });
});
