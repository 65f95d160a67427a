// Kicking a vCPU: make its thread leave KVM_RUN now, wherever it is. The flag covers a kick that
// lands between two KVM_RUNs (the next one returns at once); the signal, whose handler is empty,
// interrupts one in progress with EINTR; the poke wakes a paused vCPU.

import { addon } from '../kvm/addon.js';
import type { KvmRun } from '../kvm/kvm-run.js';
import type { VcpuControl } from './vcpu-control.js';

/** A real-time signal Node leaves alone (it uses 2, 10, 11, 15 and 33). */
export const KICK_SIGNAL = 40;

export function installKickHandler(): void {
  const rc = addon().installEmptySignalHandler(KICK_SIGNAL);
  if (rc < 0) throw new Error(`cannot install the vCPU kick signal handler (errno ${-rc})`);
}

export function kickVcpu(run: KvmRun, control: VcpuControl): void {
  run.immediateExit = true;
  const thread = control.thread;
  if (thread !== 0n) kickThread(thread);
  control.poke();
}

/** Interrupts whatever system call `thread` is blocked in (EINTR). */
export function kickThread(thread: bigint): void {
  addon().threadKill(thread, KICK_SIGNAL);
}
