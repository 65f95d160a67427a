// A VM's only vCPU run by the main thread itself instead of a worker thread. A worker is a second
// V8 isolate: it costs about Node's own start-up again in CPU time (~45 ms here) and ~12 MiB of
// memory, which for a tiny guest is more than the whole rest of `tsvmm run`.
//
// The main thread must still serve its event loop (console input, the control socket, signals,
// timers, the I/O thread's messages), so it runs the exit loop in slices: each slice is a
// setImmediate callback that runs KVM_RUN after KVM_RUN until the event loop has something to do.
// Meanwhile a small native thread (the addon's event-loop watch) waits on libuv's own epoll fd
// and the earliest timer; when either is ready, or console output has waited 10 ms for its
// newline, it kicks the vCPU out of KVM_RUN (immediate_exit and the kick signal, as kick.ts does)
// and the slice ends. A complete console line is flushed from inside the slice. So an exit costs
// what it costs on a worker, and the event loop answers within one KVM_RUN of its work arriving.
//
// Only one such VM runs at a time in a process: a slice ends only for the event loop's work, so a
// second VM's slices would wait behind the first's.

import { addon } from '../kvm/addon.js';
import type { GuestMemory } from '../memory/guest-memory.js';
import { ByteRing } from './byte-ring.js';
import { KICK_SIGNAL } from './kick.js';
import type { VmOutcome } from './outcome.js';
import { VcpuCommand, VcpuControl, VcpuState } from './vcpu-control.js';
import { VcpuLoop } from './vcpu-loop.js';
import { exitMessage, prepareVcpu, vcpuFailed, type VcpuPost, type VcpuWorkerData } from './vcpu-thread.js';

/** A console line longer than this much of the ring is flushed without waiting for its end. */
const FLUSH_FILL = 0.5;

/** Whether a VM's vCPU runs on the main thread now. */
let running = false;

export class MainThreadVcpu {
  /** Whether a VM's vCPU runs on the main thread now (another cannot). */
  static get busy(): boolean {
    return running;
  }

  /** Resolves when the loop has ended and reported its outcome. */
  readonly ended: Promise<void>;
  readonly #data: VcpuWorkerData;
  readonly #post: VcpuPost;
  readonly #control: VcpuControl;
  readonly #ring: ByteRing;
  readonly #flush: () => void;
  #loop: VcpuLoop | undefined;
  #scheduled = false;
  #done = false;
  #resolveEnded!: () => void;

  /**
   * `memory` is the VM's, as the main thread has it. `flush` takes the console output out of the
   * ring: called at every newline, when the ring fills up and after every slice.
   */
  constructor(data: VcpuWorkerData, memory: GuestMemory, post: VcpuPost, flush: () => void) {
    if (running) throw new Error('a VM already runs its vCPU on the main thread');
    running = true;
    this.#data = data;
    this.#post = post;
    this.#flush = flush;
    this.#control = VcpuControl.attach(data.control);
    this.#ring = ByteRing.attach(data.consoleOut);
    this.ended = new Promise((resolve) => { this.#resolveEnded = resolve; });
    const flushAt = this.#ring.capacity * FLUSH_FILL;
    const prepared = prepareVcpu(data, post, {
      memory,
      kicked: () => addon().loopWatchKicked(),
      consoleOut: (loop) => ({
        write: (byte) => {
          this.#ring.write(byte);
          if (byte === 0x0a) this.#flushNow();
          else if (this.#ring.available >= flushAt) loop.requestYield();
        },
      }),
    });
    if (prepared instanceof VcpuLoop) this.#loop = prepared;
    else queueMicrotask(() => this.#end(prepared));
  }

  /** Runs slices until the loop ends or pauses. */
  start(): void {
    this.wake();
  }

  /**
   * After its command changed (run, stop) or a request was made of it (save the devices): a
   * paused vCPU answers the request, a running or stopping one gets its next slice.
   */
  wake(): void {
    if (this.#scheduled || this.#done) return;
    this.#scheduled = true;
    setImmediate(() => this.#slice());
  }

  #slice(): void {
    this.#scheduled = false;
    const loop = this.#loop;
    if (this.#done || !loop) return;
    if (this.#paused()) {
      loop.wakePaused();
      return;
    }
    const native = addon();
    let outcome: VmOutcome | undefined;
    const rc = native.loopWatchArm(this.#data.kvmRunAddress, KICK_SIGNAL, this.#ring.counters);
    if (rc < 0) {
      outcome = vcpuFailed(this.#data, new Error(`cannot watch the event loop (errno ${-rc})`));
    } else {
      try {
        outcome = loop.run();
      } catch (error) {
        outcome = vcpuFailed(this.#data, error);
      } finally {
        native.loopWatchDisarm();
      }
    }
    this.#flushNow();
    if (outcome) this.#end(outcome);
    else if (!this.#paused()) this.wake();
  }

  #paused(): boolean {
    return this.#control.command === VcpuCommand.Pause && this.#control.state === VcpuState.Paused;
  }

  /** Console output to its readers; a reader that throws does so outside the exit loop. */
  #flushNow(): void {
    try {
      this.#flush();
    } catch (error) {
      queueMicrotask(() => { throw error; });
    }
  }

  #end(outcome: VmOutcome): void {
    this.#done = true;
    running = false;
    this.#post(exitMessage(this.#data, this.#loop, outcome));
    this.#resolveEnded();
  }
}
