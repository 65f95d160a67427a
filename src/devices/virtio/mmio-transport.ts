// virtio over MMIO, version 2 (virtio 1.x spec §4.2.2). The register file lives in a
// SharedArrayBuffer because two threads use it: the vCPU thread answers the driver's register
// accesses (probe, feature negotiation, queue set-up, interrupt acknowledge), and the device's
// I/O thread reads the queue set-up and raises interrupt status. Queue notifications and
// interrupts bypass both: KVM turns a QueueNotify write into an eventfd signal (ioeventfd) and
// an eventfd signal into an interrupt (irqfd).

import type { BusDevice } from '../bus.js';

export const VIRTIO_MMIO_SIZE = 0x1000;
const MAGIC_VALUE = 0x74726976; // "virt"
const VERSION = 2;
/** "TSVM": our vendor id, little-endian. */
const VENDOR_ID = 0x4d565354;

export const REG = {
  MagicValue: 0x000,
  Version: 0x004,
  DeviceID: 0x008,
  VendorID: 0x00c,
  DeviceFeatures: 0x010,
  DeviceFeaturesSel: 0x014,
  DriverFeatures: 0x020,
  DriverFeaturesSel: 0x024,
  QueueSel: 0x030,
  QueueNumMax: 0x034,
  QueueNum: 0x038,
  QueueReady: 0x044,
  QueueNotify: 0x050,
  InterruptStatus: 0x060,
  InterruptACK: 0x064,
  Status: 0x070,
  QueueDescLow: 0x080,
  QueueDescHigh: 0x084,
  QueueDriverLow: 0x090,
  QueueDriverHigh: 0x094,
  QueueDeviceLow: 0x0a0,
  QueueDeviceHigh: 0x0a4,
  SHMSel: 0x0ac,
  SHMLenLow: 0x0b0,
  SHMLenHigh: 0x0b4,
  SHMBaseLow: 0x0b8,
  SHMBaseHigh: 0x0bc,
  ConfigGeneration: 0x0fc,
  Config: 0x100,
} as const;

export const STATUS = {
  ACKNOWLEDGE: 1,
  DRIVER: 2,
  DRIVER_OK: 4,
  FEATURES_OK: 8,
  DEVICE_NEEDS_RESET: 64,
  FAILED: 128,
} as const;

export const INTERRUPT = { USED_BUFFER: 1, CONFIG_CHANGE: 2 } as const;

export const VIRTIO_F_VERSION_1 = 1n << 32n;
export const VIRTIO_RING_F_INDIRECT_DESC = 1n << 28n;
export const VIRTIO_RING_F_EVENT_IDX = 1n << 29n;

export const MAX_QUEUES = 8;
export const CONFIG_SPACE_SIZE = 256;

// Int32 slots of the shared register file.
const S_STATUS = 0;
const S_DEVICE_FEATURES_SEL = 1;
const S_DRIVER_FEATURES_SEL = 2;
const S_DRIVER_FEATURES_LO = 3;
const S_DRIVER_FEATURES_HI = 4;
const S_QUEUE_SEL = 5;
const S_INTERRUPT_STATUS = 6;
const S_CONFIG_GENERATION = 7;
/** Resets the driver has made; survives reset() so the I/O side can tell it missed one. */
const S_RESETS = 8;
const S_HEADER = 16;
const Q_NUM = 0;
const Q_READY = 1;
const Q_DESC = 2; //   low, high
const Q_DRIVER = 4; // low, high
const Q_DEVICE = 6; // low, high
const Q_SLOTS = 8;
const INTS = S_HEADER + MAX_QUEUES * Q_SLOTS;

/** What a device is, as the transport tells the driver: fixed when the device is created. */
export interface VirtioDeviceInfo {
  deviceId: number;
  /** Offered features, VIRTIO_F_VERSION_1 included. */
  features: bigint;
  /** QueueNumMax of each queue. */
  queueSizes: readonly number[];
  /** The device-specific configuration space. */
  config: Uint8Array;
}

export interface QueueAddresses {
  size: number;
  ready: boolean;
  descTable: number;
  availRing: number;
  usedRing: number;
}

/** The shared register file, as both threads see it. */
export class VirtioMmioState {
  readonly buffer: SharedArrayBuffer;
  readonly #i: Int32Array;
  readonly config: Uint8Array;

  private constructor(buffer: SharedArrayBuffer) {
    this.buffer = buffer;
    this.#i = new Int32Array(buffer, 0, INTS);
    this.config = new Uint8Array(buffer, INTS * 4, CONFIG_SPACE_SIZE);
  }

  /** A register file as at power-on, for the device `info` describes. */
  static create(info: VirtioDeviceInfo): VirtioMmioState {
    if (info.config.length > CONFIG_SPACE_SIZE) throw new RangeError('virtio config space too large');
    if (info.queueSizes.length > MAX_QUEUES) throw new RangeError(`at most ${MAX_QUEUES} virtqueues`);
    const state = new VirtioMmioState(new SharedArrayBuffer(INTS * 4 + CONFIG_SPACE_SIZE));
    state.config.set(info.config);
    state.reset(info.queueSizes);
    return state;
  }

  static attach(buffer: SharedArrayBuffer): VirtioMmioState {
    return new VirtioMmioState(buffer);
  }

  get status(): number { return Atomics.load(this.#i, S_STATUS); }
  set status(value: number) { Atomics.store(this.#i, S_STATUS, value); }

  /** Sets status bits from the I/O side (DEVICE_NEEDS_RESET) without losing the driver's. */
  orStatus(bits: number): void { Atomics.or(this.#i, S_STATUS, bits); }

  get driverFeatures(): bigint {
    return (BigInt(this.#i[S_DRIVER_FEATURES_HI]! >>> 0) << 32n) | BigInt(this.#i[S_DRIVER_FEATURES_LO]! >>> 0);
  }

  queue(index: number): QueueAddresses {
    const q = S_HEADER + index * Q_SLOTS;
    const wide = (at: number) => (this.#i[q + at + 1]! >>> 0) * 2 ** 32 + (this.#i[q + at]! >>> 0);
    return {
      size: this.#i[q + Q_NUM]!,
      ready: Atomics.load(this.#i, q + Q_READY) === 1,
      descTable: wide(Q_DESC),
      availRing: wide(Q_DRIVER),
      usedRing: wide(Q_DEVICE),
    };
  }

  /** I/O side: flags an interrupt reason; the caller then signals the irqfd. */
  raiseInterrupt(bits: number): void { Atomics.or(this.#i, S_INTERRUPT_STATUS, bits); }
  get interruptStatus(): number { return Atomics.load(this.#i, S_INTERRUPT_STATUS); }
  acknowledgeInterrupt(bits: number): void { Atomics.and(this.#i, S_INTERRUPT_STATUS, ~bits); }

  /**
   * The device cannot go on until the driver resets it (virtio 1.x §2.1.2): DEVICE_NEEDS_RESET,
   * and a configuration-change interrupt reason; the caller then signals the irqfd.
   */
  markNeedsReset(): void {
    this.orStatus(STATUS.DEVICE_NEEDS_RESET);
    this.bumpConfigGeneration();
    this.raiseInterrupt(INTERRUPT.CONFIG_CHANGE);
  }

  /** Device-side config change: bump the generation so the driver rereads consistently. */
  bumpConfigGeneration(): void { Atomics.add(this.#i, S_CONFIG_GENERATION, 1); }

  /** Register slots, for the vCPU side. */
  get ints(): Int32Array { return this.#i; }

  /**
   * How many times the driver has reset the device. The I/O side may wake up after a reset and
   * a whole new set-up have happened; comparing counts, it still sees that its queues are stale.
   */
  get resets(): number { return Atomics.load(this.#i, S_RESETS); }

  /** Everything a reset clears: back to what the driver finds at power-on. */
  reset(queueSizes: readonly number[]): void {
    const resets = this.#i[S_RESETS]!;
    this.#i.fill(0, 0, INTS);
    Atomics.store(this.#i, S_RESETS, resets);
    queueSizes.forEach((size, index) => { this.#i[S_HEADER + index * Q_SLOTS + Q_NUM] = size; });
  }
}

export interface TransportEvents {
  /** Status or a queue's readiness changed: the I/O side should look (a reset, DRIVER_OK). */
  onStateChange(): void;
  /** A QueueNotify write that no ioeventfd caught (KVM without ioeventfd, or a write of another size). */
  onQueueNotify(queue: number): void;
  /** An interrupt reason was raised on the vCPU side (DEVICE_NEEDS_RESET): signal the irqfd. */
  onInterrupt(): void;
}

/** The vCPU side: register reads and writes at offsets within the device's 4 KiB window. */
export class VirtioMmioTransport implements BusDevice {
  constructor(
    readonly state: VirtioMmioState,
    readonly info: VirtioDeviceInfo,
    private readonly events: TransportEvents,
  ) {}

  read(offset: number, data: Uint8Array): void {
    data.fill(0);
    if (offset >= REG.Config) {
      const at = offset - REG.Config;
      for (let i = 0; i < data.length && at + i < CONFIG_SPACE_SIZE; i++) data[i] = this.state.config[at + i]!;
      return;
    }
    // Registers below the config space are 32 bits wide; other access sizes read as zero.
    if (data.length !== 4 || offset % 4 !== 0) return;
    new DataView(data.buffer, data.byteOffset, 4).setUint32(0, this.#readRegister(offset) >>> 0, true);
  }

  write(offset: number, data: Uint8Array): void {
    if (offset >= REG.Config) {
      // The devices we offer have no driver-writable config fields; writes are ignored.
      return;
    }
    if (data.length !== 4 || offset % 4 !== 0) return;
    this.#writeRegister(offset, new DataView(data.buffer, data.byteOffset, 4).getUint32(0, true));
  }

  /**
   * The selected queue's first slot, or -1 when QueueSel names no queue. The selector registers
   * hold whatever 32-bit value the guest wrote; read as signed, 0x80000000 and up would pass a
   * `< length` test as negative indexes, so they are read unsigned.
   */
  #selectedQueue(): { queue: number; q: number } {
    const queue = this.state.ints[S_QUEUE_SEL]! >>> 0;
    return queue < this.info.queueSizes.length ? { queue, q: S_HEADER + queue * Q_SLOTS } : { queue, q: -1 };
  }

  #readRegister(offset: number): number {
    const i = this.state.ints;
    const { queue, q } = this.#selectedQueue();
    const validQueue = q >= 0;
    switch (offset) {
      case REG.MagicValue: return MAGIC_VALUE;
      case REG.Version: return VERSION;
      case REG.DeviceID: return this.info.deviceId;
      case REG.VendorID: return VENDOR_ID;
      case REG.DeviceFeatures: {
        const sel = i[S_DEVICE_FEATURES_SEL]! >>> 0;
        return sel > 1 ? 0 : Number((this.info.features >> BigInt(32 * sel)) & 0xffffffffn);
      }
      case REG.QueueNumMax: return validQueue ? this.info.queueSizes[queue]! : 0;
      case REG.QueueNum: return validQueue ? i[q + Q_NUM]! : 0;
      case REG.QueueReady: return validQueue ? Atomics.load(i, q + Q_READY) : 0;
      case REG.QueueDescLow: return validQueue ? i[q + Q_DESC]! : 0;
      case REG.QueueDescHigh: return validQueue ? i[q + Q_DESC + 1]! : 0;
      case REG.QueueDriverLow: return validQueue ? i[q + Q_DRIVER]! : 0;
      case REG.QueueDriverHigh: return validQueue ? i[q + Q_DRIVER + 1]! : 0;
      case REG.QueueDeviceLow: return validQueue ? i[q + Q_DEVICE]! : 0;
      case REG.QueueDeviceHigh: return validQueue ? i[q + Q_DEVICE + 1]! : 0;
      case REG.InterruptStatus: return this.state.interruptStatus;
      case REG.Status: return this.state.status;
      case REG.ConfigGeneration: return Atomics.load(i, S_CONFIG_GENERATION);
      case REG.SHMLenLow: case REG.SHMLenHigh: return 0xffffffff; // no shared memory regions
      default: return 0;
    }
  }

  #writeRegister(offset: number, value: number): void {
    const i = this.state.ints;
    const { queue, q } = this.#selectedQueue();
    // Queue registers may change only while the queue is not live (spec §4.2.2.3).
    const queueWritable = q >= 0 && Atomics.load(i, q + Q_READY) === 0;
    switch (offset) {
      case REG.DeviceFeaturesSel: i[S_DEVICE_FEATURES_SEL] = value; break;
      case REG.DriverFeaturesSel: i[S_DRIVER_FEATURES_SEL] = value; break;
      case REG.DriverFeatures: {
        const sel = i[S_DRIVER_FEATURES_SEL]! >>> 0;
        if (sel <= 1 && !(this.state.status & STATUS.FEATURES_OK)) i[sel === 0 ? S_DRIVER_FEATURES_LO : S_DRIVER_FEATURES_HI] = value | 0;
        break;
      }
      case REG.QueueSel: i[S_QUEUE_SEL] = value; break;
      case REG.QueueNum:
        if (queueWritable && value > 0 && value <= this.info.queueSizes[queue]! && (value & (value - 1)) === 0) i[q + Q_NUM] = value;
        break;
      case REG.QueueReady:
        if (q >= 0) {
          Atomics.store(i, q + Q_READY, value === 1 ? 1 : 0);
          this.events.onStateChange();
        }
        break;
      case REG.QueueDescLow: if (queueWritable) i[q + Q_DESC] = value | 0; break;
      case REG.QueueDescHigh: if (queueWritable) i[q + Q_DESC + 1] = value | 0; break;
      case REG.QueueDriverLow: if (queueWritable) i[q + Q_DRIVER] = value | 0; break;
      case REG.QueueDriverHigh: if (queueWritable) i[q + Q_DRIVER + 1] = value | 0; break;
      case REG.QueueDeviceLow: if (queueWritable) i[q + Q_DEVICE] = value | 0; break;
      case REG.QueueDeviceHigh: if (queueWritable) i[q + Q_DEVICE + 1] = value | 0; break;
      case REG.QueueNotify:
        if (value < this.info.queueSizes.length) this.events.onQueueNotify(value);
        break;
      case REG.InterruptACK: this.state.acknowledgeInterrupt(value); break;
      case REG.Status: this.#writeStatus(value); break;
      default: break; // read-only or unknown registers ignore writes
    }
  }

  /** A register access threw (a bug the guest found): the device is broken until reset. */
  fault(): void {
    this.state.markNeedsReset();
    this.events.onInterrupt();
  }

  #writeStatus(value: number): void {
    if (value === 0) {
      this.state.reset(this.info.queueSizes);
      Atomics.add(this.state.ints, S_RESETS, 1);
      this.events.onStateChange();
      return;
    }
    let status = value & 0xff;
    if (status & STATUS.FEATURES_OK && !(this.state.status & STATUS.FEATURES_OK)) {
      // FEATURES_OK sticks only if the driver accepted a subset of our offer, VERSION_1 among them.
      const accepted = this.state.driverFeatures;
      if ((accepted & ~this.info.features) !== 0n || !(accepted & VIRTIO_F_VERSION_1)) status &= ~STATUS.FEATURES_OK;
    }
    // NEEDS_RESET is the device's to set; the driver cannot clear it except by a reset.
    this.state.status = status | (this.state.status & STATUS.DEVICE_NEEDS_RESET);
    this.events.onStateChange();
  }
}
