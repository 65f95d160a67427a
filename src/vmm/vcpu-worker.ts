// Entry point of a vCPU thread (a worker_thread): it runs the vCPU's exit loop (vcpu-thread.ts)
// to the end and reports how the run ended.

import { parentPort } from 'node:worker_threads';
import { exitMessage, prepareVcpu, vcpuFailed, type VcpuWorkerData, type VcpuWorkerMessage } from './vcpu-thread.js';
import { VcpuLoop } from './vcpu-loop.js';
import type { VmOutcome } from './outcome.js';

function post(message: VcpuWorkerMessage): void {
  parentPort?.postMessage(message);
}

function main(data: VcpuWorkerData): void {
  const prepared = prepareVcpu(data, post);
  const loop = prepared instanceof VcpuLoop ? prepared : undefined;
  let outcome: VmOutcome;
  try {
    outcome = loop ? loop.run()! : prepared as VmOutcome;
  } catch (error) {
    outcome = vcpuFailed(data, error);
  }
  post(exitMessage(data, loop, outcome));
}

// Started ahead of its VM (threads.ts), the thread gets what to run in its first message.
parentPort!.once('message', (data: VcpuWorkerData) => main(data));
