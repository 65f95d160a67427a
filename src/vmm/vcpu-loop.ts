// The exit loop of one vCPU: KVM_RUN, decode the exit, hand it to a device or end the run.
// It runs on the vCPU's own thread, which also owns the devices, because a thread-to-thread
// hand-off costs ~8x an exit on these machines (see README, "Performance").

import type { VcpuFd } from '../kvm/kvm.js';
import type { KvmRun, VcpuExit } from '../kvm/kvm-run.js';
import { KVM_EXIT, KVM_INTERNAL_ERROR, KVM_SYSTEM_EVENT } from '../kvm/ioctls.js';
import type { IoSpace } from '../devices/bus.js';
import { FaultLog } from '../devices/fault-log.js';
import type { GuestMemory } from '../memory/guest-memory.js';
import { COUNTERS, VcpuCommand, VcpuControl, VcpuState, type Counter } from './vcpu-control.js';
import type { VmOutcome } from './outcome.js';
import { vcpuDump, vcpuReport, type VcpuDump } from './diagnostics.js';
import { ExitTrace } from './exit-trace.js';
import type { CoalescedRing } from '../kvm/coalesced-ring.js';
import { startupMark } from '../meta/startup-trace.js';

export interface VcpuLoopContext {
  vcpu: VcpuFd;
  run: KvmRun;
  memory: GuestMemory;
  pio: IoSpace;
  mmio: IoSpace;
  /** The device owner's: writes KVM queued instead of exiting, replayed before each exit is handled. */
  coalesced?: CoalescedRing;
  control: VcpuControl;
  /** Called after a kick: console input or an AP's device access may wait. */
  onKick(): void;
  /**
   * Called when a paused vCPU is poked: an AP's device access or a request (save the devices)
   * may wait. Not console input: a paused VM's devices must not change under a snapshot.
   */
  onPausedWake(): void;
  log(message: string): void;
  /**
   * The loop runs on the main thread in slices between turns of its event loop
   * (main-thread-vcpu.ts): run() returns undefined after a kick that `kicked()` says was the
   * event loop's (it has work), or when asked to yield, and a pause returns instead of waiting.
   */
  sliced?: { kicked(): boolean };
}

export class VcpuLoop {
  readonly #ctx: VcpuLoopContext;
  /**
   * Set by a device (the i8042 reset line) to end the run after the current exit, or to 'yield'
   * the slice (a console ring filling up).
   */
  #requested: VmOutcome | 'yield' | undefined;
  readonly #counters: Float64Array;
  readonly #index: Record<Counter, number>;
  /** Unassigned addresses the guest touched: the first few are logged, all are counted. */
  readonly #unassigned: FaultLog;
  readonly #trace = new ExitTrace();
  #ranBefore = false;

  constructor(ctx: VcpuLoopContext) {
    this.#ctx = ctx;
    this.#unassigned = new FaultLog('unassigned addresses', ctx.log);
    this.#counters = ctx.control.counters;
    this.#index = Object.fromEntries(COUNTERS.map((c, i) => [c, i])) as Record<Counter, number>;
  }

  /** Ends the run once the current exit is handled. */
  requestStop(outcome: VmOutcome): void {
    if (this.#requested === undefined || this.#requested === 'yield') this.#requested = outcome;
  }

  /** For a paused `sliced` loop, whose driver was woken: serves what waits (a request). */
  wakePaused(): void {
    this.#ctx.onPausedWake();
  }

  /** Ends a slice (see `sliced`) once the current exit is handled. */
  requestYield(): void {
    this.#requested ??= 'yield';
  }

  /** Runs until the VM's run ends, or, `sliced`, until the slice does (undefined). */
  run(): VmOutcome | undefined {
    const { vcpu, run, control } = this.#ctx;
    control.state = VcpuState.Running;
    if (!this.#ranBefore) {
      this.#ranBefore = true;
      startupMark(`vcpu${vcpu.id}-first-run`);
    }
    const counters = this.#counters;
    const exitsIndex = this.#index.exits;
    const { pio, coalesced } = this.#ctx;
    const ioIndex = this.#index.io;
    for (;;) {
      const command = control.command;
      if (command !== VcpuCommand.Run) {
        const outcome = this.#obey(command);
        if (outcome || this.#ctx.sliced) return outcome;
      }
      const rc = vcpu.run();
      counters[exitsIndex]!++;
      // Writes the guest made before this exit come first, whatever the exit is.
      if (coalesced?.pending) coalesced.drain(this.#replay);
      // The hot path: one port access, handled without decoding into an object. Everything
      // else, including string I/O, takes the general route through handle().
      if (rc === 0 && run.isSingleIo) {
        counters[ioIndex]!++;
        const port = run.ioPort;
        const write = run.ioIsWrite;
        const item = run.ioItem;
        const claimed = write ? pio.write(port, item) : pio.read(port, item);
        this.#trace.access(KVM_EXIT.KVM_EXIT_IO, port, write, item, true);
        if (!claimed) this.#unclaimed('port', port);
      } else {
        const exit = run.decode(rc);
        const outcome = this.handle(exit);
        if (outcome) return outcome;
        if (exit.kind === 'interrupted' && this.#ctx.sliced?.kicked()) return undefined;
      }
      if (this.#requested) {
        const requested = this.#requested;
        if (requested !== 'yield') return requested;
        this.#requested = undefined;
        return undefined;
      }
    }
  }

  /** A write KVM queued instead of exiting: to its device, and into the trace like an exit's. */
  readonly #replay = (isPio: boolean, address: number, data: Uint8Array): void => {
    (isPio ? this.#ctx.pio : this.#ctx.mmio).write(address, data);
    this.#trace.access(isPio ? KVM_EXIT.KVM_EXIT_IO : KVM_EXIT.KVM_EXIT_MMIO, address, true, data, true);
  };

  /** One exit: undefined to go on, or how the run ends. Every exit kind is handled here. */
  handle(exit: VcpuExit): VmOutcome | undefined {
    if (exit.kind === 'interrupted') this.#trace.other(-1, 0);
    else if (exit.kind !== 'io' && exit.kind !== 'mmio') this.#trace.other(0, this.#ctx.run.exitReason);
    switch (exit.kind) {
      case 'io':
        this.#io(exit);
        return undefined;
      case 'mmio':
        this.#mmio(exit);
        return undefined;
      case 'interrupted':
        this.#ctx.run.immediateExit = false;
        this.#counters[this.#index.interrupted]!++;
        this.#ctx.onKick();
        return undefined;
      case 'hlt':
      case 'irq-window-open':
        return undefined;
      case 'shutdown':
        return { kind: 'shutdown', reason: 'triple-fault' };
      case 'system-event':
        if (exit.type === KVM_SYSTEM_EVENT.KVM_SYSTEM_EVENT_SHUTDOWN) return { kind: 'shutdown', reason: 'system-shutdown' };
        if (exit.type === KVM_SYSTEM_EVENT.KVM_SYSTEM_EVENT_RESET) return { kind: 'shutdown', reason: 'system-reset' };
        if (exit.type === KVM_SYSTEM_EVENT.KVM_SYSTEM_EVENT_CRASH) return { kind: 'shutdown', reason: 'system-crash' };
        return this.#error('UNHANDLED_EXIT', `unhandled system event ${exit.type}`);
      case 'internal-error':
        if (exit.suberror === KVM_INTERNAL_ERROR.KVM_INTERNAL_ERROR_EMULATION) {
          return this.#error('EMULATION_FAILURE', `vCPU ${this.#ctx.vcpu.id}: KVM could not emulate a guest instruction (KVM_EXIT_INTERNAL_ERROR, emulation failure)`);
        }
        return this.#error('INTERNAL_ERROR', `vCPU ${this.#ctx.vcpu.id}: KVM internal error, suberror ${exit.suberror}${exit.data.length ? ` (data ${exit.data.map((d) => `0x${d.toString(16)}`).join(' ')})` : ''}`);
      case 'fail-entry':
        return this.#error('FAIL_ENTRY', `vCPU ${this.#ctx.vcpu.id}: KVM could not enter the guest (KVM_EXIT_FAIL_ENTRY, hardware reason 0x${exit.hardwareReason.toString(16)})`);
      case 'unknown':
        return this.#error('UNHANDLED_EXIT', `vCPU ${this.#ctx.vcpu.id}: unhandled exit reason ${exit.exitReason} (hardware reason 0x${exit.hardwareReason.toString(16)})`);
      default: {
        const never: never = exit;
        return never;
      }
    }
  }

  #io(exit: Extract<VcpuExit, { kind: 'io' }>): void {
    this.#counters[this.#index.io]!++;
    const { pio, run } = this.#ctx;
    const data = run.ioData(exit);
    // String I/O (rep ins/outs) arrives as `count` items of `size` bytes.
    for (let i = 0; i < exit.count; i++) {
      const item = exit.count === 1 ? data : data.subarray(i * exit.size, (i + 1) * exit.size);
      const claimed = exit.write ? pio.write(exit.port, item) : pio.read(exit.port, item);
      if (i === 0) this.#trace.access(KVM_EXIT.KVM_EXIT_IO, exit.port, exit.write, item);
      if (!claimed) this.#unclaimed('port', exit.port);
    }
  }

  #mmio(exit: Extract<VcpuExit, { kind: 'mmio' }>): void {
    this.#counters[this.#index.mmio]!++;
    const { mmio, run } = this.#ctx;
    const data = run.mmioData(exit.length);
    const claimed = exit.write ? mmio.write(exit.address, data) : mmio.read(exit.address, data);
    this.#trace.access(KVM_EXIT.KVM_EXIT_MMIO, exit.address, exit.write, data);
    if (!claimed) this.#unclaimed('MMIO address', exit.address);
  }

  #unclaimed(space: string, address: number): void {
    this.#counters[this.#index.unclaimed]!++;
    // A guest probing hardware must not flood the log, nor grow a map over a 2^52 address space.
    const what = `${space} 0x${address.toString(16)}`;
    this.#unassigned.report(what, () => `guest accessed unassigned ${what}`);
  }

  #obey(command: VcpuCommand): VmOutcome | undefined {
    const { control } = this.#ctx;
    if (command === VcpuCommand.Pause) {
      this.#completePendingIo();
      control.state = VcpuState.Paused;
      // On the main thread the pause is the event loop's: its driver runs no slice meanwhile.
      if (this.#ctx.sliced) return undefined;
      control.waitWhileCommand(VcpuCommand.Pause, this.#ctx.onPausedWake);
      control.state = VcpuState.Running;
      return control.command === VcpuCommand.Stop ? { kind: 'stopped' } : undefined;
    }
    return { kind: 'stopped' };
  }

  /**
   * KVM finishes the instruction behind a port-I/O or MMIO exit (an IN's result into its register)
   * on the next KVM_RUN. One KVM_RUN with immediate_exit set does just that and returns without
   * entering the guest, so a paused vCPU's registers are complete and can be saved.
   */
  #completePendingIo(): void {
    const { vcpu, run } = this.#ctx;
    run.immediateExit = true;
    vcpu.run();
    run.immediateExit = false;
  }

  /**
   * This vCPU's state for a crash report, once run() has returned. A vCPU stopped in the middle
   * of a port-I/O or MMIO exit first finishes that instruction, so its registers are whole.
   */
  dump(): VcpuDump {
    const last = this.#trace.lastReason;
    if (last === KVM_EXIT.KVM_EXIT_IO || last === KVM_EXIT.KVM_EXIT_MMIO) {
      try { this.#completePendingIo(); } catch { /* the dump says what it can */ }
    }
    return vcpuDump(this.#ctx.vcpu, this.#ctx.memory, this.#trace.entries());
  }

  #error(code: Extract<VmOutcome, { kind: 'error' }>['code'], message: string): VmOutcome {
    return { kind: 'error', code, message, diagnostics: vcpuReport(this.#ctx.vcpu, this.#ctx.memory) };
  }
}
