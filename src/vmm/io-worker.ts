// The device I/O thread: one per VM with virtio devices. It sleeps in epoll_wait on every
// queue's ioeventfd, a control eventfd and whatever the backends watch (a tap, console input),
// and does the device work there: vCPU threads never wait for a disk or a network.

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
import { EventFd } from '../kvm/event-fd.js';
import { describeError, errorKind, FaultLog } from '../devices/fault-log.js';
import { IoCommand, IoControl } from './io-control.js';
import type { VirtioBackendConfig, VirtioSlot } from './virtio-slots.js';

export interface IoWorkerData {
  memory: GuestRegionDescriptor[];
  devices: VirtioSlot[];
  /** Signalled when a transport changed state, or when the thread should look at `stop`. */
  controlFd: number;
  /** The IoControl shared with the main thread. */
  control: SharedArrayBuffer;
  /** Per device, the I/O-side state to continue from (a restored snapshot). */
  restore?: (VirtioRunnerState | undefined)[];
}

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
   * loop. The wait is bounded so that a missed wake-up can delay a stop, never prevent it. A
   * callback that throws goes to `onError` and the loop goes on: devices guard their own work
   * (VirtioDeviceRunner), so this is the last line, not the first.
   */
  run(between: () => boolean, onError: (error: unknown) => void): void {
    const events = new Uint32Array(2 * 32);
    while (between()) {
      const n = this.#native.epollWait(this.#epoll, events, WAIT_MS);
      for (let i = 0; i < n; i++) {
        try {
          this.#callbacks.get(events[2 * i + 1]!)?.();
        } catch (error) {
          onError(error);
        }
      }
    }
  }
}

const WAIT_MS = 1000;
/** A paused I/O thread looks again this often even without a wake-up. */
const PAUSED_RECHECK_MS = 50;
function main(data: IoWorkerData): void {
  const log = (message: string) => parentPort?.postMessage({ type: 'log', message } satisfies IoWorkerMessage);
  const memory = GuestMemory.attach(data.memory);
  const control = IoControl.attach(data.control);
  // The main thread kicks us out of epoll_wait with a signal if its process is ending.
  control.thread = addon().threadSelf();
  const faults = new FaultLog('device faults', log);
  const countFault = () => { control.faults = faults.total; };
  const loop = new EventLoop();
  const runners = data.devices.map((slot, index) => {
    const runner = new VirtioDeviceRunner(slot.name, VirtioMmioState.attach(slot.state), slot.info,
      createBackend(slot.backend), memory, slot.irqfd, loop, log, faults);
    slot.queueFds.forEach((fd, queue) => {
      const notified = new EventFd(fd);
      loop.watch(fd, () => {
        notified.drain();
        runner.onQueueNotify(queue);
      });
    });
    const saved = data.restore?.[index];
    if (saved) runner.restore(saved);
    return runner;
  });
  const stateChanged = new EventFd(data.controlFd);
  loop.watch(data.controlFd, () => {
    stateChanged.drain();
    for (const r of runners) r.onStateChange();
  });
  // Between batches of work every queue is consistent: that is where a pause takes effect. Each
  // pause asked for is answered, also one asked again (resume, pause) while we still slept.
  let pausesAnswered = 0;
  loop.run(() => {
    countFault();
    while (control.command === IoCommand.Pause) {
      const asked = control.pausesAsked;
      if (asked !== pausesAnswered) {
        pausesAnswered = asked;
        // The vCPUs are paused, but a state change they made (DRIVER_OK, a reset) may still wait
        // in the control eventfd behind this pause: take it in first, so that the saved queue
        // positions agree with the register file the snapshot holds.
        stateChanged.drain();
        for (const r of runners) r.onStateChange();
        parentPort?.postMessage({ type: 'paused', devices: runners.map((r) => r.save()) } satisfies IoWorkerMessage);
      }
      control.waitWhilePaused(PAUSED_RECHECK_MS);
    }
    return control.command !== IoCommand.Stop;
  }, (error) => faults.report(`event loop: ${errorKind(error)}`, () => `device I/O thread: ${describeError(error)}; it goes on`));
}

try {
  main(workerData as IoWorkerData);
} catch (error) {
  parentPort?.postMessage({ type: 'error', message: (error as Error).stack ?? String(error) } satisfies IoWorkerMessage);
}
