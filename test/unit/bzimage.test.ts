// The bzImage loader against the Linux/x86 boot protocol (Documentation/arch/x86/boot.rst and
// zero-page.rst), with a real Debian kernel and with synthetic broken ones. Offsets here are
// written out from the spec, independently of src/boot/zero-page.ts.

import { readFileSync } from 'node:fs';
import { beforeAll, describe, expect, it } from 'vitest';
import { isBzImage, parseBzImage, placeBzImage, protocolName, type BzImage } from '../../src/boot/bzimage.js';
import { loadKernel, type BootSource, type LoadedKernel } from '../../src/boot/loader.js';
import { GuestMemory } from '../../src/memory/guest-memory.js';
import { TsvmmError } from '../../src/errors.js';
import { MiB } from '../../src/arch/x86/layout.js';
import { buildBzImage, type TestBzImage } from '../helpers/bzimage-builder.js';
import { fetchDebianKernel, FETCH_TIMEOUT_MS } from '../helpers/debian-kernel.js';

/** struct setup_header as boot.rst tabulates it: name, offset, size. */
const SETUP_HEADER: readonly [string, number, 1 | 2 | 4 | 8][] = [
  ['setup_sects', 0x1f1, 1], ['root_flags', 0x1f2, 2], ['syssize', 0x1f4, 4], ['ram_size', 0x1f8, 2],
  ['vid_mode', 0x1fa, 2], ['root_dev', 0x1fc, 2], ['boot_flag', 0x1fe, 2], ['jump', 0x200, 2],
  ['header', 0x202, 4], ['version', 0x206, 2], ['realmode_swtch', 0x208, 4], ['start_sys_seg', 0x20c, 2],
  ['kernel_version', 0x20e, 2], ['type_of_loader', 0x210, 1], ['loadflags', 0x211, 1],
  ['setup_move_size', 0x212, 2], ['code32_start', 0x214, 4], ['ramdisk_image', 0x218, 4],
  ['ramdisk_size', 0x21c, 4], ['bootsect_kludge', 0x220, 4], ['heap_end_ptr', 0x224, 2],
  ['ext_loader_ver', 0x226, 1], ['ext_loader_type', 0x227, 1], ['cmd_line_ptr', 0x228, 4],
  ['initrd_addr_max', 0x22c, 4], ['kernel_alignment', 0x230, 4], ['relocatable_kernel', 0x234, 1],
  ['min_alignment', 0x235, 1], ['xloadflags', 0x236, 2], ['cmdline_size', 0x238, 4],
  ['hardware_subarch', 0x23c, 4], ['hardware_subarch_data', 0x240, 8], ['payload_offset', 0x248, 4],
  ['payload_length', 0x24c, 4], ['setup_data', 0x250, 8], ['pref_address', 0x258, 8],
  ['init_size', 0x260, 4], ['handover_offset', 0x264, 4], ['kernel_info_offset', 0x268, 4],
];
/** Fields the boot loader writes ("write"/"modify" in boot.rst); the rest it copies unchanged. */
const LOADER_WRITES = new Set(['type_of_loader', 'loadflags', 'code32_start', 'ramdisk_image', 'ramdisk_size', 'cmd_line_ptr']);
const ZERO_PAGE = 0x7000;
const E820_TABLE = 0x2d0;
const LOADED_HIGH = 0x01;
const CAN_USE_HEAP = 0x80;

function raw(bytes: Uint8Array, offset: number, size: number): bigint {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return size === 1 ? BigInt(v.getUint8(offset)) : size === 2 ? BigInt(v.getUint16(offset, true))
    : size === 4 ? BigInt(v.getUint32(offset, true)) : v.getBigUint64(offset, true);
}

const memoryOf = (size: number) => GuestMemory.fromBuffers([{ start: 0, bytes: new Uint8Array(size) }]);

function thrown(fn: () => unknown): TsvmmError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(TsvmmError);
    expect((error as Error).message).not.toContain('\n');
    return error as TsvmmError;
  }
  throw new Error('expected an error');
}

describe('a real bzImage: the Debian cloud kernel', () => {
  let image: Uint8Array;
  let bz: BzImage;

  beforeAll(async () => {
    image = readFileSync(await fetchDebianKernel());
    bz = parseBzImage(image, 'kernel vmlinuz');
  }, FETCH_TIMEOUT_MS);

  it('is recognised as a bzImage with a 64-bit entry, protocol 2.06 or later', () => {
    expect(isBzImage(image)).toBe(true);
    expect(bz.version).toBeGreaterThanOrEqual(0x0206);
    expect(bz.hdr.loadflags & LOADED_HIGH).toBe(LOADED_HIGH);
    expect(bz.hdr.xloadflags & 1).toBe(1);
  });

  it('parses every setup header field from the bytes at the offsets of the spec', () => {
    const headerEnd = 0x202 + image[0x201]!;
    expect(image[0x200]).toBe(0xeb); // the jump whose offset says where the header ends
    for (const [name, offset, size] of SETUP_HEADER) {
      const parsed = bz.hdr[name as keyof typeof bz.hdr];
      const expected = offset + size <= headerEnd ? raw(image, offset, size) : 0n;
      expect(BigInt(parsed as number | bigint), name).toBe(expected);
    }
    expect(bz.hdr.header).toBe(0x53726448); // "HdrS"
    expect(bz.hdr.boot_flag).toBe(0xaa55);
    expect(Buffer.from(bz.setupHeader).equals(Buffer.from(image.subarray(0x1f1, headerEnd)))).toBe(true);
  });

  it('derives the loader inputs from those fields', () => {
    const setupSects = image[0x1f1] || 4;
    expect(bz.setupSects).toBe(setupSects);
    expect(bz.protectedMode.byteOffset - image.byteOffset).toBe((setupSects + 1) * 512);
    expect(bz.protectedMode.length).toBe(image.length - (setupSects + 1) * 512);
    expect(bz.protectedMode.length).toBeGreaterThanOrEqual(Number(raw(image, 0x1f4, 4)) * 16);
    expect(bz.relocatable).toBe(image[0x234] !== 0);
    expect(bz.kernelAlignment).toBe(Number(raw(image, 0x230, 4)));
    expect(bz.prefAddress).toBe(Number(raw(image, 0x258, 8)));
    expect(bz.initSize).toBe(Number(raw(image, 0x260, 4)));
    expect(bz.cmdlineSize).toBe(Number(raw(image, 0x238, 4)));
    expect(bz.initrdAddrMax).toBe(Number(raw(image, 0x22c, 4)));
  });

  describe('loaded into 256 MiB with an initrd, a command line and an RSDP', () => {
    const SIZE = 256 * MiB;
    const cmdline = 'console=ttyS0 reboot=k panic=1 rdinit=/init quiet';
    const initrd = Buffer.alloc(3 * MiB + 123);
    for (let i = 0; i < initrd.length; i++) initrd[i] = (i * 31 + 7) & 0xff;
    let memory: GuestMemory;
    let loaded: LoadedKernel;
    let zp: Uint8Array;
    const field = (name: string) => {
      const [, offset, size] = SETUP_HEADER.find(([n]) => n === name)!;
      return Number(raw(zp, offset, size));
    };

    beforeAll(() => {
      memory = memoryOf(SIZE);
      loaded = loadKernel(memory, { kernelPath: 'vmlinuz', kernel: image, initrd, initrdPath: 'initrd', cmdline, acpiRsdp: 0xe0000 });
      zp = memory.read(ZERO_PAGE, 4096);
    });

    it('copies the protected-mode kernel to pref_address and enters it at +0x200 in long mode, rsi = boot_params', () => {
      expect(loaded.protocol).toBe('bzImage');
      const load = bz.prefAddress;
      expect(load % bz.kernelAlignment).toBe(0);
      expect(Buffer.from(memory.slice(load, bz.protectedMode.length)).equals(Buffer.from(bz.protectedMode))).toBe(true);
      expect(loaded.cpu).toEqual({ mode: 'long64', entry: load + 0x200, registers: { rsi: ZERO_PAGE } });
    });

    it('copies the setup header, changing only the fields a loader writes', () => {
      const headerEnd = 0x202 + image[0x201]!;
      for (const [name, offset, size] of SETUP_HEADER) {
        if (LOADER_WRITES.has(name) || offset + size > headerEnd) continue;
        expect(raw(zp, offset, size), name).toBe(raw(image, offset, size));
      }
    });

    it('sets type_of_loader, loadflags and code32_start', () => {
      expect(field('type_of_loader')).toBe(0xff); // "undefined" boot loader
      expect(field('loadflags') & LOADED_HIGH).toBe(LOADED_HIGH);
      expect(field('loadflags') & CAN_USE_HEAP).toBe(0); // no real-mode code runs, so no heap
      expect(field('code32_start')).toBe(bz.prefAddress); // relocatable kernel: its load address
    });

    it('points cmd_line_ptr at the command line, below 0xa0000, within cmdline_size', () => {
      const ptr = field('cmd_line_ptr');
      expect(raw(zp, 0x0c8, 4)).toBe(0n); // ext_cmd_line_ptr: the line is below 4 GiB
      expect(ptr + cmdline.length + 1).toBeLessThanOrEqual(0xa0000);
      expect(memory.readCString(ptr, 4096)).toBe(cmdline);
      expect(cmdline.length).toBeLessThanOrEqual(bz.cmdlineSize);
    });

    it('places the initrd page-aligned, above init_size, as high as initrd_addr_max and RAM allow', () => {
      const address = field('ramdisk_image');
      const size = field('ramdisk_size');
      expect(raw(zp, 0x0c0, 4)).toBe(0n); // ext_ramdisk_image
      expect(raw(zp, 0x0c4, 4)).toBe(0n); // ext_ramdisk_size
      expect(size).toBe(initrd.length);
      expect(address % 4096).toBe(0);
      expect(address).toBeGreaterThanOrEqual(bz.prefAddress + bz.initSize);
      expect(address + size - 1).toBeLessThanOrEqual(bz.initrdAddrMax);
      expect(address + size).toBeLessThanOrEqual(SIZE);
      expect(SIZE - (address + size)).toBeLessThan(4096); // as high as it goes
      expect(Buffer.from(memory.slice(address, size)).equals(initrd)).toBe(true);
      expect(loaded.initrd).toEqual({ address, size });
    });

    it('gives the memory map as e820 entries: low RAM, the reserved BIOS area, RAM from 1 MiB', () => {
      expect(zp[0x1e8]).toBe(3);
      const entries = Array.from({ length: zp[0x1e8]! }, (_, i) => {
        const at = E820_TABLE + 20 * i;
        return [Number(raw(zp, at, 8)), Number(raw(zp, at + 8, 8)), Number(raw(zp, at + 16, 4))];
      });
      expect(entries).toEqual([[0, 0x9fc00, 1], [0x9fc00, 0x100000 - 0x9fc00, 2], [MiB, SIZE - MiB, 1]]);
      expect(zp.subarray(E820_TABLE + 20 * 3, E820_TABLE + 20 * 128).every((b) => b === 0)).toBe(true);
      // What the kernel needs (init_size from its load address) and the initrd are in usable RAM.
      const inRam = (a: number, n: number) => entries.some(([s, l, t]) => t === 1 && a >= s! && a + n <= s! + l!);
      expect(inRam(bz.prefAddress, bz.initSize)).toBe(true);
      expect(inRam(field('ramdisk_image'), field('ramdisk_size'))).toBe(true);
      expect(inRam(ZERO_PAGE, 4096)).toBe(true);
    });

    it('passes the ACPI RSDP address at 0x070 and leaves the sentinel and the rest zero', () => {
      expect(raw(zp, 0x070, 8)).toBe(0xe0000n);
      expect(zp[0x1ef]).toBe(0); // sentinel: 0xff in the image; a loader copies only the header
      const headerEnd = 0x202 + image[0x201]!;
      const written = (i: number) => (i >= 0x070 && i < 0x078) || (i >= 0x0c0 && i < 0x0cc) || i === 0x1e8
        || (i >= 0x1f1 && i < headerEnd) || (i >= E820_TABLE && i < E820_TABLE + 20 * 3);
      const stray = [...zp.keys()].filter((i) => !written(i) && zp[i] !== 0);
      expect(stray).toEqual([]);
    });
  });

  it('refuses a command line longer than the kernel\'s cmdline_size, naming both numbers', () => {
    const long = 'x'.repeat(bz.cmdlineSize + 1);
    const error = thrown(() => loadKernel(memoryOf(128 * MiB), { kernelPath: 'vmlinuz', kernel: image, cmdline: long }));
    expect(error.code).toBe('CMDLINE_TOO_LONG');
    expect(error.message).toBe(`command line of ${bz.cmdlineSize + 1} bytes is longer than the kernel's cmdline_size of ${bz.cmdlineSize} bytes`);
  });

  it('refuses guest memory smaller than pref_address + init_size', () => {
    const error = thrown(() => loadKernel(memoryOf(64 * MiB), { kernelPath: 'vmlinuz', kernel: image, cmdline: '' }));
    expect(error.code).toBe('KERNEL_TOO_LARGE');
    expect(error.message).toMatch(/^kernel vmlinuz: needs [\d.]+ MiB from 0x1000000 to decompress and start \(init_size\), up to \d+ MiB, but guest memory ends at 64 MiB$/);
  });
});

describe('synthetic bzImages', () => {
  const load = (spec: TestBzImage, extra: Partial<BootSource> = {}, size = 64 * MiB) => {
    const memory = memoryOf(size);
    const loaded = loadKernel(memory, { kernelPath: 'bz', kernel: buildBzImage(spec), cmdline: 'hi', ...extra });
    return { memory, loaded, zp: memory.read(ZERO_PAGE, 4096) };
  };

  it('writes protocol versions as boot.rst does', () => {
    expect(protocolName(0x0204)).toBe('2.04');
    expect(protocolName(0x020f)).toBe('2.15');
  });

  it('keeps the initrd below initrd_addr_max even when RAM goes higher', () => {
    const { zp } = load({ initrdAddrMax: 0x2ffffff }, { initrd: new Uint8Array(5 * MiB + 1) }, 128 * MiB);
    const address = Number(raw(zp, 0x218, 4));
    expect(address % 4096).toBe(0);
    expect(address + 5 * MiB + 1 - 1).toBeLessThanOrEqual(0x2ffffff);
    expect(address).toBeGreaterThanOrEqual(0x1000000 + 0x400000);
  });

  it('loads a kernel that is not relocatable at 1 MiB, and needs init_size from pref_address', () => {
    const { loaded, zp } = load({ relocatable: false, prefAddress: 0x1000000 });
    expect(loaded.cpu.entry).toBe(0x100200);
    expect(Number(raw(zp, 0x214, 4))).toBe(0x100000);
    expect(() => load({ relocatable: false, prefAddress: 0x1000000, initSize: 60 * MiB })).toThrow(/needs 60 MiB from 0x1000000/);
    expect(() => load({ relocatable: false, prefAddress: 0x8000 })).toThrow(/below 1 MiB/);
  });

  it('aligns a relocatable kernel without pref_address to kernel_alignment above 1 MiB', () => {
    expect(load({ prefAddress: 0 }).loaded.cpu.entry).toBe(0x200000 + 0x200);
    const bz = parseBzImage(buildBzImage({ prefAddress: 0x1234000, kernelAlignment: 0x1000000 }));
    expect(placeBzImage(bz, 256 * MiB).loadAddress).toBe(0x2000000);
  });

  it('accepts a command line of exactly cmdline_size bytes', () => {
    const { memory, zp } = load({ cmdlineSize: 255 }, { cmdline: 'y'.repeat(255) });
    expect(memory.readCString(Number(raw(zp, 0x228, 4)), 1000)).toHaveLength(255);
  });

  const text = Buffer.from('#!/bin/sh\necho this is not a kernel\n'.repeat(40));
  const badHeaderEnd = buildBzImage();
  badHeaderEnd[0x201] = 0xf0;
  const noBootFlag = buildBzImage();
  new DataView(noBootFlag.buffer).setUint16(0x1fe, 0, true);
  const truncated = buildBzImage().subarray(0, 5 * 512 + 0x100);
  const shortSyssize = buildBzImage();
  new DataView(shortSyssize.buffer).setUint32(0x1f4, 0x10000, true);
  const oddAlignment = buildBzImage({ kernelAlignment: 0x3000 });

  it.each([
    ['not a kernel', text, {}, 'BAD_KERNEL', 'kernel bz: not a kernel image (neither ELF nor bzImage)'],
    ['boot protocol 2.04', buildBzImage({ version: 0x0204 }), {}, 'KERNEL_PROTOCOL_TOO_OLD', 'kernel bz: boot protocol 2.04 is too old (tsvmm needs 2.06 or later)'],
    ['a zImage', buildBzImage({ loadflags: 0 }), {}, 'UNSUPPORTED_KERNEL', 'kernel bz: is a zImage (loaded low, at 0x10000), which tsvmm does not load'],
    ['no 64-bit entry', buildBzImage({ xloadflags: 0 }), {}, 'UNSUPPORTED_KERNEL', /^kernel bz: has no 64-bit entry point \(xloadflags bit XLF_KERNEL_64 is clear in boot protocol 2.15\)/],
    ['protocol 2.10, before xloadflags', buildBzImage({ version: 0x020a }), {}, 'UNSUPPORTED_KERNEL', /has no 64-bit entry point .* 2.10\)/],
    ['a command line longer than cmdline_size', buildBzImage({ cmdlineSize: 255 }), { cmdline: 'z'.repeat(300) }, 'CMDLINE_TOO_LONG', "command line of 300 bytes is longer than the kernel's cmdline_size of 255 bytes"],
    ['an initrd too large for the room above the kernel', buildBzImage(), { initrd: new Uint8Array(45 * MiB), initrdPath: 'big.img' }, 'INITRD_TOO_LARGE', /^initrd big.img: 45 MiB does not fit in guest memory between the kernel's end at 0x1400000 and the end of low memory at 0x4000000/],
    ['an initrd above initrd_addr_max', buildBzImage({ initrdAddrMax: 0x17fffff }), { initrd: new Uint8Array(5 * MiB), initrdPath: 'i.img' }, 'INITRD_TOO_LARGE', /initrd i.img: 5 MiB does not fit .* and the kernel's initrd_addr_max at 0x1800000/],
    ['init_size larger than memory', buildBzImage({ initSize: 100 * MiB }), {}, 'KERNEL_TOO_LARGE', 'kernel bz: needs 100 MiB from 0x1000000 to decompress and start (init_size), up to 116 MiB, but guest memory ends at 64 MiB'],
    ['a header that runs past boot_params\' room', badHeaderEnd, {}, 'BAD_KERNEL', /setup header ends at 0x2f2, past/],
    ['no 0xaa55 boot flag', noBootFlag, {}, 'BAD_KERNEL', 'kernel bz: boot_flag is 0x0, not 0xaa55'],
    ['a file cut before its 64-bit entry', truncated, {}, 'BAD_KERNEL', /file ends before its 64-bit entry point/],
    ['a file shorter than syssize says', shortSyssize, {}, 'BAD_KERNEL', /is truncated: the setup header says 1 MiB of protected-mode kernel, the file has 16384 bytes/],
    ['a kernel_alignment that is not a power of two', oddAlignment, {}, 'BAD_KERNEL', /kernel_alignment 0x3000 is not a power of two/],
  ] as const)('refuses %s in one line with a stable code', (_what, kernel, extra, code, message) => {
    const error = thrown(() => loadKernel(memoryOf(64 * MiB), { kernelPath: 'bz', kernel, cmdline: 'hi', ...extra }));
    expect(error.code).toBe(code);
    if (typeof message === 'string') expect(error.message).toBe(message);
    else expect(error.message).toMatch(message);
  });
});
