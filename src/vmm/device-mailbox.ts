// How an application processor reaches the devices, which live on the boot CPU's thread: it
// posts its port or MMIO access in a shared mailbox, kicks the boot CPU out of KVM_RUN (or wakes
// it from a pause), and waits for the answer. Device state keeps one owner and needs no locks;
// the cost, two thread wake-ups, is paid only by AP accesses to emulated devices, which are rare
// (the interrupt controllers and timers are in the kernel).

import type { IoSpace } from '../devices/bus.js';

const LOCK = 0; //    0 free, 1 held by the AP whose access is in flight
const STATE = 1; //   see State
const SPACE = 2; //   0 port I/O, 1 MMIO
const WRITE = 3;
const SIZE = 4;
const ADDRESS_LOW = 5;
const ADDRESS_HIGH = 6;
const CLAIMED = 7;
const INTS = 8;
const DATA_BYTES = 8;

const State = { Idle: 0, Posted: 1, Answered: 2 } as const;

/** How long a waiting AP sleeps before it kicks again (a kick can land between two KVM_RUNs). */
const RETRY_MS = 5;

export class DeviceMailbox {
  readonly buffer: SharedArrayBuffer;
  readonly #ints: Int32Array;
  readonly #data: Uint8Array;

  private constructor(buffer: SharedArrayBuffer) {
    this.buffer = buffer;
    this.#ints = new Int32Array(buffer, 0, INTS);
    this.#data = new Uint8Array(buffer, INTS * 4, DATA_BYTES);
  }

  static create(): DeviceMailbox {
    return new DeviceMailbox(new SharedArrayBuffer(INTS * 4 + DATA_BYTES));
  }

  static attach(buffer: SharedArrayBuffer): DeviceMailbox {
    return new DeviceMailbox(buffer);
  }

  /** Owner side: answers a posted access, if there is one, from the owner's buses. */
  serve(pio: IoSpace, mmio: IoSpace): void {
    const i = this.#ints;
    if (Atomics.load(i, STATE) !== State.Posted) return;
    const bus = i[SPACE] === 0 ? pio : mmio;
    const address = (i[ADDRESS_HIGH]! >>> 0) * 2 ** 32 + (i[ADDRESS_LOW]! >>> 0);
    const data = this.#data.subarray(0, i[SIZE]);
    const claimed = i[WRITE] ? bus.write(address, data) : bus.read(address, data);
    i[CLAIMED] = claimed ? 1 : 0;
    Atomics.store(i, STATE, State.Answered);
    Atomics.notify(i, STATE);
  }

  /**
   * AP side: performs one access through the owner. `wake` kicks the owner; `abandoned` says
   * the VM is stopping, so an owner that is gone is not waited for.
   */
  call(space: 'pio' | 'mmio', write: boolean, address: number, data: Uint8Array, wake: () => void, abandoned: () => boolean): boolean {
    const i = this.#ints;
    while (Atomics.compareExchange(i, LOCK, 0, 1) !== 0) {
      if (abandoned()) return false;
      Atomics.wait(i, LOCK, 1, RETRY_MS);
    }
    try {
      i[SPACE] = space === 'pio' ? 0 : 1;
      i[WRITE] = write ? 1 : 0;
      i[SIZE] = Math.min(data.length, DATA_BYTES);
      i[ADDRESS_LOW] = address % 2 ** 32;
      i[ADDRESS_HIGH] = Math.floor(address / 2 ** 32);
      if (write) this.#data.set(data.subarray(0, DATA_BYTES));
      Atomics.store(i, STATE, State.Posted);
      wake();
      while (Atomics.load(i, STATE) !== State.Answered) {
        if (Atomics.wait(i, STATE, State.Posted, RETRY_MS) === 'timed-out') {
          if (abandoned()) return false;
          wake();
        }
      }
      if (!write) data.set(this.#data.subarray(0, data.length));
      const claimed = i[CLAIMED] === 1;
      Atomics.store(i, STATE, State.Idle);
      return claimed;
    } finally {
      Atomics.store(i, LOCK, 0);
      Atomics.notify(i, LOCK, 1);
    }
  }
}

/** An AP's view of a bus: every access goes through the mailbox to the owner's bus. */
export class RemoteBus implements IoSpace {
  constructor(
    private readonly space: 'pio' | 'mmio',
    private readonly mailbox: DeviceMailbox,
    private readonly wake: () => void,
    private readonly abandoned: () => boolean,
  ) {}

  read(address: number, data: Uint8Array): boolean {
    return this.mailbox.call(this.space, false, address, data, this.wake, this.abandoned);
  }

  write(address: number, data: Uint8Array): boolean {
    return this.mailbox.call(this.space, true, address, data, this.wake, this.abandoned);
  }
}
