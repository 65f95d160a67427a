// The PS/2 controller (i8042) at ports 0x60/0x64: a controller with its keyboard and AUX (mouse)
// ports, and no keyboard or mouse plugged in. It answers what Linux's i8042 driver probes
// (drivers/input/serio/i8042.c): the status register with the "not inhibited" bit, the command
// byte including the port-disable bits that commands 0xa7/0xa8/0xad/0xae toggle, the self-tests,
// and the keyboard/AUX loopback commands 0xd2/0xd3 with the interrupt (IRQ 1 or 12) their byte
// raises. A byte sent to a device (through 0x60, or 0xd4 for AUX) comes back as 0xfe with the
// time-out bit, as a real controller reports an empty port, so drivers give up at once instead
// of waiting. Pulsing reset (command 0xfe, or clearing bit 0 of the output port) is how a PC
// guest asks to be rebooted; tsvmm, like Firecracker, takes it as the guest's request to end the VM.

import type { BusDevice } from './bus.js';
import type { IrqLine } from './irq.js';
import { array, byte, int, object, optional, type Persist, type StateReader } from './persist.js';

export const I8042_DATA_PORT = 0x60;
export const I8042_COMMAND_PORT = 0x64;
/** The device covers 0x60-0x64; 0x61-0x63 belong to other legacy chips and read as zero here. */
export const I8042_PORT_COUNT = 5;
export const I8042_KBD_IRQ = 1;
export const I8042_AUX_IRQ = 12;

const CMD_READ_COMMAND_BYTE = 0x20;
const CMD_WRITE_COMMAND_BYTE = 0x60;
const CMD_DISABLE_AUX = 0xa7;
const CMD_ENABLE_AUX = 0xa8;
const CMD_TEST_AUX = 0xa9;
const CMD_SELF_TEST = 0xaa;
const CMD_TEST_KBD = 0xab;
const CMD_DISABLE_KBD = 0xad;
const CMD_ENABLE_KBD = 0xae;
const CMD_READ_OUTPUT_PORT = 0xd0;
const CMD_WRITE_OUTPUT_PORT = 0xd1;
const CMD_WRITE_KBD_OUTPUT = 0xd2;
const CMD_WRITE_AUX_OUTPUT = 0xd3;
const CMD_WRITE_AUX_DEVICE = 0xd4;
const CMD_PULSE_RESET = 0xfe;

const STATUS_OUTPUT_FULL = 0x01;
const STATUS_SYSTEM = 0x04;
const STATUS_COMMAND = 0x08;
/** "Keyboard not inhibited" (the keylock switch is open); Linux warns "Keylock active" without it. */
const STATUS_UNLOCKED = 0x10;
const STATUS_AUX_DATA = 0x20;
const STATUS_TIMEOUT = 0x40;

const CTR_KBD_INT = 0x01;
const CTR_AUX_INT = 0x02;
const CTR_SYSTEM = 0x04;
const CTR_KBD_DISABLE = 0x10;
const CTR_AUX_DISABLE = 0x20;

const SELF_TEST_OK = 0x55;
const PORT_TEST_OK = 0x00;
/** What a controller returns for a byte no device clocked in. */
const NO_DEVICE = 0xfe;
const OUTPUT_PORT_RESET_LINE = 0x01;
/**
 * Bytes waiting for the guest to read port 0x60. The chip holds one; a few more let a driver's
 * command sequence go unread for a while, and the cap keeps a guest that only ever writes
 * commands from growing the queue without bound.
 */
export const I8042_OUTPUT_LIMIT = 16;

/** An output byte and where it came from, packed: bits 0-7 the byte, 8 from AUX, 9 time-out. */
const FROM_AUX = 0x100;
const TIMED_OUT = 0x200;

export interface I8042State {
  commandByte: number;
  /** The status bits the controller keeps (system flag, last write was a command). */
  status: number;
  pending: number | undefined;
  /** Bytes waiting on port 0x60, each with its FROM_AUX/TIMED_OUT flags. */
  output: number[];
}

export interface I8042Wiring {
  onReset(): void;
  kbdIrq?: IrqLine;
  auxIrq?: IrqLine;
}

const NO_IRQ: IrqLine = { set() {} };

/** Checks an I8042State read from a snapshot. */
export const readI8042State: StateReader<I8042State> = object({
  commandByte: byte, status: byte, pending: optional(byte),
  output: array(int(0, 0xff | FROM_AUX | TIMED_OUT), I8042_OUTPUT_LIMIT),
});

export class I8042 implements BusDevice, Persist<I8042State> {
  #commandByte = CTR_KBD_INT | CTR_SYSTEM | 0x40; // keyboard interrupt on, system flag, translation
  #status = STATUS_SYSTEM;
  /** A command waiting for its data byte on port 0x60. */
  #pending: number | undefined;
  #output: number[] = [];
  readonly #onReset: () => void;
  readonly #kbdIrq: IrqLine;
  readonly #auxIrq: IrqLine;
  #kbdLevel = false;
  #auxLevel = false;

  constructor(wiring: I8042Wiring) {
    this.#onReset = wiring.onReset;
    this.#kbdIrq = wiring.kbdIrq ?? NO_IRQ;
    this.#auxIrq = wiring.auxIrq ?? NO_IRQ;
  }

  read(offset: number, data: Uint8Array): void {
    data.fill(0);
    if (offset === I8042_COMMAND_PORT - I8042_DATA_PORT) {
      data[0] = this.#statusByte();
    } else if (offset === 0) {
      const entry = this.#output.shift();
      data[0] = (entry ?? 0) & 0xff;
      // Each byte is its own interrupt: the lines drop, and rise again for the next byte.
      this.#setLines(false, false);
      this.#updateIrq();
    }
  }

  write(offset: number, data: Uint8Array): void {
    const value = data[0] ?? 0;
    if (offset === I8042_COMMAND_PORT - I8042_DATA_PORT) this.#command(value);
    else if (offset === 0) this.#data(value);
  }

  #statusByte(): number {
    const head = this.#output[0];
    let status = this.#status | STATUS_UNLOCKED;
    if (head !== undefined) {
      status |= STATUS_OUTPUT_FULL;
      if (head & FROM_AUX) status |= STATUS_AUX_DATA;
      if (head & TIMED_OUT) status |= STATUS_TIMEOUT;
    }
    return status;
  }

  #push(entry: number): void {
    if (this.#output.length < I8042_OUTPUT_LIMIT) this.#output.push(entry);
    this.#updateIrq();
  }

  #updateIrq(): void {
    const head = this.#output[0];
    const aux = head !== undefined && (head & FROM_AUX) !== 0;
    this.#setLines(
      head !== undefined && !aux && (this.#commandByte & CTR_KBD_INT) !== 0,
      aux && (this.#commandByte & CTR_AUX_INT) !== 0,
    );
  }

  #setLines(kbd: boolean, aux: boolean): void {
    if (kbd !== this.#kbdLevel) { this.#kbdLevel = kbd; this.#kbdIrq.set(kbd); }
    if (aux !== this.#auxLevel) { this.#auxLevel = aux; this.#auxIrq.set(aux); }
  }

  #command(command: number): void {
    this.#status |= STATUS_COMMAND;
    switch (command) {
      case CMD_READ_COMMAND_BYTE:
        this.#push(this.#commandByte);
        break;
      case CMD_WRITE_COMMAND_BYTE:
      case CMD_WRITE_OUTPUT_PORT:
      case CMD_WRITE_KBD_OUTPUT:
      case CMD_WRITE_AUX_OUTPUT:
      case CMD_WRITE_AUX_DEVICE:
        this.#pending = command;
        break;
      case CMD_DISABLE_AUX:
        this.#commandByte |= CTR_AUX_DISABLE;
        break;
      case CMD_ENABLE_AUX:
        this.#commandByte &= ~CTR_AUX_DISABLE;
        break;
      case CMD_DISABLE_KBD:
        this.#commandByte |= CTR_KBD_DISABLE;
        break;
      case CMD_ENABLE_KBD:
        this.#commandByte &= ~CTR_KBD_DISABLE;
        break;
      case CMD_SELF_TEST:
        this.#status |= STATUS_SYSTEM;
        this.#push(SELF_TEST_OK);
        break;
      case CMD_TEST_KBD:
      case CMD_TEST_AUX:
        this.#push(PORT_TEST_OK);
        break;
      case CMD_READ_OUTPUT_PORT:
        this.#push(OUTPUT_PORT_RESET_LINE);
        break;
      case CMD_PULSE_RESET:
        this.#onReset();
        break;
      default:
        break; // other commands (input port, test inputs, pulses of no line) have no effect here
    }
  }

  #data(value: number): void {
    this.#status &= ~STATUS_COMMAND;
    const pending = this.#pending;
    this.#pending = undefined;
    switch (pending) {
      case CMD_WRITE_COMMAND_BYTE:
        this.#commandByte = value;
        this.#status = (this.#status & ~STATUS_SYSTEM) | (value & CTR_SYSTEM);
        this.#updateIrq();
        break;
      case CMD_WRITE_OUTPUT_PORT:
        if (!(value & OUTPUT_PORT_RESET_LINE)) this.#onReset();
        break;
      case CMD_WRITE_KBD_OUTPUT:
        this.#push(value);
        break;
      case CMD_WRITE_AUX_OUTPUT:
        this.#push(value | FROM_AUX);
        break;
      case CMD_WRITE_AUX_DEVICE:
        this.#push(NO_DEVICE | FROM_AUX | TIMED_OUT);
        break;
      default:
        this.#push(NO_DEVICE | TIMED_OUT); // a byte for the keyboard, which is not there
    }
  }

  save(): I8042State {
    return { commandByte: this.#commandByte, status: this.#status, pending: this.#pending, output: [...this.#output] };
  }

  restore(state: I8042State): void {
    this.#commandByte = state.commandByte & 0xff;
    this.#status = state.status & (STATUS_SYSTEM | STATUS_COMMAND);
    this.#pending = state.pending;
    this.#output = state.output.slice(0, I8042_OUTPUT_LIMIT).map((b) => b & (0xff | FROM_AUX | TIMED_OUT));
    // The interrupt controllers' own state comes back with the VM's: take the lines' levels as
    // they were, without raising a second edge for a byte whose interrupt was already delivered.
    const head = this.#output[0];
    const aux = head !== undefined && (head & FROM_AUX) !== 0;
    this.#kbdLevel = head !== undefined && !aux && (this.#commandByte & CTR_KBD_INT) !== 0;
    this.#auxLevel = aux && (this.#commandByte & CTR_AUX_INT) !== 0;
  }
}
