// The PS/2 controller (i8042) at ports 0x60/0x64, kept to what guests use it for here: the
// command byte, self-tests a driver runs while probing, and the CPU reset line. Pulsing reset
// (command 0xfe, or clearing bit 0 of the output port) is how a PC guest asks to be rebooted;
// tsvmm, like Firecracker, takes it as the guest's request to end the VM.

import type { BusDevice } from './bus.js';

export const I8042_DATA_PORT = 0x60;
export const I8042_COMMAND_PORT = 0x64;
/** The device covers 0x60-0x64; 0x61-0x63 belong to other legacy chips and read as zero here. */
export const I8042_PORT_COUNT = 5;

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
const CMD_PULSE_RESET = 0xfe;

const STATUS_OUTPUT_FULL = 0x01;
const STATUS_SYSTEM = 0x04;
const STATUS_COMMAND = 0x08;

const SELF_TEST_OK = 0x55;
/**
 * Bytes waiting for the guest to read port 0x60. The chip holds one; a few more let a driver's
 * command sequence go unread for a while, and the cap keeps a guest that only ever writes
 * commands from growing the queue without bound.
 */
export const I8042_OUTPUT_LIMIT = 16;
const OUTPUT_PORT_RESET_LINE = 0x01;

export interface I8042State {
  commandByte: number;
  status: number;
  pending: number | undefined;
  output: number[];
}

export class I8042 implements BusDevice {
  #commandByte = 0x45; // keyboard interrupt on, system flag, translation
  #status = STATUS_SYSTEM;
  /** A command waiting for its data byte on port 0x60. */
  #pending: number | undefined;
  #output: number[] = [];

  constructor(private readonly onReset: () => void) {}

  read(offset: number, data: Uint8Array): void {
    data.fill(0);
    if (offset === I8042_COMMAND_PORT - I8042_DATA_PORT) {
      data[0] = this.#status | (this.#output.length ? STATUS_OUTPUT_FULL : 0);
    } else if (offset === 0) {
      data[0] = this.#output.shift() ?? 0;
    }
  }

  write(offset: number, data: Uint8Array): void {
    const value = data[0] ?? 0;
    if (offset === I8042_COMMAND_PORT - I8042_DATA_PORT) this.#command(value);
    else if (offset === 0) this.#data(value);
  }

  #command(command: number): void {
    this.#status |= STATUS_COMMAND;
    switch (command) {
      case CMD_READ_COMMAND_BYTE:
        this.#reply(this.#commandByte);
        break;
      case CMD_WRITE_COMMAND_BYTE:
      case CMD_WRITE_OUTPUT_PORT:
        this.#pending = command;
        break;
      case CMD_SELF_TEST:
        this.#reply(SELF_TEST_OK);
        break;
      case CMD_TEST_KBD:
      case CMD_TEST_AUX:
        this.#reply(0x00);
        break;
      case CMD_READ_OUTPUT_PORT:
        this.#reply(OUTPUT_PORT_RESET_LINE);
        break;
      case CMD_PULSE_RESET:
        this.onReset();
        break;
      case CMD_DISABLE_AUX:
      case CMD_ENABLE_AUX:
      case CMD_DISABLE_KBD:
      case CMD_ENABLE_KBD:
      default:
        break;
    }
  }

  #reply(byte: number): void {
    if (this.#output.length < I8042_OUTPUT_LIMIT) this.#output.push(byte);
  }

  #data(value: number): void {
    this.#status &= ~STATUS_COMMAND;
    const pending = this.#pending;
    this.#pending = undefined;
    if (pending === CMD_WRITE_COMMAND_BYTE) this.#commandByte = value;
    else if (pending === CMD_WRITE_OUTPUT_PORT && !(value & OUTPUT_PORT_RESET_LINE)) this.onReset();
    // A byte for the keyboard itself: there is none, so nothing answers.
  }

  save(): I8042State {
    return { commandByte: this.#commandByte, status: this.#status, pending: this.#pending, output: [...this.#output] };
  }

  restore(state: I8042State): void {
    this.#commandByte = state.commandByte & 0xff;
    this.#status = state.status & 0xff;
    this.#pending = state.pending;
    this.#output = state.output.slice(0, I8042_OUTPUT_LIMIT).map((b) => b & 0xff);
  }
}
