// A 16550A UART, the PC's COM port, as far as a guest's driver can tell: eight registers, a
// receive FIFO, divisor latch, loopback (Linux's 8250 driver probes with it) and the two
// interrupts a console needs, received data and transmitter empty. Transmission is instant.
// Writes to the transmit register may arrive late: the VMM has KVM queue them (vmm/builder.ts) and
// replays them, in order, before the guest's next access that exits, so a driver that reads a
// register before relying on a write (Linux's polls LSR or IIR) sees no difference.

import type { BusDevice } from './bus.js';
import type { ByteSink, ByteSource } from './byte-stream.js';
import { NULL_SOURCE } from './byte-stream.js';
import { array, bool, byte, object, type Persist, type StateReader } from './persist.js';
import type { IrqLine } from './irq.js';

// Register offsets from the base port. Some share an offset and differ by direction or DLAB.
const DATA = 0; // RBR (read), THR (write), DLL (DLAB)
/** The transmit register's offset, whose writes the VMM may have KVM queue (vmm/builder.ts). */
export const UART_THR = DATA;
const IER = 1; //  interrupt enable, DLM (DLAB)
const IIR = 2; //  interrupt identification (read), FCR (write)
const LCR = 3;
const MCR = 4;
const LSR = 5;
const MSR = 6;
const SCR = 7;

const IER_RDA = 0x01;
const IER_THRE = 0x02;
const IER_MASK = 0x0f;

const IIR_NONE = 0x01;
const IIR_THRE = 0x02;
const IIR_RDA = 0x04;
const IIR_FIFO_ENABLED = 0xc0;

const FCR_ENABLE = 0x01;
const FCR_CLEAR_RX = 0x02;

const LCR_DLAB = 0x80;

const MCR_DTR = 0x01;
const MCR_RTS = 0x02;
const MCR_OUT1 = 0x04;
const MCR_OUT2 = 0x08;
const MCR_LOOP = 0x10;
const MCR_MASK = 0x1f;

const LSR_DR = 0x01;
const LSR_OE = 0x02;
const LSR_THRE = 0x20;
const LSR_TEMT = 0x40;

const MSR_CTS = 0x10;
const MSR_DSR = 0x20;
const MSR_RI = 0x40;
const MSR_DCD = 0x80;
/** Carrier, data set ready and clear to send: a terminal is attached. */
const MSR_CONNECTED = MSR_DCD | MSR_DSR | MSR_CTS;

export const RX_FIFO_SIZE = 64;
export const SERIAL_PORT_COUNT = 8;

/** Register state: what a snapshot of the UART holds. */
export interface Serial16550State {
  ier: number;
  lcr: number;
  mcr: number;
  lsr: number;
  scr: number;
  dll: number;
  dlm: number;
  fcr: number;
  threPending: boolean;
  rx: number[];
}

/** Checks a Serial16550State read from a snapshot. */
export const readSerial16550State: StateReader<Serial16550State> = object({
  ier: byte, lcr: byte, mcr: byte, lsr: byte, scr: byte, dll: byte, dlm: byte, fcr: byte,
  threPending: bool, rx: array(byte, RX_FIFO_SIZE),
});

export class Serial16550 implements BusDevice, Persist<Serial16550State> {
  #ier = 0;
  #lcr = 0;
  #mcr = MCR_OUT2;
  #lsr = LSR_THRE | LSR_TEMT;
  #scr = 0;
  #dll = 0x0c; // 9600 baud, as firmware leaves it
  #dlm = 0;
  #fcr = 0;
  /** THRE interrupt latched until the guest reads IIR or writes THR. */
  #threPending = false;
  #rx: number[] = [];
  #irqLevel = false;
  readonly #scratch = new Uint8Array(RX_FIFO_SIZE);

  constructor(
    private readonly irq: IrqLine,
    private readonly output: ByteSink,
    private readonly input: ByteSource = NULL_SOURCE,
  ) {}

  /** Moves waiting input into the receive FIFO; the VMM calls this when it is told input arrived. */
  pollInput(): void {
    const room = RX_FIFO_SIZE - this.#rx.length;
    if (room <= 0 || this.#mcr & MCR_LOOP) return;
    const n = this.input.read(this.#scratch.subarray(0, room));
    for (let i = 0; i < n; i++) this.#rx.push(this.#scratch[i]!);
    if (n > 0) this.#update();
  }

  /** Bytes for the guest to receive, as if typed (tests and the console use pollInput). */
  enqueue(bytes: Iterable<number>): void {
    for (const b of bytes) {
      if (this.#rx.length >= RX_FIFO_SIZE) {
        this.#lsr |= LSR_OE;
        break;
      }
      this.#rx.push(b & 0xff);
    }
    this.#update();
  }

  read(offset: number, data: Uint8Array): void {
    data.fill(0);
    data[0] = this.#readRegister(offset);
  }

  write(offset: number, data: Uint8Array): void {
    this.#writeRegister(offset, data[0] ?? 0);
  }

  #readRegister(offset: number): number {
    switch (offset) {
      case DATA: {
        if (this.#lcr & LCR_DLAB) return this.#dll;
        const byte = this.#rx.shift() ?? 0;
        if (this.#rx.length === 0) this.pollInput();
        this.#update();
        return byte;
      }
      case IER:
        return this.#lcr & LCR_DLAB ? this.#dlm : this.#ier;
      case IIR: {
        const iir = this.#identify();
        if (iir === IIR_THRE) {
          this.#threPending = false;
          this.#update();
        }
        return iir | (this.#fcr & FCR_ENABLE ? IIR_FIFO_ENABLED : 0);
      }
      case LCR:
        return this.#lcr;
      case MCR:
        return this.#mcr;
      case LSR: {
        if (this.#rx.length === 0) this.pollInput();
        const lsr = this.#lsr | (this.#rx.length > 0 ? LSR_DR : 0);
        this.#lsr &= ~LSR_OE; // error bits clear on read
        return lsr;
      }
      case MSR:
        return this.#mcr & MCR_LOOP ? this.#loopbackModemStatus() : MSR_CONNECTED;
      case SCR:
        return this.#scr;
      default:
        return 0xff;
    }
  }

  #writeRegister(offset: number, value: number): void {
    switch (offset) {
      case DATA:
        if (this.#lcr & LCR_DLAB) {
          this.#dll = value;
        } else if (this.#mcr & MCR_LOOP) {
          // Loopback: what the guest sends comes straight back to it.
          if (this.#rx.length < RX_FIFO_SIZE) this.#rx.push(value);
          else this.#lsr |= LSR_OE;
          this.#threPending = true;
          this.#update();
        } else {
          this.output.write(value);
          this.#threPending = true;
          this.#update();
        }
        break;
      case IER:
        if (this.#lcr & LCR_DLAB) {
          this.#dlm = value;
        } else {
          const enablingThre = !(this.#ier & IER_THRE) && value & IER_THRE;
          this.#ier = value & IER_MASK;
          // The transmitter is always empty, so enabling its interrupt raises it at once.
          if (enablingThre) this.#threPending = true;
          this.#update();
        }
        break;
      case IIR: // FCR
        this.#fcr = value;
        if (value & FCR_CLEAR_RX) this.#rx = [];
        this.#update();
        break;
      case LCR:
        this.#lcr = value;
        break;
      case MCR:
        this.#mcr = value & MCR_MASK;
        this.#update();
        break;
      case SCR:
        this.#scr = value;
        break;
      default:
        // LSR and MSR are read-only; a write to them is ignored as on hardware.
        break;
    }
  }

  #loopbackModemStatus(): number {
    const m = this.#mcr;
    return (m & MCR_RTS ? MSR_CTS : 0) | (m & MCR_DTR ? MSR_DSR : 0)
      | (m & MCR_OUT1 ? MSR_RI : 0) | (m & MCR_OUT2 ? MSR_DCD : 0);
  }

  /** The highest-priority pending interrupt, as IIR reports it. */
  #identify(): number {
    if (this.#ier & IER_RDA && this.#rx.length > 0) return IIR_RDA;
    if (this.#ier & IER_THRE && this.#threPending) return IIR_THRE;
    return IIR_NONE;
  }

  #update(): void {
    const level = this.#identify() !== IIR_NONE;
    if (level !== this.#irqLevel) {
      this.#irqLevel = level;
      this.irq.set(level);
    }
  }

  save(): Serial16550State {
    return {
      ier: this.#ier, lcr: this.#lcr, mcr: this.#mcr, lsr: this.#lsr, scr: this.#scr,
      dll: this.#dll, dlm: this.#dlm, fcr: this.#fcr, threPending: this.#threPending, rx: [...this.#rx],
    };
  }

  restore(state: Serial16550State): void {
    this.#ier = state.ier & IER_MASK;
    this.#lcr = state.lcr & 0xff;
    this.#mcr = state.mcr & MCR_MASK;
    this.#lsr = (state.lsr & 0xff) | LSR_THRE | LSR_TEMT;
    this.#scr = state.scr & 0xff;
    this.#dll = state.dll & 0xff;
    this.#dlm = state.dlm & 0xff;
    this.#fcr = state.fcr & 0xff;
    this.#threPending = state.threPending;
    this.#rx = state.rx.slice(0, RX_FIFO_SIZE).map((b) => b & 0xff);
    this.#irqLevel = false;
    this.#update();
  }
}

export const COM1 = { port: 0x3f8, irq: 4 } as const;
