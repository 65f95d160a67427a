// The PC's real-time clock in CMOS (MC146818), ports 0x70 (index) and 0x71 (data): the guest
// reads the host's wall-clock time from it at boot. Time registers come from the host clock
// plus an offset, so a guest that sets the clock moves only its own time. No alarms or periodic
// interrupts: Linux uses the LAPIC timer and kvmclock for those.

import type { BusDevice } from './bus.js';
import { array, byte, finite, int, object, type Persist, type StateReader } from './persist.js';

export const RTC_PORT = 0x70;
export const RTC_PORT_COUNT = 2;

const SECONDS = 0x00;
const MINUTES = 0x02;
const HOURS = 0x04;
const WEEKDAY = 0x06;
const DAY = 0x07;
const MONTH = 0x08;
const YEAR = 0x09;
const STATUS_A = 0x0a;
const STATUS_B = 0x0b;
const STATUS_C = 0x0c;
const STATUS_D = 0x0d;
const CENTURY = 0x32;

const B_24_HOUR = 0x02;
const B_BINARY = 0x04;
const D_VALID_RAM_AND_TIME = 0x80;
const A_DIVIDER_32KHZ = 0x20;
const A_RATE_1024HZ = 0x06;
const NMI_DISABLE = 0x80;
const CMOS_SIZE = 128;

export interface RtcCmosState {
  index: number;
  /** Guest time minus host time, in ms. */
  offsetMs: number;
  ram: number[];
}

/** Checks an RtcCmosState read from a snapshot. */
export const readRtcCmosState: StateReader<RtcCmosState> = object({
  index: int(0, CMOS_SIZE - 1), offsetMs: finite, ram: array(byte, CMOS_SIZE),
});

export class RtcCmos implements BusDevice, Persist<RtcCmosState> {
  #index = 0;
  #offsetMs = 0;
  readonly #ram = new Uint8Array(CMOS_SIZE);

  constructor(private readonly now: () => number = Date.now) {
    this.#ram[STATUS_A] = A_DIVIDER_32KHZ | A_RATE_1024HZ;
    this.#ram[STATUS_B] = B_24_HOUR; // BCD, 24-hour: what a PC BIOS leaves
    this.#ram[STATUS_D] = D_VALID_RAM_AND_TIME;
  }

  read(offset: number, data: Uint8Array): void {
    data.fill(0);
    data[0] = offset === 0 ? 0xff : this.#readRegister(this.#index);
  }

  write(offset: number, data: Uint8Array): void {
    const value = data[0] ?? 0;
    if (offset === 0) this.#index = value & ~NMI_DISABLE & (CMOS_SIZE - 1);
    else this.#writeRegister(this.#index, value);
  }

  #time(): Date {
    return new Date(this.now() + this.#offsetMs);
  }

  #encode(value: number): number {
    return this.#ram[STATUS_B]! & B_BINARY ? value : ((Math.floor(value / 10) << 4) | (value % 10));
  }

  #decode(value: number): number {
    return this.#ram[STATUS_B]! & B_BINARY ? value : (value >> 4) * 10 + (value & 0x0f);
  }

  #hours(h: number): number {
    if (this.#ram[STATUS_B]! & B_24_HOUR) return this.#encode(h);
    const pm = h >= 12 ? 0x80 : 0;
    return this.#encode(h % 12 === 0 ? 12 : h % 12) | pm;
  }

  #readRegister(index: number): number {
    const t = this.#time();
    switch (index) {
      case SECONDS: return this.#encode(t.getUTCSeconds());
      case MINUTES: return this.#encode(t.getUTCMinutes());
      case HOURS: return this.#hours(t.getUTCHours());
      case WEEKDAY: return this.#encode(t.getUTCDay() + 1);
      case DAY: return this.#encode(t.getUTCDate());
      case MONTH: return this.#encode(t.getUTCMonth() + 1);
      case YEAR: return this.#encode(t.getUTCFullYear() % 100);
      case CENTURY: return this.#encode(Math.floor(t.getUTCFullYear() / 100));
      case STATUS_A: return this.#ram[STATUS_A]!; // update-in-progress never set: reads are atomic here
      case STATUS_C: return 0; // no interrupt flags pending
      default: return this.#ram[index]!;
    }
  }

  #writeRegister(index: number, value: number): void {
    switch (index) {
      case SECONDS: case MINUTES: case HOURS: case DAY: case MONTH: case YEAR: case CENTURY:
        this.#setTimeField(index, value);
        return;
      case STATUS_C: case STATUS_D:
        return; // read-only
      default:
        this.#ram[index] = value;
    }
  }

  /** The guest sets its clock one field at a time; keep the new time as an offset from the host's. */
  #setTimeField(index: number, value: number): void {
    const t = this.#time();
    const fields = {
      year: t.getUTCFullYear(), month: t.getUTCMonth(), day: t.getUTCDate(),
      hours: t.getUTCHours(), minutes: t.getUTCMinutes(), seconds: t.getUTCSeconds(),
    };
    if (index === HOURS) {
      const pm = !(this.#ram[STATUS_B]! & B_24_HOUR) && value & 0x80;
      const h = this.#decode(value & 0x7f);
      fields.hours = this.#ram[STATUS_B]! & B_24_HOUR ? h : (h % 12) + (pm ? 12 : 0);
    } else {
      const v = this.#decode(value);
      if (index === SECONDS) fields.seconds = v;
      else if (index === MINUTES) fields.minutes = v;
      else if (index === DAY) fields.day = v;
      else if (index === MONTH) fields.month = v - 1;
      else if (index === YEAR) fields.year = Math.floor(fields.year / 100) * 100 + v;
      else fields.year = v * 100 + (fields.year % 100);
    }
    const target = Date.UTC(fields.year, fields.month, fields.day, fields.hours, fields.minutes, fields.seconds);
    this.#offsetMs = target - Math.floor(this.now() / 1000) * 1000;
  }

  save(): RtcCmosState {
    return { index: this.#index, offsetMs: this.#offsetMs, ram: Array.from(this.#ram) };
  }

  restore(state: RtcCmosState): void {
    this.#index = state.index & (CMOS_SIZE - 1);
    this.#offsetMs = state.offsetMs;
    this.#ram.set(state.ram.slice(0, CMOS_SIZE).map((b) => b & 0xff));
  }
}
