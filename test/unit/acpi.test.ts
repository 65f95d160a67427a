import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ACPI_PM, dsdt, fadt, madt, writeAcpiTables, xsdt } from '../../src/arch/x86/acpi.js';
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

  it('DSDT: the AML of Name (_S5, Package (4) { 5, 5, 0, 0 })', () => {
    expect([...dsdt().subarray(36)]).toEqual([0x08, 0x5f, 0x53, 0x35, 0x5f, 0x12, 0x08, 0x04, 0x0a, 5, 0x0a, 5, 0, 0]);
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
});
