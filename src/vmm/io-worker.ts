// The device I/O thread: one per VM with virtio devices. It sleeps in epoll_wait on every
// queue's ioeventfd, a control eventfd and whatever the backends watch (a tap, console input),
// and does the device work there: vCPU threads never wait for a disk or a network.

import { readSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { addon, EPOLL_CTL_ADD, EPOLL_CTL_DEL, EPOLLIN } from '../kvm/addon.js';
import { GuestMemory, type GuestRegionDescriptor } from '../memory/guest-memory.js';
import { VirtioMmioState } from '../devices/virtio/mmio-transport.js';
import { VirtioDeviceRunner, type FdWatcher, type VirtioBackend, type VirtioRunnerState } from '../devices/virtio/device.js';
import { BlockBackend } from '../devices/virtio/block.js';
import { NetBackend } from '../devices/virtio/net.js';
import { RngBackend } from '../devices/virtio/rng.js';
import { ConsoleBackend } from '../devices/virtio/console.js';
import { ByteRing } from './byte-ring.js';
import type { VirtioBackendConfig, VirtioSlot } from './virtio-slots.js';

export interface IoWorkerData {
  memory: GuestRegionDescriptor[];
  devices: VirtioSlot[];
  /** Signalled when a transport changed state, or when the thread should look at `stop`. */
  controlFd: number;
  /** Int32 slot 0: what the main thread asks of the I/O thread (IoCommand); slot 1: pauses asked for; BigInt64 at 8: its pthread. */
  stop: SharedArrayBuffer;
  /** Per device, the I/O-side state to continue from (a restored snapshot). */
  restore?: (VirtioRunnerState | undefined)[];
}

export const IoCommand = { Run: 0, Stop: 1, Pause: 2 } as const;

export type IoWorkerMessage =
  | { type: 'log'; message: string }
  | { type: 'error'; message: string }
  /** Paused, between two pieces of work: the devices' queue positions, for a snapshot. */
  | { type: 'paused'; devices: VirtioRunnerState[] };

function createBackend(config: VirtioBackendConfig): VirtioBackend {
  switch (config.kind) {
    case 'block': return new BlockBackend(config.fd, config);
    case 'net': return new NetBackend(config.tap);
    case 'rng': return new RngBackend();
    case 'console': return new ConsoleBackend(ByteRing.attach(config.output), ByteRing.attach(config.input), config.inputReady);
    default: {
      const never: never = config;
      return never;
    }
  }
}

/** An epoll set whose entries are callbacks. */
class EventLoop implements FdWatcher {
  readonly #native = addon();
  readonly #epoll = this.#native.epollCreate();
  readonly #callbacks = new Map<number, () => void>();
  readonly #tags = new Map<number, number>();
  #nextTag = 1;

  watch(fd: number, onReadable: () => void): void {
    if (this.#tags.has(fd)) return;
    const tag = this.#nextTag++;
    const rc = this.#native.epollCtl(this.#epoll, EPOLL_CTL_ADD, fd, EPOLLIN, tag);
    if (rc < 0) throw new Error(`epoll_ctl(ADD, fd ${fd}) failed: errno ${-rc}`);
    this.#tags.set(fd, tag);
    this.#callbacks.set(tag, onReadable);
  }

  unwatch(fd: number): void {
    const tag = this.#tags.get(fd);
    if (tag === undefined) return;
    this.#native.epollCtl(this.#epoll, EPOLL_CTL_DEL, fd, 0, 0);
    this.#tags.delete(fd);
    this.#callbacks.delete(tag);
  }

  /**
   * Waits for events and runs their callbacks; `between` runs after each batch and may end the
   * loop. The wait is bounded so that a missed wake-up can delay a stop, never prevent it.
   */
  run(between: () => boolean): void {
    const events = new Uint32Array(2 * 32);
    while (between()) {
      const n = this.#native.epollWait(this.#epoll, events, WAIT_MS);
      for (let i = 0; i < n; i++) this.#callbacks.get(events[2 * i + 1]!)?.();
    }
  }
}

const WAIT_MS = 1000;
/** A paused I/O thread looks again this often even without a wake-up. */
const PAUSED_RECHECK_MS = 50;
const counter = new BigUint64Array(1);
/** Reads an eventfd's counter so that it stops being readable. */
function drain(fd: number): void {
  try { readSync(fd, counter); } catch { /* EAGAIN: already drained */ }
}

function main(data: IoWorkerData): void {
  const log = (message: string) => parentPort?.postMessage({ type: 'log', message } satisfies IoWorkerMessage);
  const memory = GuestMemory.attach(data.memory);
  const command = new Int32Array(data.stop, 0, 1);
  // The main thread kicks us out of epoll_wait with a signal if its process is ending.
  Atomics.store(new BigInt64Array(data.stop, 8, 1), 0, addon().threadSelf());
  const loop = new EventLoop();
  const runners = data.devices.map((slot, index) => {
    const runner = new VirtioDeviceRunner(slot.name, VirtioMmioState.attach(slot.state), slot.info,
      createBackend(slot.backend), memory, slot.irqfd, loop, log);
    slot.queueFds.forEach((fd, queue) => loop.watch(fd, () => {
      drain(fd);
      runner.onQueueNotify(queue);
    }));
    const saved = data.restore?.[index];
    if (saved) runner.restore(saved);
    return runner;
  });
  loop.watch(data.controlFd, () => {
    drain(data.controlFd);
    for (const r of runners) r.onStateChange();
  });
  // Between batches of work every queue is consistent: that is where a pause takes effect. Each
  // pause asked for is answered, also one asked again (resume, pause) while we still slept.
  const pausesAsked = new Int32Array(data.stop, 4, 1);
  let pausesAnswered = 0;
  loop.run(() => {
    while (Atomics.load(command, 0) === IoCommand.Pause) {
      const asked = Atomics.load(pausesAsked, 0);
      if (asked !== pausesAnswered) {
        pausesAnswered = asked;
        parentPort?.postMessage({ type: 'paused', devices: runners.map((r) => r.save()) } satisfies IoWorkerMessage);
      }
      Atomics.wait(command, 0, IoCommand.Pause, PAUSED_RECHECK_MS);
    }
    return Atomics.load(command, 0) !== IoCommand.Stop;
  });
}

try {
  main(workerData as IoWorkerData);
} catch (error) {
  parentPort?.postMessage({ type: 'error', message: (error as Error).stack ?? String(error) } satisfies IoWorkerMessage);
}
