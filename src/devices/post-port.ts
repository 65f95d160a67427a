// Port 0x80, where PC firmware writes its power-on self-test (POST) codes and Linux writes to
// slow down I/O. Nothing listens on real hardware either; tsvmm keeps the last code, which is
// a cheap breadcrumb of how far a guest got.

import type { BusDevice } from './bus.js';
import type { Persist } from './persist.js';

export const POST_PORT = 0x80;

/** Its state is the last code written. */
export class PostPort implements BusDevice, Persist<number> {
  lastCode = 0;

  read(_offset: number, data: Uint8Array): void {
    data.fill(0);
    data[0] = this.lastCode;
  }

  write(_offset: number, data: Uint8Array): void {
    this.lastCode = data[0] ?? 0;
  }

  save(): number {
    return this.lastCode;
  }

  restore(code: number): void {
    this.lastCode = code & 0xff;
  }
}
