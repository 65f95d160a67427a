import { describe, expect, it } from 'vitest';
import {
  boot_e820_entry, boot_params, buildZeroPage, SETUP_HEADER_LIMIT, SETUP_HEADER_START,
} from '../../src/boot/zero-page.js';
import { runC } from '../helpers/c-program.js';

/** Fields inside struct setup_header are boot_params.hdr.NAME in C. */
const cField = (name: string, offset: number) => (offset >= SETUP_HEADER_START && offset < SETUP_HEADER_LIMIT ? `hdr.${name}` : name);

function probe(): Map<string, number> {
  const lines = ['P("boot_params", sizeof(struct boot_params));', 'P("setup_header", sizeof(struct setup_header));',
    'P("boot_e820_entry", sizeof(struct boot_e820_entry));', 'P("_pad7", offsetof(struct boot_params, _pad7));'];
  for (const [name, [offset]] of Object.entries(boot_params.fields)) {
    const c = cField(name, offset);
    lines.push(`P("${name}", offsetof(struct boot_params, ${c}));`, `P("${name}.size", sizeof(((struct boot_params *)0)->${c}));`);
  }
  for (const name of Object.keys(boot_e820_entry.fields)) lines.push(`P("e820.${name}", offsetof(struct boot_e820_entry, ${name}));`);
  const out = runC(`
#include <stddef.h>
#include <stdio.h>
#include <asm/bootparam.h>
#define P(name, value) printf("%s %lu\\n", name, (unsigned long)(value))
int main(void) { ${lines.join('\n')} return 0; }
`);
  return new Map(out.trim().split('\n').map((l) => {
    const [k, v] = l.split(' ');
    return [k!, Number(v)];
  }));
}

describe('boot_params matches <asm/bootparam.h>', () => {
  const c = probe();

  it('size, and where the setup header starts and may grow to', () => {
    expect(boot_params.size).toBe(c.get('boot_params'));
    expect(boot_params.fields.setup_sects[0]).toBe(SETUP_HEADER_START);
    expect(SETUP_HEADER_START + c.get('setup_header')!).toBe(c.get('_pad7'));
    expect(SETUP_HEADER_LIMIT).toBe(0x290); // _pad7 runs up to edd_mbr_sig_buffer at 0x290
  });

  it.each(Object.entries(boot_params.fields))('%s: offset and size', (name, [offset, codec]) => {
    expect(offset, name).toBe(c.get(name));
    expect(codec.size, name).toBe(c.get(`${name}.size`));
  });

  it('boot_e820_entry', () => {
    expect(boot_e820_entry.size).toBe(c.get('boot_e820_entry'));
    for (const [name, [offset]] of Object.entries(boot_e820_entry.fields)) expect(offset, name).toBe(c.get(`e820.${name}`));
  });
});

describe('building the zero page', () => {
  const memoryMap = [{ addr: 0, size: 0x9fc00, type: 1 }, { addr: 0x100000, size: 0x7f00000, type: 1 }];

  it('for a vmlinux (no setup header of its own): the header fields a 64-bit kernel reads', () => {
    const page = buildZeroPage({ cmdlineAddress: 0x20000, cmdlineSize: 12, memoryMap, initrd: { address: 0x7000000, size: 0x1234 }, acpiRsdp: 0xe0000 });
    const bp = boot_params.decode(page);
    expect(bp).toMatchObject({
      boot_flag: 0xaa55, header: 0x53726448, version: 0x020f, type_of_loader: 0xff,
      cmd_line_ptr: 0x20000, ext_cmd_line_ptr: 0, cmdline_size: 12,
      ramdisk_image: 0x7000000, ramdisk_size: 0x1234, ext_ramdisk_image: 0, ext_ramdisk_size: 0,
      e820_entries: 2, acpi_rsdp_addr: 0xe0000n, setup_sects: 0, code32_start: 0,
    });
    expect(bp.e820_table.slice(0, 3)).toEqual([
      { addr: 0n, size: 0x9fc00n, type: 1 }, { addr: 0x100000n, size: 0x7f00000n, type: 1 }, { addr: 0n, size: 0n, type: 0 },
    ]);
  });

  it('for a bzImage: its header bytes verbatim, including fields newer than our table, then the loader\'s fields', () => {
    const header = new Uint8Array(SETUP_HEADER_LIMIT - SETUP_HEADER_START).map((_, i) => (i * 13 + 1) & 0xff);
    const page = buildZeroPage({ setupHeader: header, header: { code32_start: 0x1000000, loadflags: 1 }, cmdlineAddress: 0x20000, cmdlineSize: 3, memoryMap });
    const bp = boot_params.decode(page);
    expect(bp).toMatchObject({ code32_start: 0x1000000, loadflags: 1, type_of_loader: 0xff, cmd_line_ptr: 0x20000, ramdisk_image: 0, acpi_rsdp_addr: 0n });
    // Every header byte the loader does not own is the kernel's, up to boot_params' limit.
    const owned = [[0x210, 1], [0x211, 1], [0x214, 4], [0x218, 4], [0x21c, 4], [0x228, 4]] as const;
    for (let at = SETUP_HEADER_START; at < SETUP_HEADER_LIMIT; at++) {
      if (owned.some(([o, n]) => at >= o && at < o + n)) continue;
      expect(page[at], `byte ${at.toString(16)}`).toBe(header[at - SETUP_HEADER_START]);
    }
    expect(bp.cmdline_size).toBe(new DataView(header.buffer).getUint32(0x238 - SETUP_HEADER_START, true));
  });

  it('refuses a memory map longer than the zero page holds', () => {
    const long = Array.from({ length: 129 }, (_, i) => ({ addr: i * 0x1000, size: 0x1000, type: 1 }));
    expect(() => buildZeroPage({ cmdlineAddress: 0, cmdlineSize: 0, memoryMap: long })).toThrow(/e820 map too long/);
  });
});
