// What a vCPU's thread runs: it attaches to the VM the main thread built, creates the devices
// this thread owns and its exit loop. A worker thread runs that loop to the end (vcpu-worker.ts);
// the main thread may run a single vCPU's loop itself, in slices (main-thread-vcpu.ts).

import type { ByteSink } from '../devices/byte-stream.js';
import { addon } from '../kvm/addon.js';
import { VcpuFd, VmFd } from '../kvm/kvm.js';
import { KvmRun } from '../kvm/kvm-run.js';
import { GuestMemory, type GuestRegionDescriptor } from '../memory/guest-memory.js';
import { ByteRing } from './byte-ring.js';
import { VcpuCommand, VcpuControl, VcpuRequest, VcpuState } from './vcpu-control.js';
import { VcpuLoop } from './vcpu-loop.js';
import { createLegacyDevices, restoreLegacyDevices, saveLegacyDevices, type LegacyDeviceState } from './legacy-devices.js';
import { isCrash, type VmOutcome } from './outcome.js';
import type { VcpuDump } from './diagnostics.js';
import { DeviceMailbox, RemoteBus } from './device-mailbox.js';
import { kickVcpu } from './kick.js';
import type { IoSpace } from '../devices/bus.js';
import type { VirtioSlot } from './virtio-slots.js';
import { VIRTIO_MMIO_SIZE, VirtioMmioState, VirtioMmioTransport } from '../devices/virtio/mmio-transport.js';
import { EventFd } from '../kvm/event-fd.js';
import { CoalescedRing } from '../kvm/coalesced-ring.js';
import { describeError, errorKind, FaultLog } from '../devices/fault-log.js';

export interface VcpuWorkerData {
  vmFd: number;
  vcpuFd: number;
  vcpuId: number;
  kvmRunAddress: bigint;
  kvmRunSize: number;
  memory: GuestRegionDescriptor[];
  control: SharedArrayBuffer;
  consoleIn: SharedArrayBuffer;
  consoleOut: SharedArrayBuffer;
  mailbox: SharedArrayBuffer;
  /** Virtio devices whose registers the boot CPU's thread answers. */
  virtio: { slots: VirtioSlot[]; controlFd: number };
  /** The coalesced ring's page in the kvm_run mapping, for the boot CPU's thread (builder.ts). */
  coalescedRingPage: number | undefined;
  /** Device state to start from (a restored snapshot); the boot CPU's thread applies it. */
  deviceState?: LegacyDeviceState;
  /** For an AP: the boot CPU, whose thread owns the devices. Absent on the boot CPU. */
  deviceOwner: { control: SharedArrayBuffer; kvmRunAddress: bigint } | undefined;
}

export type VcpuWorkerMessage =
  /** `dump`: this vCPU's state, when the VM ended in a crash (its own or another vCPU's). */
  | { type: 'exit'; outcome: VmOutcome; dump?: VcpuDump }
  | { type: 'devices'; state: LegacyDeviceState }
  | { type: 'log'; message: string };

/** Where a vCPU's thread reports: a worker posts to the main thread, the main thread calls itself. */
export type VcpuPost = (message: VcpuWorkerMessage) => void;

/** How the main thread runs a loop in slices: its console sink, which may end a slice. */
export interface SlicedVcpu {
  consoleOut(loop: VcpuLoop): ByteSink;
  /** Whether the event loop wants the thread back (VcpuLoopContext.sliced). */
  kicked(): boolean;
  /**
   * The guest memory the main thread already has: wrapping it again would also make V8 count it
   * again as memory of its own, and collect garbage for it ("external memory pressure").
   */
  memory: GuestMemory;
}

/**
 * Attaches to the VM and builds the exit loop; a failure comes back as the outcome to report.
 * With `sliced`, the loop is for the main thread (VcpuLoopContext.sliced).
 */
export function prepareVcpu(data: VcpuWorkerData, post: VcpuPost, sliced?: SlicedVcpu): VcpuLoop | VmOutcome {
  const native = addon();
  const control = VcpuControl.attach(data.control);
  // A vCPU on the main thread is never signalled: whoever kicks it runs on the same thread.
  if (!sliced) control.thread = native.threadSelf();
  const memory = sliced?.memory ?? GuestMemory.attach(data.memory);
  const deviceFaults = new FaultLog('device faults', (message) => post({ type: 'log', message }));
  try {
    // The fds belong to the main thread; these wrappers only borrow them and never close them.
    const vm = new VmFd(data.vmFd, data.kvmRunSize);
    const vcpu = VcpuFd.fromFd(data.vcpuFd, data.vcpuId, data.kvmRunSize);
    const run = new KvmRun(native.arrayBuffer(data.kvmRunAddress, data.kvmRunSize), data.kvmRunAddress);
    const mailbox = DeviceMailbox.attach(data.mailbox);
    let buses: { pio: IoSpace; mmio: IoSpace; coalesced?: CoalescedRing; onKick(): void; onPausedWake(): void };
    if (data.deviceOwner) {
      const ownerRun = new KvmRun(native.arrayBuffer(data.deviceOwner.kvmRunAddress, data.kvmRunSize), data.deviceOwner.kvmRunAddress);
      const owner = VcpuControl.attach(data.deviceOwner.control);
      const wake = () => kickVcpu(ownerRun, owner);
      const abandoned = () => control.command === VcpuCommand.Stop || owner.state === VcpuState.Exited;
      buses = { pio: new RemoteBus('pio', mailbox, wake, abandoned), mmio: new RemoteBus('mmio', mailbox, wake, abandoned), onKick: () => {}, onPausedWake: () => {} };
    } else {
      const devices = createLegacyDevices({
        irq: (line) => ({ set: (level) => vm.irqLine(line, level) }),
        // Called only from inside loop.run(), after `loop` exists.
        consoleOut: sliced ? { write: (byte) => sliced.consoleOut(loop).write(byte) } : ByteRing.attach(data.consoleOut),
        consoleIn: ByteRing.attach(data.consoleIn),
        onReset: (source) => loop.requestStop({ kind: 'shutdown', reason: source === 'i8042' ? 'i8042-reset' : 'acpi-reset' }),
        onPowerOff: () => loop.requestStop({ kind: 'shutdown', reason: 'acpi-poweroff' }),
        onDeviceFault: (fault) => {
          control.add('faults');
          deviceFaults.report(`${fault.device} ${fault.write ? 'write' : 'read'} ${errorKind(fault.error)}`, () =>
            `${fault.device}: a guest ${fault.write ? 'write to' : 'read of'} offset 0x${fault.offset.toString(16)} failed (${describeError(fault.error)}); the VM goes on`);
        },
        log: (message) => post({ type: 'log', message }),
      });
      if (data.deviceState) restoreLegacyDevices(devices, data.deviceState);
      const stateChanged = new EventFd(data.virtio.controlFd);
      for (const slot of data.virtio.slots) {
        const queues = slot.queueFds.map((fd) => new EventFd(fd));
        const irq = new EventFd(slot.irqfd);
        devices.mmio.insert(slot.name, slot.base, VIRTIO_MMIO_SIZE, new VirtioMmioTransport(VirtioMmioState.attach(slot.state), slot.info, {
          onStateChange: () => stateChanged.signal(),
          onQueueNotify: (queue) => queues[queue]?.signal(),
          onInterrupt: () => irq.signal(),
        }));
      }
      const coalesced = data.coalescedRingPage === undefined ? undefined : new CoalescedRing(run.bytes.buffer as ArrayBuffer, data.coalescedRingPage);
      buses = {
        pio: devices.pio,
        mmio: devices.mmio,
        coalesced,
        onKick: () => {
          devices.serial.pollInput();
          mailbox.serve(devices.pio, devices.mmio);
        },
        onPausedWake: () => {
          // The APs may have queued writes before they paused: the saved devices must have them.
          if (coalesced?.pending) coalesced.drain((isPio, address, bytes) => (isPio ? devices.pio : devices.mmio).write(address, bytes));
          mailbox.serve(devices.pio, devices.mmio);
          if (control.request === VcpuRequest.SaveDevices) {
            // Cleared first: once the answer is posted the main thread may ask again at once.
            control.request = VcpuRequest.None;
            post({ type: 'devices', state: saveLegacyDevices(devices) });
          }
        },
      };
    }
    const loop: VcpuLoop = new VcpuLoop({
      vcpu, run, memory, control, ...buses, sliced,
      log: (message) => post({ type: 'log', message }),
    });
    return loop;
  } catch (error) {
    return vcpuFailed(data, error);
  }
}

/** The outcome of a vCPU whose set-up or loop threw. */
export function vcpuFailed(data: VcpuWorkerData, error: unknown): VmOutcome {
  return { kind: 'error', code: 'VMM_ERROR', message: `vCPU ${data.vcpuId}: ${(error as Error).message}`, diagnostics: (error as Error).stack };
}

/**
 * The message a vCPU's thread ends with, its state set to Exited first: how its run ended, and
 * the vCPU's state when the VM crashed (`loop` is undefined if it failed before it had one).
 */
export function exitMessage(data: VcpuWorkerData, loop: VcpuLoop | undefined, outcome: VmOutcome): VcpuWorkerMessage {
  const control = VcpuControl.attach(data.control);
  let dump: VcpuDump | undefined;
  try {
    if (loop && (isCrash(outcome) || control.dumpOnExit)) dump = loop.dump();
  } catch (error) {
    outcome = vcpuFailed(data, error);
  }
  control.state = VcpuState.Exited;
  return { type: 'exit', outcome, dump };
}
