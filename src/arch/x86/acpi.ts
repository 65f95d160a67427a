// The ACPI tables a guest needs to find its CPUs and to power off or reset (ACPI 6.x): RSDP →
// XSDT → FADT (→ DSDT) and MADT, placed in the BIOS area at 0xE0000, where an operating system
// also finds them by scanning. The power-management registers the FADT names are ports of
// devices/acpi-pm.ts. The DSDT gives the S5 sleep type and describes the devices a kernel cannot
// find by itself: the PS/2 controller (PNP0303/PNP0F13, as PC firmware does) and every
// virtio-mmio transport (LNRO0005 with its MMIO window and interrupt, as QEMU's microvm does).

import type { GuestMemory } from '../../memory/guest-memory.js';
import { I8042_COMMAND_PORT, I8042_DATA_PORT, I8042_KBD_IRQ, I8042_AUX_IRQ } from '../../devices/i8042.js';
import { device, edgeInterrupt, eisaId, integer, ioPort, irqNoFlags, memory32Fixed, name, packageOf, resourceTemplate, scope, string } from './aml.js';
import { APIC_START, IOAPIC_START } from './layout.js';

export const ACPI_TABLES_START = 0xe0000;
export const ACPI_TABLES_END = 0x100000;

/** The fixed-hardware register block of devices/acpi-pm.ts, in port space. */
export const ACPI_PM = {
  base: 0x600,
  length: 16,
  pm1aEvent: 0x600, // PM1a status (2 bytes) and enable (2 bytes)
  pm1aControl: 0x604, // PM1a control (2 bytes): SLP_TYP and SLP_EN
  reset: 0x608, // the FADT's RESET_REG
  resetValue: 0x01,
  /** SLP_TYP for S5 (soft off), as the DSDT's \_S5 package says. */
  sleepTypeS5: 5,
  sciIrq: 9,
} as const;

const OEM_ID = 'TSVMM ';
const OEM_TABLE_ID = 'TSVMMVM ';
const CREATOR_ID = 'TSVM';

/** Little-endian byte assembly for one table. */
class Bytes {
  readonly #out: number[] = [];

  u8(v: number): this { this.#out.push(v & 0xff); return this; }
  u16(v: number): this { return this.u8(v).u8(v >>> 8); }
  u32(v: number): this { return this.u16(v & 0xffff).u16(v >>> 16); }
  u64(v: number): this { return this.u32(v % 2 ** 32).u32(Math.floor(v / 2 ** 32)); }
  ascii(s: string, length: number): this {
    for (let i = 0; i < length; i++) this.u8(i < s.length ? s.charCodeAt(i) : 0x20);
    return this;
  }
  bytes(b: ArrayLike<number>): this { for (const x of Array.from(b)) this.u8(x); return this; }
  zeros(n: number): this { for (let i = 0; i < n; i++) this.u8(0); return this; }
  get length(): number { return this.#out.length; }
  done(): Uint8Array { return Uint8Array.from(this.#out); }
}

/** Makes the bytes sum to zero modulo 256 by setting the byte at `at`. */
function checksum(table: Uint8Array, at: number, length = table.length): void {
  table[at] = 0;
  let sum = 0;
  for (let i = 0; i < length; i++) sum += table[i]!;
  table[at] = (0x100 - (sum & 0xff)) & 0xff;
}

/** A system description table: the 36-byte header, then `body`. */
export function sdt(signature: string, revision: number, body: Uint8Array): Uint8Array {
  const table = new Bytes()
    .ascii(signature, 4).u32(36 + body.length).u8(revision).u8(0)
    .ascii(OEM_ID, 6).ascii(OEM_TABLE_ID, 8).u32(1).ascii(CREATOR_ID, 4).u32(1)
    .bytes(body).done();
  checksum(table, 9);
  return table;
}

/** A Generic Address Structure for a port. */
function ioRegister(b: Bytes, port: number, bits: number): Bytes {
  const SYSTEM_IO = 1;
  const accessSize = bits <= 8 ? 1 : bits <= 16 ? 2 : 3;
  return b.u8(port ? SYSTEM_IO : 0).u8(port ? bits : 0).u8(0).u8(port ? accessSize : 0).u64(port);
}

export function rsdp(xsdtAddress: number): Uint8Array {
  const table = new Bytes()
    .ascii('RSD PTR ', 8).u8(0).ascii(OEM_ID, 6).u8(2).u32(0)
    .u32(36).u64(xsdtAddress).u8(0).zeros(3).done();
  checksum(table, 8, 20);
  checksum(table, 32);
  return table;
}

export function xsdt(tables: readonly number[]): Uint8Array {
  const body = new Bytes();
  for (const address of tables) body.u64(address);
  return sdt('XSDT', 1, body.done());
}

const FADT_WBINVD = 1 << 0;
const FADT_PWR_BUTTON = 1 << 4; // no fixed-feature power button
const FADT_SLP_BUTTON = 1 << 5; // nor sleep button
const FADT_RESET_REG_SUP = 1 << 10;
const BOOT_ARCH_LEGACY_DEVICES = 1 << 0;
const BOOT_ARCH_8042 = 1 << 1;
const BOOT_ARCH_VGA_NOT_PRESENT = 1 << 2;
const BOOT_ARCH_MSI_NOT_SUPPORTED = 1 << 3;

export function fadt(dsdtAddress: number): Uint8Array {
  const p = ACPI_PM;
  const b = new Bytes()
    .u32(0) //                  FIRMWARE_CTRL: no FACS
    .u32(dsdtAddress) //        DSDT
    .u8(0).u8(0) //             reserved, Preferred_PM_Profile: unspecified
    .u16(p.sciIrq) //           SCI_INT
    .u32(0) //                  SMI_CMD 0: always in ACPI mode, nothing to switch
    .u8(0).u8(0).u8(0).u8(0) // ACPI_ENABLE, ACPI_DISABLE, S4BIOS_REQ, PSTATE_CNT
    .u32(p.pm1aEvent).u32(0).u32(p.pm1aControl).u32(0) // PM1a/b event and control blocks
    .u32(0).u32(0).u32(0).u32(0) //                      PM2 control, PM timer, GPE0, GPE1
    .u8(4).u8(2).u8(0).u8(0) // PM1_EVT_LEN, PM1_CNT_LEN, PM2_CNT_LEN, PM_TMR_LEN (no PM timer)
    .u8(0).u8(0).u8(0).u8(0) // GPE0_BLK_LEN, GPE1_BLK_LEN, GPE1_BASE, CST_CNT
    .u16(0xffff).u16(0xffff) // P_LVL2_LAT, P_LVL3_LAT: C2 and C3 not supported
    .u16(0).u16(0) //           FLUSH_SIZE, FLUSH_STRIDE
    .u8(0).u8(0) //             DUTY_OFFSET, DUTY_WIDTH
    .u8(0).u8(0).u8(0x32) //    DAY_ALRM, MON_ALRM, CENTURY: the RTC's century register
    .u16(BOOT_ARCH_LEGACY_DEVICES | BOOT_ARCH_8042 | BOOT_ARCH_VGA_NOT_PRESENT | BOOT_ARCH_MSI_NOT_SUPPORTED)
    .u8(0) //                   reserved
    .u32(FADT_WBINVD | FADT_PWR_BUTTON | FADT_SLP_BUTTON | FADT_RESET_REG_SUP);
  ioRegister(b, p.reset, 8) //  RESET_REG
    .u8(p.resetValue) //        RESET_VALUE
    .u16(0) //                  ARM_BOOT_ARCH
    .u8(0) //                   FADT minor version: 6.0
    .u64(0) //                  X_FIRMWARE_CTRL
    .u64(dsdtAddress); //       X_DSDT
  ioRegister(b, p.pm1aEvent, 32); // X_PM1a_EVT_BLK
  ioRegister(b, 0, 0); //            X_PM1b_EVT_BLK
  ioRegister(b, p.pm1aControl, 16); // X_PM1a_CNT_BLK
  for (let i = 0; i < 5; i++) ioRegister(b, 0, 0); // X_PM1b_CNT, X_PM2_CNT, X_PM_TMR, X_GPE0, X_GPE1
  ioRegister(b, 0, 0); //            SLEEP_CONTROL_REG (hardware-reduced only)
  ioRegister(b, 0, 0); //            SLEEP_STATUS_REG
  b.ascii('TSVMM', 8); //            hypervisor vendor identity
  return sdt('FACP', 6, b.done());
}

/** A virtio-mmio transport as the DSDT describes it. */
export interface AcpiVirtioDevice {
  base: number;
  size: number;
  /** Its GSI: an IOAPIC pin, signalled as an edge (KVM irqfd). */
  irq: number;
}

/** The identifier Linux's virtio_mmio driver matches in ACPI (drivers/virtio/virtio_mmio.c). */
export const VIRTIO_MMIO_HID = 'LNRO0005';

/**
 * Name (_S5, Package (4) { 5, 5, 0, 0 }): SLP_TYP for soft-off in PM1a and PM1b; then, in \_SB,
 * the PS/2 keyboard and mouse ports of the i8042 and one device per virtio-mmio transport.
 */
export function dsdt(virtio: readonly AcpiVirtioDevice[] = []): Uint8Array {
  const s5 = ACPI_PM.sleepTypeS5;
  const aml = [
    ...name('_S5', packageOf(integer(s5), integer(s5), integer(0), integer(0))),
    ...scope('\\_SB',
      device('PS2K',
        name('_HID', eisaId('PNP0303')),
        name('_CRS', resourceTemplate(ioPort(I8042_DATA_PORT, 1), ioPort(I8042_COMMAND_PORT, 1), irqNoFlags(I8042_KBD_IRQ)))),
      device('PS2M',
        name('_HID', eisaId('PNP0F13')),
        name('_CRS', resourceTemplate(irqNoFlags(I8042_AUX_IRQ)))),
      ...virtio.map((v, i) => device(`VR${i.toString(16).toUpperCase().padStart(2, '0')}`,
        name('_HID', string(VIRTIO_MMIO_HID)),
        name('_UID', integer(i)),
        name('_CRS', resourceTemplate(memory32Fixed(v.base, v.size), edgeInterrupt(v.irq)))))),
  ];
  return sdt('DSDT', 2, Uint8Array.from(aml));
}

const MADT_PCAT_COMPAT = 1;
const MADT_LOCAL_APIC = 0;
const MADT_IO_APIC = 1;
const MADT_INTERRUPT_OVERRIDE = 2;
const MADT_LOCAL_APIC_NMI = 4;
const LAPIC_ENABLED = 1;
const MPS_INTI_LEVEL_ACTIVE_HIGH = 0x000d;

export function madt(cpus: number): Uint8Array {
  const b = new Bytes().u32(APIC_START).u32(MADT_PCAT_COMPAT);
  for (let id = 0; id < cpus; id++) b.u8(MADT_LOCAL_APIC).u8(8).u8(id).u8(id).u32(LAPIC_ENABLED);
  b.u8(MADT_IO_APIC).u8(12).u8(cpus).u8(0).u32(IOAPIC_START).u32(0); // id after the CPUs', GSI base 0
  // ISA IRQs map to the same-numbered IOAPIC pins, as KVM's default routing does; only the SCI
  // is level-triggered, which an override must say.
  b.u8(MADT_INTERRUPT_OVERRIDE).u8(10).u8(0).u8(ACPI_PM.sciIrq).u32(ACPI_PM.sciIrq).u16(MPS_INTI_LEVEL_ACTIVE_HIGH);
  b.u8(MADT_LOCAL_APIC_NMI).u8(6).u8(0xff).u16(0).u8(1); // every CPU's LINT1 is NMI
  return sdt('APIC', 5, b.done());
}

/** Writes all tables into guest memory; returns the RSDP's address. */
export function writeAcpiTables(memory: GuestMemory, cpus: number, virtio: readonly AcpiVirtioDevice[] = []): number {
  let next = ACPI_TABLES_START;
  const place = (table: Uint8Array) => {
    const at = next;
    if (at + table.length > ACPI_TABLES_END) throw new RangeError('ACPI tables do not fit below 1 MiB');
    memory.write(at, table);
    next = Math.ceil((at + table.length) / 16) * 16;
    return at;
  };
  const rsdpAddress = place(new Uint8Array(36)); // reserved first: scanners look at 0xE0000
  const dsdtAddress = place(dsdt(virtio));
  const fadtAddress = place(fadt(dsdtAddress));
  const madtAddress = place(madt(cpus));
  const xsdtAddress = place(xsdt([fadtAddress, madtAddress]));
  memory.write(rsdpAddress, rsdp(xsdtAddress));
  return rsdpAddress;
}
