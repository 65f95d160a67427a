// Starting the VMM's worker threads. A worker costs about what Node's own start-up costs (a new
// isolate bootstraps Node's internals, then loads its bundle), so vCPU threads may be started
// ahead of the VM that will use them: the thread boots on another core while this one loads the
// rest of tsvmm and builds the VM, then gets its VcpuWorkerData in a message. A spare thread is
// unref'd: a process that never starts a VM still exits.

import { createRequire } from 'node:module';
import type { Worker, WorkerOptions } from 'node:worker_threads';

/** node:worker_threads, loaded by the first thread started: a VM on the main thread needs none. */
function newWorker(file: URL, options: WorkerOptions): Worker {
  const threads = createRequire(import.meta.url)('node:worker_threads') as typeof import('node:worker_threads');
  return new threads.Worker(file, options);
}

/**
 * Our worker threads run our code only: they must not inherit the flags a user started Node
 * with, some of which (--input-type, --eval) make a worker fail to start.
 */
const WORKER_EXEC_ARGV: string[] = [];

const spare: Worker[] = [];

function startVcpuThread(): Worker {
  return newWorker(new URL('./vcpu-worker.js', import.meta.url), { execArgv: WORKER_EXEC_ARGV });
}

/** Starts vCPU threads until `count` are waiting for a VM. */
export function prestartVcpuThreads(count: number): void {
  while (spare.length < count) {
    const worker = startVcpuThread();
    worker.unref();
    // A spare that fails or ends (it never does on its own) is no longer offered to a VM.
    const drop = () => { const i = spare.indexOf(worker); if (i >= 0) spare.splice(i, 1); };
    worker.once('error', drop).once('exit', drop);
    spare.push(worker);
  }
}

/** A vCPU thread for a VM starting now (a spare if there is one); post it its VcpuWorkerData. */
export function takeVcpuThread(): Worker {
  const worker = spare.shift() ?? startVcpuThread();
  worker.ref();
  return worker;
}

/** The device I/O thread of a VM with virtio devices. */
export function startIoThread(workerData: unknown): Worker {
  return newWorker(new URL('./io-worker.js', import.meta.url), { workerData, execArgv: WORKER_EXEC_ARGV });
}
