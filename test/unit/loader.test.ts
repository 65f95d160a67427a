import { describe, expect, it } from 'vitest';
import { loadKernel } from '../../src/boot/loader.js';
import { GuestMemory } from '../../src/memory/guest-memory.js';
import { hvm_start_info, hvm_memmap_table_entry, hvm_modlist_entry, XEN_HVM_START_MAGIC_VALUE } from '../../src/boot/pvh.js';
import { boot_params } from '../../src/boot/zero-page.js';
import { CMDLINE_START, MiB, PVH_INFO_START, ZERO_PAGE_START } from '../../src/arch/x86/layout.js';
import { buildElf } from '../helpers/elf-builder.js';
import { buildBzImage } from '../helpers/bzimage-builder.js';

const SIZE = 32 * MiB;
const memory = () => GuestMemory.fromBuffers([{ start: 0, bytes: new Uint8Array(SIZE) }]);
const code = Uint8Array.of(0x90, 0x90, 0xf4);
const pvhKernel = buildElf({ entry: 0x100000, pvhEntry: 0x100001, segments: [{ paddr: 0x100000, data: code, memSize: 0x3000 }] });
const elf64Kernel = buildElf({ entry: 0x200000, segments: [{ paddr: 0x200000, data: code }] });

describe('kernel loader', () => {
  it('loads a PVH kernel: segments, bss zeroed, command line, hvm_start_info with memory map and initrd', () => {
    const m = memory();
    m.fill(0x100000, 0x3000, 0xcc);
    const initrd = Buffer.from('initrd contents');
    const loaded = loadKernel(m, { kernelPath: 'k', kernel: pvhKernel, initrd, cmdline: 'console=ttyS0', acpiRsdp: 0xe0000 });
    expect(loaded.protocol).toBe('PVH ELF');
    expect(loaded.cpu).toEqual({ mode: 'protected32', entry: 0x100001, registers: { rbx: PVH_INFO_START } });
    expect([...m.slice(0x100000, 4)]).toEqual([0x90, 0x90, 0xf4, 0]);
    expect(m.slice(0x100003, 0x3000 - 3).every((b) => b === 0)).toBe(true);

    const info = hvm_start_info.decode(m.slice(PVH_INFO_START, 56));
    expect(info.magic).toBe(XEN_HVM_START_MAGIC_VALUE);
    expect(info.version).toBe(1);
    expect(info.rsdp_paddr).toBe(0xe0000n);
    expect(m.readCString(Number(info.cmdline_paddr), 100)).toBe('console=ttyS0');
    expect(info.nr_modules).toBe(1);
    const mod = hvm_modlist_entry.decode(m.slice(Number(info.modlist_paddr), 32));
    expect(Buffer.from(m.read(Number(mod.paddr), Number(mod.size))).toString()).toBe('initrd contents');
    expect(Number(mod.paddr) % 4096).toBe(0);
    expect(Number(mod.paddr) + Number(mod.size)).toBeLessThanOrEqual(SIZE);
    const map = Array.from({ length: info.memmap_entries }, (_, i) => hvm_memmap_table_entry.decode(m.slice(Number(info.memmap_paddr) + 24 * i, 24)));
    expect(map.map((e) => [Number(e.addr), Number(e.size), e.type])).toEqual([
      [0, 0x9fc00, 1], [0x9fc00, 0x60400, 2], [MiB, SIZE - MiB, 1],
    ]);
  });

  it('loads a plain ELF64 kernel for 64-bit entry with a Linux zero page', () => {
    const m = memory();
    const loaded = loadKernel(m, { kernelPath: 'k', kernel: elf64Kernel, cmdline: 'hello', acpiRsdp: 0xe0000 });
    expect(loaded.cpu).toEqual({ mode: 'long64', entry: 0x200000, registers: { rsi: ZERO_PAGE_START } });
    const bp = boot_params.decode(m.slice(ZERO_PAGE_START, 4096));
    expect(bp.boot_flag).toBe(0xaa55);
    expect(bp.header).toBe(0x53726448);
    expect(bp.type_of_loader).toBe(0xff);
    expect(bp.cmd_line_ptr).toBe(CMDLINE_START);
    expect(m.readCString(bp.cmd_line_ptr, 10)).toBe('hello');
    expect(bp.e820_entries).toBe(3);
    expect(bp.acpi_rsdp_addr).toBe(0xe0000n);
    expect(m.readU64(ZERO_PAGE_START + 0x2d0 + 40)).toBe(BigInt(MiB));
    expect(m.readU32(ZERO_PAGE_START + 0x2d0 + 40 + 16)).toBe(1);
  });

  it('refuses what does not fit, with one line saying what and where', () => {
    const huge = buildElf({ entry: 0x100000, pvhEntry: 0x100000, segments: [{ paddr: 0x100000, data: code, memSize: 64 * MiB }] });
    expect(() => loadKernel(memory(), { kernelPath: 'big', kernel: huge, cmdline: '' })).toThrow(/kernel big: segment at 0x100000\+64 MiB does not fit in 32 MiB/);
    const low = buildElf({ entry: 0x1000, segments: [{ paddr: 0x1000, data: code }] });
    expect(() => loadKernel(memory(), { kernelPath: 'low', kernel: low, cmdline: '' })).toThrow(/below 1 MiB/);
    const wildEntry = buildElf({ entry: 0x900000, segments: [{ paddr: 0x100000, data: code }] });
    expect(() => loadKernel(memory(), { kernelPath: 'w', kernel: wildEntry, cmdline: '' })).toThrow(/entry point 0x900000 is outside/);
    expect(() => loadKernel(memory(), { kernelPath: 'k', kernel: pvhKernel, cmdline: 'x'.repeat(70000) })).toThrow(/command line of 70000 bytes/);
    expect(() => loadKernel(memory(), { kernelPath: 'k', kernel: pvhKernel, initrd: new Uint8Array(SIZE), initrdPath: 'big.img', cmdline: '' })).toThrow(/initrd big.img: 32 MiB does not fit/);
  });

  it('without an RSDP address, tells neither PVH nor the zero page of one', () => {
    const m = memory();
    loadKernel(m, { kernelPath: 'k', kernel: pvhKernel, cmdline: '' });
    expect(hvm_start_info.decode(m.slice(PVH_INFO_START, 56)).rsdp_paddr).toBe(0n);
    loadKernel(m, { kernelPath: 'k', kernel: elf64Kernel, cmdline: '' });
    expect(boot_params.decode(m.slice(ZERO_PAGE_START, 4096)).acpi_rsdp_addr).toBe(0n);
  });

  it('tells a bzImage by its "HdrS" and loads it; anything else is "not a kernel image"', () => {
    const loaded = loadKernel(memory(), { kernelPath: 'bz', kernel: buildBzImage({ initSize: 0x100000 }), cmdline: '' });
    expect(loaded.protocol).toBe('bzImage');
    expect(loaded.cpu).toEqual({ mode: 'long64', entry: 0x1000200, registers: { rsi: ZERO_PAGE_START } });
    const bz = new Uint8Array(0x1000);
    bz.set(Buffer.from('HdrS'), 0x202);
    expect(() => loadKernel(memory(), { kernelPath: 'bz', kernel: bz, cmdline: '' })).toThrow(/^kernel bz: boot_flag is 0x0, not 0xaa55$/);
    expect(() => loadKernel(memory(), { kernelPath: 'txt', kernel: Buffer.from('hello'), cmdline: '' })).toThrow(/not a kernel image/);
  });
});
