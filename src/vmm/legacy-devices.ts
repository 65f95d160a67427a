// The PC devices every tsvmm VM has, on its port-I/O bus: COM1, the i8042 (PS/2 ports, reset line), the
// CMOS RTC, the ACPI power-management registers and the POST port.

import { Bus, MMIO_SPACE, PIO_SPACE, type DeviceFault } from '../devices/bus.js';
import type { ByteSink, ByteSource } from '../devices/byte-stream.js';
import { I8042, I8042_AUX_IRQ, I8042_DATA_PORT, I8042_KBD_IRQ, I8042_PORT_COUNT, readI8042State, type I8042State } from '../devices/i8042.js';
import type { IrqLine } from '../devices/irq.js';
import { POST_PORT, PostPort } from '../devices/post-port.js';
import { readRtcCmosState, RTC_PORT, RTC_PORT_COUNT, RtcCmos, type RtcCmosState } from '../devices/rtc-cmos.js';
import { AcpiPm, readAcpiPmState, type AcpiPmState } from '../devices/acpi-pm.js';
import { byte, object, type StateReader } from '../devices/persist.js';
import { FaultLog } from '../devices/fault-log.js';
import { ACPI_PM } from '../arch/x86/acpi.js';
import { COM1, readSerial16550State, SERIAL_PORT_COUNT, Serial16550, type Serial16550State } from '../devices/serial-16550.js';

export interface LegacyDevices {
  pio: Bus;
  mmio: Bus;
  serial: Serial16550;
  i8042: I8042;
  post: PostPort;
  rtc: RtcCmos;
  acpiPm: AcpiPm;
}

/** The legacy devices' state, as a snapshot holds it (JSON-safe). */
export interface LegacyDeviceState {
  serial: Serial16550State;
  i8042: I8042State;
  rtc: RtcCmosState;
  acpiPm: AcpiPmState;
  postCode: number;
}

/** Checks a LegacyDeviceState read from a snapshot, field by field. */
export const readLegacyDeviceState: StateReader<LegacyDeviceState> = object({
  serial: readSerial16550State, i8042: readI8042State, rtc: readRtcCmosState, acpiPm: readAcpiPmState, postCode: byte,
});

export function saveLegacyDevices(d: LegacyDevices): LegacyDeviceState {
  return { serial: d.serial.save(), i8042: d.i8042.save(), rtc: d.rtc.save(), acpiPm: d.acpiPm.save(), postCode: d.post.save() };
}

export function restoreLegacyDevices(d: LegacyDevices, state: LegacyDeviceState): void {
  d.serial.restore(state.serial);
  d.i8042.restore(state.i8042);
  d.rtc.restore(state.rtc);
  d.acpiPm.restore(state.acpiPm);
  d.post.restore(state.postCode);
}

export interface LegacyDeviceWiring {
  irq(line: number): IrqLine;
  consoleOut: ByteSink;
  consoleIn: ByteSource;
  /** The guest asked for a reset: i8042 reset line or the ACPI reset register. */
  onReset(source: 'i8042' | 'acpi'): void;
  onPowerOff(): void;
  /** A device method threw on a guest access; the bus has caught it and the VM goes on. */
  onDeviceFault(fault: DeviceFault): void;
  log(message: string): void;
}

export function createLegacyDevices(wiring: LegacyDeviceWiring): LegacyDevices {
  const pio = new Bus('port I/O', PIO_SPACE, wiring.onDeviceFault);
  const mmio = new Bus('MMIO', MMIO_SPACE, wiring.onDeviceFault);
  const serial = new Serial16550(wiring.irq(COM1.irq), wiring.consoleOut, wiring.consoleIn);
  const i8042 = new I8042({ onReset: () => wiring.onReset('i8042'), kbdIrq: wiring.irq(I8042_KBD_IRQ), auxIrq: wiring.irq(I8042_AUX_IRQ) });
  pio.insert('serial (COM1)', COM1.port, SERIAL_PORT_COUNT, serial);
  const post = new PostPort();
  const rtc = new RtcCmos();
  const sleepTypes = new FaultLog('ACPI sleep requests', wiring.log);
  const acpiPm = new AcpiPm({
    onPowerOff: wiring.onPowerOff,
    onReset: () => wiring.onReset('acpi'),
    // Once per sleep type: a guest can ask again and again.
    onUnsupportedSleep: (type) => sleepTypes.report(`S${type}`, () => `guest asked for ACPI sleep type ${type}, which tsvmm does not implement`),
  });
  pio.insert('i8042', I8042_DATA_PORT, I8042_PORT_COUNT, i8042);
  pio.insert('RTC', RTC_PORT, RTC_PORT_COUNT, rtc);
  pio.insert('POST port', POST_PORT, 1, post);
  pio.insert('ACPI PM', ACPI_PM.base, ACPI_PM.length, acpiPm);
  return { pio, mmio, serial, i8042, post, rtc, acpiPm };
}
