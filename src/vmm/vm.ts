// The public face of a virtual machine, on the main thread: build it, start one thread per vCPU,
// exchange console bytes, pause, stop, and learn how it ended. The event loop is never blocked:
// KVM_RUN happens on the vCPU threads, and this side only moves bytes and flags; or, for a VM
// with one vCPU created with `mainThread`, on this thread between the event loop's turns
// (main-thread-vcpu.ts).

import { EventEmitter } from 'node:events';
import type { Worker } from 'node:worker_threads';
import { TsvmmError } from '../errors.js';
import { resolveConfig, type ResolvedVmConfig, type VmConfig } from './config.js';
import { buildRestoredVm, buildVm, type BuiltVm } from './builder.js';
import { diskIdentities, MappedFiles, openVmSnapshot, SnapshotHistory, type RestoredDevices, type RestoreOptions, type SnapshotOptions } from './snapshot.js';
import type { WriteResult } from '../snapshot/index.js';
import { ByteRing } from './byte-ring.js';
import { COUNTERS, VcpuCommand, VcpuControl, VcpuState, type Counter } from './vcpu-control.js';
import { describeOutcome, isCrash, type VmOutcome } from './outcome.js';
import type { VcpuDump } from './diagnostics.js';
import type { VcpuWorkerData, VcpuWorkerMessage } from './vcpu-thread.js';
import { MainThreadVcpu } from './main-thread-vcpu.js';
import { DeviceMailbox } from './device-mailbox.js';
import { installKickHandler, kickThread, kickVcpu } from './kick.js';
import type { IoWorkerData, IoWorkerMessage } from './io-worker.js';
import { IoCommand, IoControl } from './io-control.js';
import { EventFd } from '../kvm/event-fd.js';
import { CoalescedRing } from '../kvm/coalesced-ring.js';
import type { LegacyDeviceState } from './legacy-devices.js';
import type { VirtioRunnerState } from '../devices/virtio/device.js';
import { VcpuRequest } from './vcpu-control.js';
import { waitForOutput } from '../api/wait-for-output.js';
import { prestartVcpuThreads, startIoThread, takeVcpuThread } from './threads.js';
import { monotonicMs } from '../meta/clock.js';
import { startupMark } from '../meta/startup-trace.js';

const KICK_RETRY_MS = 20;
/**
 * How often the main thread looks for UART writes stuck in the coalesced ring (#watchCoalescedRing):
 * every 20 ms after console input or a stuck write, backing off to 320 ms while the ring stays
 * empty, since a tick interrupts a vCPU that runs on the main thread.
 */
const RING_TICK_MIN_MS = 20;
const RING_TICK_MAX_MS = 320;
const OUTPUT_LIMIT = 16 * 1024 * 1024;
/** How often a restored VM checks that the snapshot files its memory comes from are intact. */
const MAPPED_FILE_CHECK_MS = 250;

export type VmState = 'created' | 'running' | 'paused' | 'exited';

export interface VmEvents {
  output: [chunk: Buffer];
  log: [message: string];
  exit: [outcome: VmOutcome];
}

interface VcpuThread {
  control: VcpuControl;
  ended: Promise<void>;
  /** After its command changed or a request was made of it: a vCPU on the main thread needs it. */
  wake(): void;
}

/** How a VM runs, as opposed to what it is (VmConfig). */
export interface VmRunOptions {
  /**
   * A VM with one vCPU runs it on this thread, between turns of the event loop, instead of on a
   * worker thread of its own: it starts ~45 ms of CPU sooner and takes ~12 MiB less memory (a
   * worker is a second JavaScript engine). The guest then runs only while this thread's event
   * loop has nothing to do, and only one such VM can run at a time in a process. Ignored for a VM
   * with more vCPUs.
   */
  mainThread?: boolean;
}

export class VmError extends TsvmmError {
  constructor(code: string, message: string) {
    super(code, message);
    this.name = 'VmError';
  }
}

// Doors into a Vm for this package's own code and tests, set by the class's static block: not
// part of the library (index.ts does not export them, and package.json allows no deep imports).
let emergencyStopAll: () => void;
/** The devices' state of a paused VM, as a snapshot stores it. */
export let deviceStateOf: (vm: Vm) => Promise<RestoredDevices>;

export class Vm extends EventEmitter<VmEvents> {
  readonly config: ResolvedVmConfig;
  readonly #built: BuiltVm;
  readonly #consoleIn = ByteRing.create(4096);
  readonly #consoleOut = ByteRing.create(64 * 1024);
  readonly #mailbox = DeviceMailbox.create();
  /** The device I/O thread, when the VM has virtio devices; `#ioControl` tells it what to do. */
  #io: { worker: Worker; ended: Promise<void> } | undefined;
  /** One-shot waiters for the threads' answers to a snapshot's questions. */
  #onDevices: ((state: LegacyDeviceState) => void) | undefined;
  #onIoPaused: ((devices: VirtioRunnerState[]) => void) | undefined;
  /** Where the virtio devices' queues stood when the I/O thread last paused. */
  #ioPausedState: VirtioRunnerState[] = [];
  readonly #ioControl = IoControl.create();
  #threads: VcpuThread[] = [];
  #state: VmState = 'created';
  #output: Buffer[] = [];
  #outputBytes = 0;
  #pendingInput: Buffer[] = [];
  #outcome: VmOutcome | undefined;
  /** The vCPUs' states as their threads exited, when the VM ended in a crash. */
  readonly #dumps: VcpuDump[] = [];
  #exited: Promise<VmOutcome>;
  #resolveExited!: (outcome: VmOutcome) => void;
  /** Resolves as soon as the VM starts to stop: waits for a thread's answer give up then. */
  readonly #ending: Promise<void>;
  #resolveEnding!: () => void;
  #stopping = false;
  /**
   * Control operations (pause, snapshot) run one at a time, in the order asked: each waits for
   * the one before to settle. `#queue` is the last one asked for, `#busy` counts those not done.
   * The memory they read stays mapped until all have settled (see #stopThreads).
   */
  #queue: Promise<void> = Promise.resolve();
  #busy = 0;
  /** Aborts the snapshot being written, when the VM is stopped meanwhile. */
  #snapshotAbort: AbortController | undefined;
  #startedAt = 0;
  #ringWatch: { timer: NodeJS.Timeout | undefined; tickMs: number; tick(): void } | undefined;
  /** Its single vCPU runs on this thread (VmRunOptions.mainThread). */
  readonly #onMainThread: boolean;

  /** Device state to start from, for a VM restored from a snapshot. */
  readonly #restored: RestoredDevices | undefined;
  /** For a restored VM, the snapshot files its memory is mapped from, and the timer watching them. */
  #mapped: { files: MappedFiles; timer: NodeJS.Timeout | undefined } | undefined;
  /** The last snapshot and the pages written since, for diff snapshots. */
  readonly #snapshots = new SnapshotHistory();

  private constructor(config: ResolvedVmConfig, built: BuiltVm, onMainThread: boolean, restored?: RestoredDevices) {
    super();
    this.config = config;
    this.#onMainThread = onMainThread;
    this.#built = built;
    this.#restored = restored;
    this.#exited = new Promise((resolve) => { this.#resolveExited = resolve; });
    this.#ending = new Promise((resolve) => { this.#resolveEnding = resolve; });
  }

  /** Runs `op` once every control operation asked for before it has settled. */
  #exclusive<T>(op: () => Promise<T>): Promise<T> {
    this.#busy++;
    const result = this.#queue.then(async () => {
      try {
        return await op();
      } finally {
        this.#busy--;
      }
    });
    this.#queue = result.then(() => undefined, () => undefined);
    return result;
  }

  /** Builds the VM (memory, kernel, vCPUs) without running it. Throws TsvmmError on bad input. */
  static create(config: VmConfig = {}, options: VmRunOptions = {}): Vm {
    startupMark('create');
    const resolved = resolveConfig(config);
    const onMainThread = Vm.#wantsMainThread(resolved.cpus, options);
    // Its threads boot while the VM is built.
    if (!onMainThread) prestartVcpuThreads(resolved.cpus);
    return new Vm(resolved, buildVm(resolved), onMainThread);
  }

  static #wantsMainThread(cpus: number, options: VmRunOptions): boolean {
    return options.mainThread === true && cpus === 1;
  }

  /**
   * A VM that continues from a snapshot file, in this process: its memory is mapped from the
   * file (pages load when the guest touches them), so restoring is quick whatever the RAM size,
   * and the same file can be restored many times at once. Started unless `start` is false.
   */
  static async restore(path: string, options: RestoreOptions & VmRunOptions & { name?: string; start?: boolean } = {}): Promise<Vm> {
    if (!options.mainThread) prestartVcpuThreads(1);
    const opened = await openVmSnapshot(path, { diskPaths: options.diskPaths, verify: options.verify });
    const onMainThread = Vm.#wantsMainThread(opened.config.cpus, options);
    if (!onMainThread) prestartVcpuThreads(opened.config.cpus);
    const config: ResolvedVmConfig = { ...opened.config, name: options.name ?? opened.config.name };
    let built: BuiltVm;
    try {
      built = buildRestoredVm(config, opened.memory, (_kvm, vm, vcpus) => opened.restoreKvm(vm, vcpus));
    } catch (error) {
      opened.mapped.close();
      throw error;
    }
    opened.devices.virtio.forEach((d, i) => {
      const slot = built.virtio.slots[i];
      if (!slot || slot.state.byteLength !== d.registers.length) {
        built.release();
        opened.mapped.close();
        throw new VmError('BAD_SNAPSHOT', `${path}: virtio device ${i} does not match this VM's devices`);
      }
      new Uint8Array(slot.state).set(d.registers);
    });
    const vm = new Vm(config, built, onMainThread, opened.devices);
    vm.#mapped = { files: opened.mapped, timer: undefined };
    vm.#snapshots.restoredFrom(opened.source, built.vm, built.memory);
    if (options.start !== false) vm.start();
    return vm;
  }

  /**
   * Saves the VM to `path` (atomically: a crash leaves any previous file intact). A running VM
   * is paused for the save and resumed after; a paused one stays paused. With `diff`, only the
   * pages written since the VM's previous snapshot (or the one it was restored from) are saved,
   * and the file needs that one to be restored.
   */
  async snapshot(path: string, options: SnapshotOptions = {}): Promise<WriteResult> {
    this.#snapshots.check(path, options);
    return this.#exclusive(async () => {
      const wasRunning = this.#state === 'running';
      const abort = new AbortController();
      this.#snapshotAbort = abort;
      try {
        this.#checkState('snapshot', 'running', 'paused');
        if (wasRunning) await this.#pause();
        this.#checkState('snapshot', 'paused');
        const { kvm, vm, vcpus, memory } = this.#built;
        const devices = await this.#deviceState();
        const disks = diskIdentities(this.config, this.#built.virtio.slots);
        return await this.#snapshots.write(path, { config: this.config, kvm, vm, vcpus, memory, devices, disks }, {
          ...options, signal: options.signal ? AbortSignal.any([options.signal, abort.signal]) : abort.signal,
        });
      } catch (error) {
        if (this.#stopping) throw new VmError('VM_STOPPED', `snapshot to ${path} abandoned: the VM was stopped while it was being saved (the file was not written)`);
        throw error;
      } finally {
        this.#snapshotAbort = undefined;
        if (wasRunning && this.#state === 'paused' && !this.#stopping) this.#resume();
      }
    });
  }

  /** Throws VM_STATE unless the VM is in one of `states` and not stopping. */
  #checkState(what: string, ...states: VmState[]): void {
    if (this.#stopping && this.#state !== 'exited') throw new VmError('VM_STATE', `cannot ${what} a VM that is stopping`);
    if (!states.includes(this.#state)) throw new VmError('VM_STATE', `cannot ${what} a VM that is ${this.#state}`);
  }

  /** Builds and starts a VM. */
  static boot(config: VmConfig = {}, options: VmRunOptions = {}): Vm {
    const vm = Vm.create(config, options);
    vm.start();
    return vm;
  }

  get state(): VmState {
    return this.#state;
  }

  /** How the kernel was entered: "PVH ELF" or "ELF64". */
  get bootProtocol(): string {
    return this.#built.kernel.protocol;
  }

  /** How the VM ended, once it has (and its resources are released); undefined before. */
  get outcome(): VmOutcome | undefined {
    return this.#state === 'exited' ? this.#outcome : undefined;
  }

  /** Everything the guest wrote to its serial console so far. */
  get output(): string {
    return Buffer.concat(this.#output).toString('utf8');
  }

  get uptimeMs(): number {
    return this.#startedAt ? monotonicMs() - this.#startedAt : 0;
  }

  /** Exit counters summed over all vCPUs. */
  get stats(): Record<Counter, number> {
    const totals = Object.fromEntries(COUNTERS.map((c) => [c, 0])) as Record<Counter, number>;
    for (const t of this.#threads) for (const c of COUNTERS) totals[c] += t.control.count(c);
    totals.faults += this.#ioControl.faults;
    return totals;
  }

  start(): void {
    if (this.#state !== 'created') throw new VmError('VM_STATE', `cannot start a VM that is ${this.#state}`);
    startupMark('start');
    if (this.#onMainThread && MainThreadVcpu.busy) {
      throw new VmError('VM_BUSY', 'another VM runs its vCPU on this thread (mainThread); only one can at a time');
    }
    // Guest memory may still be on its way into KVM (builder.ts): no vCPU runs before it is there.
    // A VM whose memory KVM refused can never run: it gives back what it holds, as stop() would.
    try {
      this.#built.memoryReady();
    } catch (error) {
      void this.stop();
      throw error;
    }
    installKickHandler();
    const { vm, vcpus, memory } = this.#built;
    const controls = vcpus.map(() => VcpuControl.create());
    this.#startedAt = monotonicMs();
    this.#state = 'running';
    Vm.#live.add(this);
    installExitHook();
    this.#threads = vcpus.map((vcpu, index) => {
      const control = controls[index]!;
      const data: VcpuWorkerData = {
        vmFd: vm.fd,
        vcpuFd: vcpu.fd,
        vcpuId: vcpu.id,
        kvmRunAddress: vcpu.kvmRun.address,
        kvmRunSize: vcpu.mmapSize,
        memory: memory.descriptors,
        control: control.buffer,
        consoleIn: this.#consoleIn.buffer,
        consoleOut: this.#consoleOut.buffer,
        mailbox: this.#mailbox.buffer,
        virtio: { slots: index === 0 ? this.#built.virtio.slots : [], controlFd: this.#built.virtio.controlFd },
        coalescedRingPage: index === 0 ? this.#built.coalescedRingPage : undefined,
        deviceState: index === 0 ? this.#restored?.legacy : undefined,
        // The boot CPU owns the devices; the others reach them through it.
        deviceOwner: index === 0 ? undefined : { control: controls[0]!.buffer, kvmRunAddress: vcpus[0]!.kvmRun.address },
      };
      if (this.#onMainThread) {
        const vcpu = new MainThreadVcpu(data, memory, (message) => this.#onMessage(message), () => this.#drainOutput(this.#consoleOut));
        vcpu.start();
        return { control, ended: vcpu.ended, wake: () => vcpu.wake() };
      }
      const worker = takeVcpuThread();
      worker.postMessage(data);
      const ended = new Promise<void>((resolve) => {
        worker.on('message', (message: VcpuWorkerMessage) => this.#onMessage(message));
        worker.on('error', (error) => this.#finish({ kind: 'error', code: 'VMM_ERROR', message: `vCPU ${vcpu.id} thread failed: ${error.message}`, diagnostics: error.stack }));
        worker.on('exit', () => {
          control.state = VcpuState.Exited;
          this.#finish({ kind: 'error', code: 'VMM_ERROR', message: `vCPU ${vcpu.id} thread ended unexpectedly` });
          resolve();
        });
      });
      return { control, ended, wake: () => {} };
    });
    this.#startIoThread();
    if (this.#mapped) {
      const mapped = this.#mapped;
      mapped.timer = setInterval(() => {
        const problem = mapped.files.problem();
        if (problem) this.#finish({ kind: 'error', code: 'SNAPSHOT_CHANGED', message: problem });
      }, MAPPED_FILE_CHECK_MS);
      mapped.timer.unref();
    }
    this.#watchCoalescedRing();
    // A vCPU on this thread hands its console output over itself.
    if (!this.#onMainThread) void this.#pumpOutput(this.#consoleOut);
    if (this.#built.virtio.console) void this.#pumpOutput(this.#built.virtio.console.output);
  }

  /**
   * The boot CPU replays the UART writes KVM queued (builder.ts) at its next exit, but a guest may
   * write its last bytes and then only halt, which KVM handles without exiting: when the same
   * writes still wait at two ticks in a row, kick the boot CPU out so that they reach the console
   * (a kick costs about an exit). A busy guest empties the ring itself, and is left alone.
   */
  #watchCoalescedRing(): void {
    const page = this.#built.coalescedRingPage;
    if (page === undefined) return;
    const ring = new CoalescedRing(this.#built.vcpus[0]!.kvmRun.bytes.buffer as ArrayBuffer, page);
    const boot = this.#threads[0]!;
    let seen = -1;
    const tick = () => {
      // The ring is in the vCPU's kvm_run mapping, which is gone once the VM is released.
      if (this.#state === 'exited') return;
      const position = ring.position;
      if (position < 0) {
        watch.tickMs = Math.min(watch.tickMs * 2, RING_TICK_MAX_MS);
      } else {
        if (position === seen && boot.control.state === VcpuState.Running) kickVcpu(this.#built.vcpus[0]!.kvmRun, boot.control);
        watch.tickMs = RING_TICK_MIN_MS;
      }
      seen = position;
      watch.timer = setTimeout(tick, watch.tickMs).unref();
    };
    const watch = { timer: setTimeout(tick, RING_TICK_MIN_MS).unref(), tickMs: RING_TICK_MIN_MS, tick };
    this.#ringWatch = watch;
  }

  /** Console input usually brings output: look at the ring soon again. */
  #watchRingSoon(): void {
    const watch = this.#ringWatch;
    if (!watch || watch.tickMs === RING_TICK_MIN_MS) return;
    watch.tickMs = RING_TICK_MIN_MS;
    clearTimeout(watch.timer);
    watch.timer = setTimeout(watch.tick, RING_TICK_MIN_MS).unref();
  }

  #startIoThread(): void {
    const { virtio, memory } = this.#built;
    if (virtio.slots.length === 0) return;
    const data: IoWorkerData = {
      memory: memory.descriptors, devices: virtio.slots, controlFd: virtio.controlFd, control: this.#ioControl.buffer,
      restore: this.#restored?.virtio.map((d) => d.io),
    };
    const worker = startIoThread(data);
    const ended = new Promise<void>((resolve) => {
      worker.on('message', (message: IoWorkerMessage) => {
        if (message.type === 'log') this.emit('log', message.message);
        else if (message.type === 'paused') this.#onIoPaused?.(message.devices);
        else this.#finish({ kind: 'error', code: 'VMM_ERROR', message: `device I/O thread failed: ${message.message.split('\n')[0]}`, diagnostics: message.message });
      });
      worker.on('error', (error) => this.#finish({ kind: 'error', code: 'VMM_ERROR', message: `device I/O thread failed: ${error.message}`, diagnostics: error.stack }));
      worker.on('exit', () => resolve());
    });
    this.#io = { worker, ended };
  }

  /** Asks the I/O thread to end and waits until it has: its fds must outlive it. */
  async #stopIoThread(): Promise<void> {
    if (!this.#io) return;
    this.#ioControl.command = IoCommand.Stop;
    new EventFd(this.#built.virtio.controlFd).signal();
    await this.#io.ended;
  }

  /** Lets the I/O thread finish the work in hand and wait; resolves with its queues' positions. */
  async #pauseIoThread(): Promise<VirtioRunnerState[]> {
    if (!this.#io) return [];
    const paused = new Promise<VirtioRunnerState[]>((resolve) => { this.#onIoPaused = resolve; });
    this.#ioControl.requestPause();
    new EventFd(this.#built.virtio.controlFd).signal();
    // A VM that ends meanwhile (its guest shut down) stops the thread, which then never answers.
    return Promise.race([paused, this.#ending.then(() => [])]);
  }

  #resumeIoThread(): void {
    if (!this.#io) return;
    this.#ioControl.command = IoCommand.Run;
  }

  /** Sends bytes to the guest's serial console, as if typed. */
  write(input: string | Uint8Array): void {
    if (this.#state === 'exited') return;
    this.#pendingInput.push(Buffer.from(input));
    this.#flushInput();
  }

  /** Resolves with the console output once it matches `pattern`; rejects after `timeoutMs` or if the VM ends first. */
  waitForOutput(pattern: string | RegExp, timeoutMs = 30_000): Promise<string> {
    return waitForOutput<VmOutcome>(this, pattern, timeoutMs, {
      ended: (outcome) => new VmError('VM_EXITED', `VM ended (${describeOutcome(outcome)}) before printing ${String(pattern)}`),
      timedOut: () => new VmError('TIMEOUT', `no ${String(pattern)} in the console output after ${timeoutMs} ms`),
    });
  }

  /** Resolves when the VM has ended and its resources are released. */
  wait(): Promise<VmOutcome> {
    return this.#exited;
  }

  /**
   * Stops every vCPU (at once, even inside KVM_RUN) and resolves when the VM is gone. A snapshot
   * being written is abandoned (its target is left as it was); guest memory stays mapped until
   * its writer has let go of it.
   */
  async stop(): Promise<VmOutcome> {
    if (this.#state === 'created') {
      this.#state = 'exited';
      this.#built.release();
      this.#mapped?.files.close();
      this.#outcome = { kind: 'stopped' };
      this.#resolveExited(this.#outcome);
    } else if (this.#state !== 'exited') {
      this.#stopThreads({ kind: 'stopped' });
    }
    return this.#exited;
  }

  /**
   * Pauses every vCPU; resolves when all of them are out of KVM_RUN and waiting. Waits for a
   * snapshot or pause asked for earlier to finish first.
   */
  pause(): Promise<void> {
    return this.#exclusive(() => this.#pause());
  }

  async #pause(): Promise<void> {
    this.#checkState('pause', 'running');
    for (const t of this.#threads) t.control.command = VcpuCommand.Pause;
    await Promise.all(this.#threads.map((t) => this.#kickUntil(t, () => t.control.state === VcpuState.Paused || t.control.state === VcpuState.Exited)));
    // With the vCPUs still, no new requests arrive; the I/O thread finishes what it holds.
    this.#ioPausedState = await this.#pauseIoThread();
    if (this.#state === 'running' && !this.#stopping) this.#state = 'paused';
  }

  /** Lets a paused VM run again; refused (VM_BUSY) while a pause or snapshot is under way. */
  resume(): void {
    if (this.#busy > 0) {
      throw new VmError('VM_BUSY', 'cannot resume while a pause or snapshot of this VM is under way; resume once it has finished');
    }
    this.#resume();
  }

  #resume(): void {
    this.#checkState('resume', 'paused');
    this.#resumeIoThread();
    for (const t of this.#threads) {
      t.control.command = VcpuCommand.Run;
      t.wake();
    }
    this.#state = 'running';
  }

  /**
   * The devices' state, for a snapshot of a paused VM: the legacy devices from the boot CPU's
   * thread, and for each virtio device its register file and where its queues stand.
   */
  async #deviceState(): Promise<RestoredDevices> {
    if (this.#state !== 'paused') throw new VmError('VM_STATE', `pause the VM before saving its devices (it is ${this.#state})`);
    const boot = this.#threads[0]!;
    const legacy = await Promise.race([
      new Promise<LegacyDeviceState>((resolve) => {
        this.#onDevices = resolve;
        boot.control.request = VcpuRequest.SaveDevices;
        boot.wake();
      }),
      // A guest that shut down just as it was paused: its thread is gone and will not answer.
      this.#ending.then((): never => { throw new VmError('VM_STATE', 'the VM ended while its devices were being saved'); }),
    ]);
    const virtio = this.#built.virtio.slots.map((slot, i) => ({
      registers: new Uint8Array(slot.state.slice(0)),
      io: this.#ioPausedState[i],
    }));
    return { legacy, virtio };
  }

  #onMessage(message: VcpuWorkerMessage): void {
    switch (message.type) {
      case 'exit':
        if (message.dump) this.#dumps.push(message.dump);
        this.#stopThreads(message.outcome);
        break;
      case 'log':
        this.emit('log', message.message);
        break;
      case 'devices':
        this.#onDevices?.(message.state);
        this.#onDevices = undefined;
        break;
      default: {
        const never: never = message;
        return never;
      }
    }
  }

  /** The first outcome wins: the others are consequences of stopping. */
  #stopThreads(outcome: VmOutcome): void {
    // A guest whose memory vanished with its snapshot file faults: that, not the fault, is the news.
    const problem = outcome.kind !== 'stopped' && this.#outcome === undefined ? this.#mapped?.files.problem() : undefined;
    this.#outcome ??= problem ? { kind: 'error', code: 'SNAPSHOT_CHANGED', message: problem } : outcome;
    // After a crash every vCPU reports its state as it leaves, for the outcome's crash report.
    if (isCrash(this.#outcome)) for (const t of this.#threads) t.control.dumpOnExit = true;
    if (!this.#stopping) {
      this.#stopping = true;
      this.#resolveEnding();
      this.#snapshotAbort?.abort();
    }
    for (const t of this.#threads) {
      t.control.command = VcpuCommand.Stop;
      t.wake();
      void this.#kickUntil(t, () => t.control.state === VcpuState.Exited);
    }
    // Memory is unmapped only once no operation reads it (a snapshot writer, which the abort
    // above makes quick); the operations wait on #ending, never on #exited, so this ends.
    void Promise.all(this.#threads.map((t) => t.ended)).then(() => this.#stopIoThread()).then(() => this.#queue).then(() => this.#release());
  }

  #finish(outcome: VmOutcome): void {
    if (this.#state !== 'exited') this.#stopThreads(outcome);
  }

  /**
   * Kicks a vCPU out of KVM_RUN until `done()`; a kick can land between two KVM_RUNs, hence the
   * retries. At least once while its thread lives: a vCPU resumed a moment ago may still show
   * the state it had (Paused) while its thread is on its way back into KVM_RUN, and the kick's
   * immediate_exit flag sends it straight back out to see the new command.
   */
  async #kickUntil(thread: VcpuThread, done: () => boolean): Promise<void> {
    const run = this.#built.vcpus[this.#threads.indexOf(thread)]!.kvmRun;
    for (;;) {
      // A thread that has ended must not be signalled: its id may be gone.
      if (thread.control.state !== VcpuState.Exited) kickVcpu(run, thread.control);
      if (done()) return;
      await new Promise((resolve) => setTimeout(resolve, KICK_RETRY_MS));
    }
  }

  #flushInput(): void {
    // A retry of input that did not fit may come due after the VM ended (and its mappings went).
    if (this.#state === 'exited') return;
    this.#watchRingSoon();
    const virtioConsole = this.#built.virtio.console;
    const ring = virtioConsole?.input ?? this.#consoleIn;
    while (this.#pendingInput.length > 0) {
      const chunk = this.#pendingInput[0]!;
      const n = ring.writeSome(chunk);
      if (n < chunk.length) {
        this.#pendingInput[0] = chunk.subarray(n);
        setTimeout(() => this.#flushInput(), 10);
        break;
      }
      this.#pendingInput.shift();
    }
    if (virtioConsole) {
      new EventFd(virtioConsole.inputReady).signal();
      return;
    }
    // The boot CPU owns the UART; a kick makes it look at the input ring even while halted. A
    // paused (or just resumed) vCPU keeps the kick's immediate_exit flag and looks on its way out.
    const boot = this.#threads[0];
    if (boot && boot.control.state !== VcpuState.Exited) kickVcpu(this.#built.vcpus[0]!.kvmRun, boot.control);
  }

  async #pumpOutput(ring: ByteRing): Promise<void> {
    while (this.#state !== 'exited') {
      await Promise.race([ring.waitForData(), this.#exited]);
      this.#drainOutput(ring);
    }
  }

  #drainOutput(ring: ByteRing): void {
    const bytes = ring.drain();
    if (bytes.length === 0) return;
    const chunk = Buffer.from(bytes);
    this.#output.push(chunk);
    this.#outputBytes += chunk.length;
    while (this.#outputBytes > OUTPUT_LIMIT && this.#output.length > 1) this.#outputBytes -= this.#output.shift()!.length;
    this.emit('output', chunk);
  }

  /** VMs whose threads are running, for the exit hook. */
  static readonly #live = new Set<Vm>();

  /**
   * The process is ending without having stopped us (an uncaught error, process.exit). Node then
   * joins every worker thread, and one blocked in KVM_RUN or epoll_wait never returns on its own:
   * get them all out of their system calls, synchronously, so the process can end.
   */
  static {
    emergencyStopAll = () => {
      for (const vm of Vm.#live) vm.#emergencyStop();
    };
    deviceStateOf = (vm) => vm.#deviceState();
  }

  #emergencyStop(): void {
    this.#threads.forEach((t, i) => {
      t.control.command = VcpuCommand.Stop;
      kickVcpu(this.#built.vcpus[i]!.kvmRun, t.control);
    });
    this.#ioControl.command = IoCommand.Stop;
    const io = this.#ioControl.thread;
    if (io !== 0n) kickThread(io);
  }

  #release(): void {
    if (this.#state === 'exited') return;
    Vm.#live.delete(this);
    clearTimeout(this.#ringWatch?.timer);
    this.#drainOutput(this.#consoleOut);
    if (this.#built.virtio.console) this.#drainOutput(this.#built.virtio.console.output);
    this.#state = 'exited';
    this.#built.release();
    if (this.#mapped) {
      clearInterval(this.#mapped.timer);
      this.#mapped.files.close();
    }
    let outcome: VmOutcome = this.#outcome ?? { kind: 'stopped' };
    if (isCrash(outcome) && this.#dumps.length && outcome.kind !== 'stopped') {
      outcome = { ...outcome, vcpus: this.#dumps.sort((a, b) => a.id - b.id) };
      this.#outcome = outcome;
    }
    this.emit('exit', outcome);
    this.#resolveExited(outcome);
  }
}

let exitHookInstalled = false;
function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => emergencyStopAll());
}
