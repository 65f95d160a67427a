// A running Vm as the control server sees it.

import type { EventEmitter } from 'node:events';
import type { Vm } from '../vmm/vm.js';
import type { ControlledInstance } from './control-server.js';
import { processMemory } from './host-memory.js';
import type { InstanceRecord } from './runtime-dir.js';

export function vmRecord(vm: Vm): InstanceRecord {
  return {
    name: vm.config.name, kind: 'vm', pid: process.pid, startedAt: Date.now(),
    cpus: vm.config.cpus, memory: vm.config.memory, image: vm.config.kernel,
  };
}

/** The VMM process's PSS: the guest pages it touched plus Node's own, shared pages divided. */
function ownMemory(): { bytes: number; how: 'PSS' } | undefined {
  try {
    return { bytes: processMemory('self').pss, how: 'PSS' };
  } catch {
    return undefined;
  }
}

/**
 * The control server's view of a VM. `current` gives the VM in charge now: with `run --reboot`,
 * each guest reset brings a new one under the same name; `output` then relays every one's console.
 */
export function vmInstance(current: Vm | (() => Vm), output?: Pick<EventEmitter<{ output: [Buffer] }>, 'on' | 'off'>): ControlledInstance {
  const get = typeof current === 'function' ? current : () => current;
  return {
    status: () => {
      const vm = get();
      const cpu = process.cpuUsage();
      return {
        name: vm.config.name, kind: 'vm', state: vm.state, cpus: vm.config.cpus, memory: vm.config.memory,
        uptimeMs: vm.uptimeMs, exits: vm.stats.exits, cpuTimeUs: cpu.user + cpu.system,
        guest: { unclaimed: vm.stats.unclaimed, faults: vm.stats.faults }, memoryUsed: ownMemory(),
      };
    },
    pause: () => get().pause(),
    resume: () => get().resume(),
    stop: () => get().stop(),
    snapshot: async (path, options) => { await get().snapshot(path, { diff: options.diff, onProgress: options.onProgress }); },
    console: {
      backlog: () => Buffer.from(get().output),
      subscribe: (onChunk) => {
        const relay = output ?? get();
        relay.on('output', onChunk);
        return () => relay.off('output', onChunk);
      },
      write: (data) => get().write(data),
    },
  };
}
