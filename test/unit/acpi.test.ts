import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ACPI_PM, dsdt, fadt, madt, writeAcpiTables, xsdt } from '../../src/arch/x86/acpi.js';
import { eisaId, integer, irqNoFlags, pkgLength } from '../../src/arch/x86/aml.js';
import { GuestMemory } from '../../src/memory/guest-memory.js';

const sum = (bytes: Uint8Array) => bytes.reduce((a, b) => (a + b) & 0xff, 0);
const view = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
const signature = (b: Uint8Array, at = 0) => Buffer.from(b.subarray(at, at + 4)).toString('latin1');

describe('ACPI tables in guest memory', () => {
  const memory = GuestMemory.fromBuffers([{ start: 0, bytes: new Uint8Array(0x100000) }]);
  const rsdpAddress = writeAcpiTables(memory, 4);
  const table = (address: number) => memory.read(address, memory.readU32(address + 4));

  it('puts the RSDP where a scan of the BIOS area finds it, with both checksums right', () => {
    expect(rsdpAddress).toBe(0xe0000);
    const rsdp = memory.read(rsdpAddress, 36);
    expect(Buffer.from(rsdp.subarray(0, 8)).toString()).toBe('RSD PTR ');
    expect(sum(rsdp.subarray(0, 20))).toBe(0);
    expect(sum(rsdp)).toBe(0);
    expect(rsdp[15]).toBe(2); // revision: ACPI 2.0+, XSDT
  });

  it('links RSDP → XSDT → FADT → DSDT and MADT, every table checksummed', () => {
    const xsdtAddress = Number(memory.readU64(rsdpAddress + 24));
    const x = table(xsdtAddress);
    expect(signature(x)).toBe('XSDT');
    const entries = [Number(view(x).getBigUint64(36, true)), Number(view(x).getBigUint64(44, true))];
    expect(entries.map((a) => signature(table(a)))).toEqual(['FACP', 'APIC']);
    const f = table(entries[0]!);
    const d = table(view(f).getUint32(40, true));
    expect(signature(d)).toBe('DSDT');
    for (const t of [x, f, d, table(entries[1]!)]) expect(sum(t), signature(t)).toBe(0);
  });

  it('FADT: ACPI 6 size, power-management blocks, reset register, 64-bit DSDT pointer', () => {
    const f = view(fadt(0xe0040));
    expect(f.byteLength).toBe(276);
    expect(f.getUint32(40, true)).toBe(0xe0040);
    expect(f.getUint32(56, true)).toBe(ACPI_PM.pm1aEvent);
    expect(f.getUint32(64, true)).toBe(ACPI_PM.pm1aControl);
    expect([f.getUint8(88), f.getUint8(89)]).toEqual([4, 2]);
    expect(f.getUint32(112, true) & (1 << 10)).not.toBe(0); // RESET_REG_SUP
    expect(f.getUint32(112, true) & (1 << 20)).toBe(0); // not hardware-reduced: PIC and PIT stay
    expect(f.getUint8(116)).toBe(1); // reset register in I/O space
    expect(Number(f.getBigUint64(120, true))).toBe(ACPI_PM.reset);
    expect(f.getUint8(128)).toBe(ACPI_PM.resetValue);
    expect(Number(f.getBigUint64(140, true))).toBe(0xe0040);
  });

  it('MADT: one enabled local APIC per vCPU, the IOAPIC, the SCI override and LINT1 NMI', () => {
    const m = madt(3);
    const v = view(m);
    expect(v.getUint32(36, true)).toBe(0xfee00000);
    const entries: number[][] = [];
    for (let at = 44; at < m.length; at += m[at + 1]!) entries.push([...m.subarray(at, at + m[at + 1]!)]);
    expect(entries.filter((e) => e[0] === 0).map((e) => [e[2], e[3], e[4]])).toEqual([[0, 0, 1], [1, 1, 1], [2, 2, 1]]);
    const ioapic = entries.find((e) => e[0] === 1)!;
    expect(Buffer.from(ioapic).readUInt32LE(4)).toBe(0xfec00000);
    expect(entries.find((e) => e[0] === 2)).toEqual([2, 10, 0, 9, 9, 0, 0, 0, 0x0d, 0]);
    expect(entries.find((e) => e[0] === 4)).toEqual([4, 6, 0xff, 0, 0, 1]);
  });

  it('DSDT: begins with the AML of Name (_S5, Package (4) { 5, 5, 0, 0 })', () => {
    expect([...dsdt().subarray(36, 36 + 14)]).toEqual([0x08, 0x5f, 0x53, 0x35, 0x5f, 0x12, 0x08, 0x04, 0x0a, 5, 0x0a, 5, 0, 0]);
  });

  it('DSDT: one LNRO0005 device per virtio transport, in guest memory through the FADT', () => {
    const mem = GuestMemory.fromBuffers([{ start: 0, bytes: new Uint8Array(0x100000) }]);
    const at = writeAcpiTables(mem, 1, [{ base: 0xc0000000, size: 0x1000, irq: 5 }, { base: 0xc0001000, size: 0x1000, irq: 6 }]);
    const x = mem.read(Number(mem.readU64(at + 24)), 52);
    const f = mem.read(Number(view(x).getBigUint64(36, true)), 276);
    const d = mem.read(view(f).getUint32(40, true), mem.readU32(view(f).getUint32(40, true) + 4));
    expect(sum(d)).toBe(0);
    expect(Buffer.from(d).toString('latin1').split('LNRO0005').length - 1).toBe(2);
  });
});

describe('AML encoding', () => {
  it('PkgLength: one byte below 64, then a lead byte with the count of extra bytes', () => {
    expect(pkgLength(0)).toEqual([1]);
    expect(pkgLength(62)).toEqual([63]);
    // 63 bytes of content + 2 of PkgLength = 65 = 0x41: lead 0x40 | 0x1, then 0x41 >> 4
    expect(pkgLength(63)).toEqual([0x41, 0x04]);
    // 5000 + 3 = 5003 = 0x138b needs more than 12 bits: lead 0x80 | 0xb, then 0x38, 0x01
    expect(pkgLength(5000)).toEqual([0x8b, 0x38, 0x01]);
    expect(pkgLength(4094)).toEqual([0x81, 0x00, 0x01]); // 4094 + 2 = 4096 does not fit 12 bits: 4094 + 3 = 0x1001
  });

  it('integers take their shortest form', () => {
    expect(integer(0)).toEqual([0]);
    expect(integer(1)).toEqual([1]);
    expect(integer(0xab)).toEqual([0x0a, 0xab]);
    expect(integer(0x1234)).toEqual([0x0b, 0x34, 0x12]);
    expect(integer(0xc0001000)).toEqual([0x0c, 0x00, 0x10, 0x00, 0xc0]);
  });

  it('EisaId("PNP0303") is the compressed id 0x0303D041', () => {
    expect(eisaId('PNP0303')).toEqual([0x0c, 0x41, 0xd0, 0x03, 0x03]);
  });

  it('refuses what it cannot encode', () => {
    expect(() => eisaId('pnp0303')).toThrow(RangeError);
    expect(() => irqNoFlags(16)).toThrow(RangeError);
    expect(() => integer(-1)).toThrow(RangeError);
  });
});

const iaslMissing = spawnSync('iasl', ['-v']).status === null ? 'iasl (acpica-tools) is not installed: decoder check skipped' : undefined;

describe.skipIf(iaslMissing)('ACPI tables as ACPICA decodes them (iasl -d)', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'tsvmm-acpi-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const decode = (name: string, bytes: Uint8Array) => {
    writeFileSync(path.join(dir, `${name}.dat`), bytes);
    const out = execFileSync('iasl', ['-d', `${name}.dat`], { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    expect(out).not.toMatch(/Error|Warning/i);
    return readFileSync(path.join(dir, `${name}.dsl`), 'utf8');
  };

  it('decodes FADT, MADT, DSDT and XSDT without complaint', () => {
    const f = decode('facp', fadt(0xe0040));
    expect(f).toMatch(/PM1A Control Block Address : 00000604/);
    expect(f).toMatch(/Reset Register Supported \(V2\) : 1/);
    expect(decode('apic', madt(2))).toMatch(/Local Apic Address : FEE00000/);
    expect(decode('dsdt', dsdt())).toMatch(/Name \(_S5, Package \(0x04\)/);
    expect(decode('xsdt', xsdt([0xe0100]))).toMatch(/ACPI Table Address {3}0 : 00000000000E0100/);
  });

  it('decodes the DSDT\'s PS/2 and virtio-mmio devices with their resources', () => {
    const virtio = Array.from({ length: 17 }, (_, i) => ({ base: 0xc0000000 + i * 0x1000, size: 0x1000, irq: 5 + i }));
    const asl = decode('dsdt-devices', dsdt(virtio)).replace(/\/\*[^]*?\*\/|\/\/.*$/gm, '').replace(/\s+/g, ' ').replace(/ \)/g, ')');
    expect(asl).toContain('Device (PS2K) { Name (_HID, EisaId ("PNP0303"))');
    expect(asl).toMatch(/IO \(Decode16, 0x0060, 0x0060, 0x01, 0x01,\)/);
    expect(asl).toMatch(/IO \(Decode16, 0x0064, 0x0064, 0x01, 0x01,\)/);
    expect(asl).toMatch(/IRQNoFlags \(\) \{1\}/);
    expect(asl).toContain('Device (PS2M) { Name (_HID, EisaId ("PNP0F13"))');
    expect(asl).toMatch(/IRQNoFlags \(\) \{12\}/);
    for (const [i, v] of virtio.entries()) {
      const name = `VR${i.toString(16).toUpperCase().padStart(2, '0')}`;
      const block = new RegExp(`Device \\(${name}\\) \\{ Name \\(_HID, "LNRO0005"\\) Name \\(_UID, (0x${i.toString(16).toUpperCase().padStart(2, '0')}|Zero|One)\\) ` +
        `Name \\(_CRS, ResourceTemplate \\(\\) \\{ Memory32Fixed \\(ReadWrite, 0x${v.base.toString(16).toUpperCase()}, 0x00001000,\\) ` +
        `Interrupt \\(ResourceConsumer, Edge, ActiveHigh, Exclusive, ,,\\) \\{ 0x${v.irq.toString(16).toUpperCase().padStart(8, '0')}, \\}`);
      expect(asl, name).toMatch(block);
    }
  });
});
