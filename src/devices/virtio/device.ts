// The I/O-thread side of a virtio device: it watches the transport's state, builds the queues
// when the driver says DRIVER_OK, hands notifications to the backend, and interrupts the driver
// through the irqfd. A queue the guest has corrupted, or any other exception from the device's
// work, puts the device into DEVICE_NEEDS_RESET with one log line per kind of fault (counted in a
// FaultLog); nothing a guest writes into a ring or a register can throw out of here.

import { EventFd } from '../../kvm/event-fd.js';
import type { GuestMemory } from '../../memory/guest-memory.js';
import { readQueueState, VirtQueue, VirtQueueError, type DescriptorChain, type QueueState } from './queue.js';
import { array, bool, int, object, tuple, type Persist, type StateReader } from '../persist.js';
import { describeError, errorKind, FaultLog } from '../fault-log.js';
import {
  INTERRUPT, MAX_QUEUES, STATUS, VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC,
  type VirtioDeviceInfo, type VirtioMmioState,
} from './mmio-transport.js';

export interface VirtioBackendContext {
  memory: GuestMemory;
  /** Live queues by index; a queue the driver did not set up is absent. */
  queues: ReadonlyMap<number, VirtQueue>;
  /** Features both sides agreed on. */
  features: bigint;
  /** Call after pushing used buffers to `queue`: interrupts the driver if the queue asks for it. */
  usedBuffers(queue: number): void;
  /** Calls `onReadable` (on the I/O thread) while `fd` has data; a reset unwatches everything. */
  watch(fd: number, onReadable: () => void): void;
  unwatch(fd: number): void;
  log(message: string): void;
}

/** The I/O thread's event loop, as a device sees it. */
export interface FdWatcher {
  watch(fd: number, onReadable: () => void): void;
  unwatch(fd: number): void;
}

/** A device model: what happens to the buffers a driver places in the queues. */
export interface VirtioBackend {
  activate(context: VirtioBackendContext): void;
  /** The driver notified `queue` (it added buffers). */
  process(queue: number): void;
  reset(): void;
}

/**
 * Serves every chain waiting in queue `index`: `serve` handles one and returns how many bytes it
 * wrote into the chain's buffers; each chain goes back to the used ring, then the driver is
 * interrupted if it wants to be. The common shape of a request queue.
 */
export function serveQueue(ctx: VirtioBackendContext | undefined, index: number, serve: (chain: DescriptorChain, queue: VirtQueue) => number): void {
  const q = ctx?.queues.get(index);
  if (!ctx || !q) return;
  for (let chain = q.pop(); chain; chain = q.pop()) q.push(chain.head, serve(chain, q));
  ctx.usedBuffers(index);
}

/** A device's I/O-side state in a snapshot: where its queues stand (JSON-safe). */
export interface VirtioRunnerState {
  active: boolean;
  broken: boolean;
  resetsSeen: number;
  queues: [index: number, state: QueueState][];
}

/** Checks a VirtioRunnerState read from a snapshot. */
export const readVirtioRunnerState: StateReader<VirtioRunnerState> = object({
  active: bool, broken: bool, resetsSeen: int(-(2 ** 31), 2 ** 31 - 1),
  queues: array(tuple(int(0, MAX_QUEUES - 1), readQueueState), MAX_QUEUES),
});

export class VirtioDeviceRunner implements Persist<VirtioRunnerState> {
  #active = false;
  #broken = false;
  #resetsSeen = 0;
  #queues = new Map<number, VirtQueue>();
  readonly #watched = new Set<number>();
  readonly #irqfd: EventFd;

  constructor(
    readonly name: string,
    private readonly state: VirtioMmioState,
    private readonly info: VirtioDeviceInfo,
    private readonly backend: VirtioBackend,
    private readonly memory: GuestMemory,
    irqfd: number,
    private readonly watcher: FdWatcher,
    private readonly log: (message: string) => void,
    /** Where faults are counted; the I/O thread shares one among its devices. */
    readonly faults: FaultLog = new FaultLog('device faults', log),
  ) {
    this.#irqfd = new EventFd(irqfd);
  }

  /** The transport's status or a queue's readiness changed (maybe several times since last call). */
  onStateChange(): void {
    const resets = this.state.resets;
    if (resets !== this.#resetsSeen) {
      this.#resetsSeen = resets;
      if (this.#active || this.#broken) this.#stop();
      this.#active = false;
      this.#broken = false;
    }
    if (this.state.status & STATUS.DRIVER_OK && !this.#active && !this.#broken) this.#activate();
  }

  onQueueNotify(queue: number): void {
    // epoll may report the queue's eventfd before the control eventfd that carries DRIVER_OK.
    this.onStateChange();
    if (!this.#active) return;
    this.#guard(() => this.backend.process(queue));
  }

  /** Runs backend work that reads guest-controlled rings, turning a bad ring into NEEDS_RESET. */
  guard(work: () => void): void {
    if (this.#active) this.#guard(work);
  }

  #guard(work: () => void): void {
    try {
      work();
    } catch (error) {
      this.#needsReset(error);
    }
  }

  /** For a snapshot: call only while the vCPUs are paused and no queue work is under way. */
  save(): VirtioRunnerState {
    return {
      active: this.#active, broken: this.#broken, resetsSeen: this.#resetsSeen,
      queues: [...this.#queues].map(([index, q]) => [index, q.save()]),
    };
  }

  /** Continues from a snapshot: the queues stand where they stood, and pending work is picked up. */
  restore(saved: VirtioRunnerState): void {
    this.#resetsSeen = saved.resetsSeen;
    this.#broken = saved.broken;
    if (saved.active) this.#activate(new Map(saved.queues));
  }

  #activate(restored?: ReadonlyMap<number, QueueState>): void {
    const features = this.state.driverFeatures;
    const queues = new Map<number, VirtQueue>();
    try {
      this.info.queueSizes.forEach((_max, index) => {
        const q = this.state.queue(index);
        if (!q.ready) return;
        const config = {
          size: q.size, descTable: q.descTable, availRing: q.availRing, usedRing: q.usedRing,
          eventIdx: (features & VIRTIO_RING_F_EVENT_IDX) !== 0n,
          indirect: (features & VIRTIO_RING_F_INDIRECT_DESC) !== 0n,
        };
        const saved = restored?.get(index);
        queues.set(index, saved ? VirtQueue.restore(this.memory, config, saved) : new VirtQueue(this.memory, config));
      });
    } catch (error) {
      this.#needsReset(error);
      return;
    }
    this.#active = true;
    this.#queues = queues;
    this.#guard(() => this.backend.activate({
      memory: this.memory,
      queues,
      features,
      usedBuffers: (index) => {
        if (queues.get(index)?.needsInterrupt()) this.#interrupt(INTERRUPT.USED_BUFFER);
      },
      watch: (fd, onReadable) => {
        this.#watched.add(fd);
        this.watcher.watch(fd, () => this.guard(onReadable));
      },
      unwatch: (fd) => {
        if (this.#watched.delete(fd)) this.watcher.unwatch(fd);
      },
      log: (message) => this.log(`${this.name}: ${message}`),
    }));
    // Buffers the driver posted (and notified) before we saw DRIVER_OK are served now.
    for (const index of queues.keys()) this.#guard(() => this.backend.process(index));
  }

  #stop(): void {
    this.#queues = new Map();
    for (const fd of this.#watched) this.watcher.unwatch(fd);
    this.#watched.clear();
    this.backend.reset();
  }

  /** Whatever went wrong, the device stops and waits for the driver to reset it; the VM goes on. */
  #needsReset(error: unknown): void {
    if (!this.#broken) {
      this.#active = false;
      this.#broken = true;
      try {
        this.#stop();
      } catch { /* a backend that fails to reset is reset again by the driver's reset */ }
    }
    this.faults.report(`${this.name}: ${errorKind(error)}`, () => (error instanceof VirtQueueError
      ? `${this.name}: the guest's virtqueue is unusable (${error.message}); device needs reset`
      : `${this.name}: the device failed (${describeError(error)}); device needs reset`));
    this.state.markNeedsReset();
    this.#signal();
  }

  #interrupt(reason: number): void {
    this.state.raiseInterrupt(reason);
    this.#signal();
  }

  #signal(): void {
    this.#irqfd.signal();
  }
}
