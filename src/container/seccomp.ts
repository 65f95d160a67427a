// A config.json seccomp profile as the helper loads it with libseccomp: action, architecture and
// comparison names become libseccomp's numbers here (<seccomp.h>), syscall names stay names (the
// helper resolves them against the host's libseccomp, which knows this kernel's table).

import type { SeccompPlan } from './plan-layout.js';
import type { SeccompSpec } from './spec.js';

const SCMP_ACT_KILL_PROCESS = 0x80000000;
const SCMP_ACT_KILL_THREAD = 0x00000000;
const SCMP_ACT_TRAP = 0x00030000;
const SCMP_ACT_ERRNO = 0x00050000;
const SCMP_ACT_TRACE = 0x7ff00000;
const SCMP_ACT_LOG = 0x7ffc0000;
const SCMP_ACT_ALLOW = 0x7fff0000;

const ARCHES: Record<string, number> = {
  SCMP_ARCH_X86_64: 0xc000003e, // AUDIT_ARCH_X86_64
  SCMP_ARCH_X86: 0x40000003, // AUDIT_ARCH_I386
  SCMP_ARCH_X32: 0x4000003e, // libseccomp's token for x32: EM_X86_64, 32-bit
};

const OPS: Record<string, number> = {
  SCMP_CMP_NE: 1, SCMP_CMP_LT: 2, SCMP_CMP_LE: 3, SCMP_CMP_EQ: 4, SCMP_CMP_GE: 5, SCMP_CMP_GT: 6, SCMP_CMP_MASKED_EQ: 7,
};

const EPERM = 1;

export type { SeccompPlan } from './plan-layout.js';

/** libseccomp's number for an OCI action; ERRNO without a number is EPERM, as runc makes it. */
export function seccompAction(name: string, errnoRet: number | undefined): number {
  switch (name) {
    case 'SCMP_ACT_KILL':
    case 'SCMP_ACT_KILL_THREAD':
      return SCMP_ACT_KILL_THREAD;
    case 'SCMP_ACT_KILL_PROCESS':
      return SCMP_ACT_KILL_PROCESS;
    case 'SCMP_ACT_TRAP':
      return SCMP_ACT_TRAP;
    case 'SCMP_ACT_ERRNO':
      return (SCMP_ACT_ERRNO | ((errnoRet ?? EPERM) & 0xffff)) >>> 0;
    case 'SCMP_ACT_TRACE':
      return (SCMP_ACT_TRACE | ((errnoRet ?? EPERM) & 0xffff)) >>> 0;
    case 'SCMP_ACT_LOG':
      return SCMP_ACT_LOG;
    case 'SCMP_ACT_ALLOW':
      return SCMP_ACT_ALLOW;
    default:
      throw new Error(`unknown seccomp action ${name}`); // oci.ts lets only the names above through
  }
}

export function seccompPlan(spec: SeccompSpec): SeccompPlan {
  return {
    defaultAction: seccompAction(spec.defaultAction, spec.defaultErrnoRet),
    architectures: spec.architectures.map((a) => ARCHES[a]!).filter((a) => a !== undefined),
    rules: spec.syscalls.map((rule) => ({
      names: rule.names,
      action: seccompAction(rule.action, rule.errnoRet),
      args: rule.args.map((a) => ({ index: a.index, op: OPS[a.op]!, value: a.value, valueTwo: a.valueTwo })),
    })),
  };
}
