// A running Vm as the control server sees it.

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

export function vmInstance(vm: Vm): ControlledInstance {
  return {
    status: () => {
      const cpu = process.cpuUsage();
      return {
        name: vm.config.name, kind: 'vm', state: vm.state, cpus: vm.config.cpus, memory: vm.config.memory,
        uptimeMs: vm.uptimeMs, exits: vm.stats.exits, cpuTimeUs: cpu.user + cpu.system,
        guest: { unclaimed: vm.stats.unclaimed, faults: vm.stats.faults }, memoryUsed: ownMemory(),
      };
    },
    pause: () => vm.pause(),
    resume: () => vm.resume(),
    stop: () => vm.stop(),
    snapshot: async (path, options) => { await vm.snapshot(path, { diff: options.diff, onProgress: options.onProgress }); },
    console: {
      backlog: () => Buffer.from(vm.output),
      subscribe: (onChunk) => {
        vm.on('output', onChunk);
        return () => vm.off('output', onChunk);
      },
      write: (data) => vm.write(data),
    },
  };
}
