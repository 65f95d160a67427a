// The machine a comparison ran on: kernel, CPU model, cores, memory, whether KVM is usable and
// whether it is nested (KVM present while the CPU shows neither vmx nor svm: a software-assisted
// backend, as on this project's development machines), the cgroup layout and Node's version.

import { accessSync, constants, existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import type { Machine } from './model.js';

function read(file: string): string {
  try { return readFileSync(file, 'utf8'); } catch { return ''; }
}

/** Decides from /proc/cpuinfo's text and whether /dev/kvm is usable. */
export function kvmKind(cpuinfo: string, kvm: boolean): { nested: boolean; detail: string } {
  const flags = /^flags\s*:(.*)$/m.exec(cpuinfo)?.[1]?.split(/\s+/) ?? [];
  const vmx = flags.includes('vmx') || flags.includes('svm');
  const guest = flags.includes('hypervisor');
  if (!kvm) return { nested: false, detail: 'no usable /dev/kvm' };
  if (!vmx) return { nested: true, detail: 'KVM works but the CPU shows no vmx/svm: nested KVM on a software-assisted backend (CPL-0 guest code emulated)' };
  if (guest) return { nested: true, detail: 'vmx/svm inside a VM (hypervisor flag): nested hardware virtualization' };
  return { nested: false, detail: 'hardware virtualization (vmx/svm) on bare metal' };
}

export function describeMachine(): Machine {
  const cpuinfo = read('/proc/cpuinfo');
  let kvm = true;
  try { accessSync('/dev/kvm', constants.R_OK | constants.W_OK); } catch { kvm = false; }
  const { nested, detail } = kvmKind(cpuinfo, kvm);
  const cgroups = existsSync('/sys/fs/cgroup/cgroup.controllers') ? 'v2'
    : existsSync('/sys/fs/cgroup/memory') ? (existsSync('/sys/fs/cgroup/unified') ? 'v1 (hybrid, with an empty v2 hierarchy)' : 'v1') : 'unknown';
  return {
    hostname: os.hostname(),
    kernel: `${os.type()} ${os.release()}`,
    cpuModel: /^model name\s*:\s*(.*)$/m.exec(cpuinfo)?.[1]?.trim() ?? os.cpus()[0]?.model ?? 'unknown',
    cpus: os.cpus().length,
    memoryMiB: Math.round(os.totalmem() / 2 ** 20),
    kvm,
    nestedKvm: nested,
    kvmDetail: detail,
    cgroups,
    node: process.version,
  };
}
