// The PC devices every tsvmm VM has, on its port-I/O bus: COM1, the i8042 (reset line) and
// the POST port.

import { Bus, MMIO_SPACE, PIO_SPACE } from '../devices/bus.js';
import type { ByteSink, ByteSource } from '../devices/byte-stream.js';
import { I8042, I8042_DATA_PORT, I8042_PORT_COUNT } from '../devices/i8042.js';
import type { IrqLine } from '../devices/irq.js';
import { POST_PORT, PostPort } from '../devices/post-port.js';
import { COM1, SERIAL_PORT_COUNT, Serial16550 } from '../devices/serial-16550.js';

export interface LegacyDevices {
  pio: Bus;
  mmio: Bus;
  serial: Serial16550;
  i8042: I8042;
  post: PostPort;
}

export interface LegacyDeviceWiring {
  irq(line: number): IrqLine;
  consoleOut: ByteSink;
  consoleIn: ByteSource;
  onReset(): void;
}

export function createLegacyDevices(wiring: LegacyDeviceWiring): LegacyDevices {
  const pio = new Bus('port I/O', PIO_SPACE);
  const mmio = new Bus('MMIO', MMIO_SPACE);
  const serial = new Serial16550(wiring.irq(COM1.irq), wiring.consoleOut, wiring.consoleIn);
  const i8042 = new I8042(wiring.onReset);
  pio.insert('serial (COM1)', COM1.port, SERIAL_PORT_COUNT, serial);
  const post = new PostPort();
  pio.insert('i8042', I8042_DATA_PORT, I8042_PORT_COUNT, i8042);
  pio.insert('POST port', POST_PORT, 1, post);
  return { pio, mmio, serial, i8042, post };
}
