// An address space of device ranges (one for port I/O, one for MMIO). A device sees only reads
// and writes at an offset inside its own range. Ranges that are empty, overflow or overlap are
// refused when inserted; an access nobody claims is answered like an empty bus and reported to
// the caller. A device model that throws does not end the VM (as in Firecracker, a failed bus
// access is logged and the guest goes on): the bus catches it, tells the device (a virtio device
// then shows DEVICE_NEEDS_RESET) and reports it through `onFault`.

import { TsvmmError } from '../errors.js';

export interface BusDevice {
  /** Fills `data` (1, 2, 4 or 8 bytes) with the value at `offset` within the device's range. */
  read(offset: number, data: Uint8Array): void;
  write(offset: number, data: Uint8Array): void;
  /**
   * One of this device's read or write methods threw, on an access the guest made: put the
   * device in a state the guest can see is broken. Must not throw.
   */
  fault?(): void;
}

/** A device method that threw on a guest access. */
export interface DeviceFault {
  device: string;
  write: boolean;
  offset: number;
  error: unknown;
}

/** What the exit loop needs of an address space: the Bus itself, or an AP's remote view of it. */
export interface IoSpace {
  /** Fills `data` from the device at `address`; false if no device claimed it. */
  read(address: number, data: Uint8Array): boolean;
  write(address: number, data: Uint8Array): boolean;
}

export class BusError extends TsvmmError {
  constructor(message: string) {
    super('BUS_RANGE', message);
    this.name = 'BusError';
  }
}

interface Range {
  readonly base: number;
  readonly end: number;
  readonly name: string;
  readonly device: BusDevice;
}

const hex = (n: number) => `0x${n.toString(16)}`;

export class Bus implements IoSpace {
  readonly name: string;
  readonly #limit: number;
  #ranges: Range[] = [];
  #last: Range | undefined;
  /** Device methods that threw, since the bus was made. */
  faults = 0;
  readonly #onFault: (fault: DeviceFault) => void;

  constructor(name: string, limit: number, onFault: (fault: DeviceFault) => void = () => {}) {
    this.name = name;
    this.#limit = limit;
    this.#onFault = onFault;
  }

  insert(name: string, base: number, length: number, device: BusDevice): void {
    if (!Number.isSafeInteger(base) || !Number.isSafeInteger(length) || base < 0 || length <= 0) {
      throw new BusError(`${this.name}: ${name} has an empty or invalid range ${hex(base)}+${length}`);
    }
    const end = base + length;
    if (end > this.#limit) throw new BusError(`${this.name}: ${name} at ${hex(base)}+${length} overflows the bus`);
    const clash = this.#ranges.find((r) => base < r.end && r.base < end);
    if (clash) {
      throw new BusError(`${this.name}: ${name} at ${hex(base)}-${hex(end - 1)} overlaps ${clash.name} at ${hex(clash.base)}-${hex(clash.end - 1)}`);
    }
    this.#ranges = [...this.#ranges, { base, end, name, device }].sort((a, b) => a.base - b.base);
  }

  /** The devices on the bus, for status displays. */
  get devices(): { name: string; base: number; length: number }[] {
    return this.#ranges.map((r) => ({ name: r.name, base: r.base, length: r.end - r.base }));
  }

  /** Reads into `data`; an unclaimed read returns all ones, as an empty ISA bus does. */
  read(address: number, data: Uint8Array): boolean {
    const range = this.#find(address, data.length);
    if (range) {
      try {
        range.device.read(address - range.base, data);
      } catch (error) {
        data.fill(0xff);
        this.#fault(range, false, address, error);
      }
      return true;
    }
    data.fill(0xff);
    return false;
  }

  /** Writes `data`; an unclaimed write is dropped. */
  write(address: number, data: Uint8Array): boolean {
    const range = this.#find(address, data.length);
    if (range) {
      try {
        range.device.write(address - range.base, data);
      } catch (error) {
        this.#fault(range, true, address, error);
      }
      return true;
    }
    return false;
  }

  /** Off the hot path: a device threw. Nothing here may throw in turn. */
  #fault(range: Range, write: boolean, address: number, error: unknown): void {
    this.faults++;
    try {
      range.device.fault?.();
    } catch { /* a device broken twice over is still only reported */ }
    try {
      this.#onFault({ device: range.name, write, offset: address - range.base, error });
    } catch { /* the report is best effort */ }
  }

  #find(address: number, length: number): Range | undefined {
    const last = this.#last;
    if (last && address >= last.base && address + length <= last.end) return last;
    let lo = 0;
    let hi = this.#ranges.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const r = this.#ranges[mid]!;
      if (address < r.base) hi = mid - 1;
      else if (address >= r.end) lo = mid + 1;
      else {
        // An access that starts inside a range but runs past its end is not the device's.
        if (address + length > r.end) return undefined;
        this.#last = r;
        return r;
      }
    }
    return undefined;
  }
}

export const PIO_SPACE = 0x10000;
export const MMIO_SPACE = 2 ** 52;
