// An eventfd, the counter KVM and our threads signal one another through: KVM signals a queue's
// ioeventfd when the driver notifies, we signal an irqfd to interrupt the guest, and the threads
// wake one another's epoll. Every one is non-blocking, so signalling never waits: a counter that is
// full (EAGAIN) has a wake-up pending anyway, and draining an empty one has nothing to take.
// The number crosses threads (structured clone); each thread wraps it where it uses it.

import { readSync, writeSync } from 'node:fs';
import { addon, EFD_NONBLOCK, errnoName } from './addon.js';
import { TsvmmError } from '../errors.js';

const ONE = new BigUint64Array([1n]);

export class EventFd {
  readonly #counter = new BigUint64Array(1);

  constructor(readonly fd: number) {}

  /** A new non-blocking eventfd; the caller closes `fd`. */
  static create(): EventFd {
    const fd = addon().eventfd(0, EFD_NONBLOCK);
    if (fd < 0) throw new TsvmmError('VMM_ERROR', `eventfd failed: ${errnoName(-fd)}`);
    return new EventFd(fd);
  }

  /** Adds 1 to the counter, waking whoever waits on it. */
  signal(): void {
    try {
      writeSync(this.fd, ONE);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
    }
  }

  /** Takes the counter back to 0, so that the fd stops being readable. */
  drain(): void {
    try {
      readSync(this.fd, this.#counter);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EAGAIN') throw error;
    }
  }
}
