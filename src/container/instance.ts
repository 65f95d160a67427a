// A running Container as the control server sees it, so that `tsvmm ps`, `pause`, `resume`,
// `stop`, `console` and `update` reach it exactly as they reach a VM.

import { cpus as hostCpus, totalmem } from 'node:os';
import type { ControlledInstance } from '../api/control-server.js';
import { cgroupMemory } from '../api/host-memory.js';
import type { InstanceStatus } from '../api/protocol.js';
import { containerId, writeRecord, type InstanceRecord } from '../api/runtime-dir.js';
import { monotonicMs } from '../meta/clock.js';
import { containerRuntime, recordedStopTimeout, type Container } from './container.js';

/** CPUs and memory as `ps` shows them: the limits, or the host's when there is none. */
function shown(container: Container): { cpus: number; memory: number; limits: NonNullable<InstanceStatus['limits']> } {
  let limits: NonNullable<InstanceStatus['limits']>;
  if (container.state === 'running' || container.state === 'paused') {
    const now = container.limits;
    limits = { memory: now.memory, cpus: now.cpu.quota === null ? null : now.cpu.quota / now.cpu.period, pids: now.pids };
  } else {
    const asked = container.config.spec.resources;
    limits = { memory: asked.memory ?? null, cpus: asked.cpu ? asked.cpu.quota / asked.cpu.period : null, pids: asked.pids ?? null };
  }
  return { cpus: limits.cpus ?? hostCpus().length, memory: limits.memory ?? totalmem(), limits };
}

/** What its memory cgroup charges, while it has one. */
function used(container: Container): InstanceStatus['memoryUsed'] {
  if (container.state !== 'running' && container.state !== 'paused') return undefined;
  try {
    return { bytes: cgroupMemory(container.cgroupPaths).current, how: 'cgroup' };
  } catch {
    return undefined;
  }
}

export function containerRecord(container: Container): InstanceRecord {
  const { cpus, memory } = shown(container);
  return { name: container.name, kind: 'container', pid: process.pid, startedAt: Date.now(), cpus, memory, image: container.config.image };
}

export function containerInstance(container: Container, record: InstanceRecord): ControlledInstance {
  const status = (): InstanceStatus => {
    const { cpus, memory, limits } = shown(container);
    return {
      name: container.name, kind: 'container', state: container.stopping ? 'stopping' : container.state, cpus, memory,
      uptimeMs: container.uptimeMs, exits: 0, cpuTimeUs: container.cpuTimeUs, limits, memoryUsed: used(container),
      pid: container.pid || undefined, address: container.address,
    };
  };
  return {
    status,
    pause: () => container.pause(),
    resume: () => container.resume(),
    stop: (timeoutMs) => container.stop(timeoutMs),
    update: (limits) => {
      container.update(limits);
      // `ps` reads cpus and memory from the record; keep it true.
      const { cpus, memory } = shown(container);
      writeRecord({ ...record, cpus, memory });
      return status();
    },
    // A container in the foreground with stdio "inherit" uses our files: there is no console to lend.
    console: container.config.stdio === 'inherit' ? undefined : {
      backlog: () => Buffer.from(container.output),
      subscribe: (onChunk) => {
        container.on('output', onChunk);
        return () => container.off('output', onChunk);
      },
      write: (data) => container.write(data),
      terminal: container.config.terminal !== undefined,
      resize: container.config.terminal ? (size) => container.resize(size) : undefined,
    },
  };
}

/** A container as the runtime's state shows it: what `tsvmm ps` reports of it. */
export interface RuntimeContainer {
  state: InstanceStatus['state'];
  /** Its init's host pid (0 once stopped). */
  pid: number;
  /** A record for one that no supervisor announced (the library's, in another process). */
  record: InstanceRecord;
}

/**
 * tsvmm's containers in the runtime's state (<runtime dir>/containers), by name: their status
 * read from the host as tsvmm-runc reads it (init alive, cgroup frozen), whoever supervises them.
 */
export function runtimeContainers(): Map<string, RuntimeContainer> {
  const runtime = containerRuntime();
  const out = new Map<string, RuntimeContainer>();
  for (const id of runtime.store.ids()) {
    try {
      const { record, status } = runtime.load(id);
      const resources = record.spec.resources;
      const cpus = resources.cpu ? resources.cpu.quota / resources.cpu.period : hostCpus().length;
      out.set(record.cgroup.name, {
        state: status === 'stopped' ? 'exited' : status === 'creating' ? 'created' : status,
        pid: status === 'stopped' ? 0 : record.pid,
        record: {
          name: record.cgroup.name, kind: 'container', pid: 0, startedAt: Date.parse(record.created), cpus,
          memory: resources.memory ?? totalmem(), image: record.spec.process.args.join(' '),
        },
      });
    } catch { /* being created or removed just now */ }
  }
  return out;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * `tsvmm pause`, `resume` and `stop` of a container that no supervisor announced here (the
 * library's, in another process): the runtime's own operations, as tsvmm-runc would do them.
 * Stop is SIGTERM, then SIGKILL after `stopTimeout` ms (default: the container's own) if it still runs; its supervisor sees the
 * end and cleans up. Returns the state it is left in, or undefined if the runtime has no such container.
 */
export async function runtimeOperation(name: string, op: 'pause' | 'resume' | 'stop', stopTimeout?: number): Promise<string | undefined> {
  const runtime = containerRuntime();
  const id = containerId(name);
  if (!runtime.store.ids().includes(id)) return undefined;
  // Unless the caller says otherwise, the stop timeout the container was started with (Container.start records it).
  const stopTimeoutMs = stopTimeout ?? recordedStopTimeout(runtime.load(id).record.annotations) ?? 10_000;
  switch (op) {
    case 'pause':
      await runtime.pause(id);
      return 'paused';
    case 'resume':
      await runtime.resume(id);
      return 'running';
    case 'stop': {
      if (runtime.load(id).status === 'paused') await runtime.resume(id);
      const deadline = monotonicMs() + stopTimeoutMs;
      await runtime.kill(id, stopTimeoutMs > 0 ? 'SIGTERM' : 'SIGKILL', false);
      while (runtime.store.ids().includes(id) && runtime.load(id).status !== 'stopped') {
        if (monotonicMs() >= deadline) {
          await runtime.kill(id, 'SIGKILL', false).catch(() => { /* it ended just now */ });
          break;
        }
        await sleep(50);
      }
      return 'stopping';
    }
  }
}
