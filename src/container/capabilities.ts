// Linux capability names and numbers (include/uapi/linux/capability.h), and the sets a
// container keeps by default.

import { ContainerError } from './errors.js';

export const CAPABILITIES = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_KILL',
  'CAP_SETGID', 'CAP_SETUID', 'CAP_SETPCAP', 'CAP_LINUX_IMMUTABLE', 'CAP_NET_BIND_SERVICE',
  'CAP_NET_BROADCAST', 'CAP_NET_ADMIN', 'CAP_NET_RAW', 'CAP_IPC_LOCK', 'CAP_IPC_OWNER',
  'CAP_SYS_MODULE', 'CAP_SYS_RAWIO', 'CAP_SYS_CHROOT', 'CAP_SYS_PTRACE', 'CAP_SYS_PACCT',
  'CAP_SYS_ADMIN', 'CAP_SYS_BOOT', 'CAP_SYS_NICE', 'CAP_SYS_RESOURCE', 'CAP_SYS_TIME',
  'CAP_SYS_TTY_CONFIG', 'CAP_MKNOD', 'CAP_LEASE', 'CAP_AUDIT_WRITE', 'CAP_AUDIT_CONTROL',
  'CAP_SETFCAP', 'CAP_MAC_OVERRIDE', 'CAP_MAC_ADMIN', 'CAP_SYSLOG', 'CAP_WAKE_ALARM',
  'CAP_BLOCK_SUSPEND', 'CAP_AUDIT_READ', 'CAP_PERFMON', 'CAP_BPF', 'CAP_CHECKPOINT_RESTORE',
] as const;

export type CapabilityName = (typeof CAPABILITIES)[number];

/**
 * What a container keeps when nobody says otherwise: the set of containerd's default OCI spec
 * (and Docker's). Everything that reaches beyond the container (modules, raw I/O, admin,
 * ptrace, time, ...) is gone.
 */
export const DEFAULT_CAPABILITIES: readonly CapabilityName[] = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW',
  'CAP_SETGID', 'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];

export interface CapabilitySets {
  bounding: readonly string[];
  effective: readonly string[];
  permitted: readonly string[];
  inheritable: readonly string[];
  ambient: readonly string[];
}

export function defaultCapabilitySets(): CapabilitySets {
  return { bounding: DEFAULT_CAPABILITIES, effective: DEFAULT_CAPABILITIES, permitted: DEFAULT_CAPABILITIES, inheritable: [], ambient: [] };
}

/** A set as a bit mask (bit n for capability n); unknown names are refused. */
export function capabilityMask(names: readonly string[], where: string): bigint {
  let mask = 0n;
  for (const name of names) {
    const upper = name.toUpperCase();
    const index = CAPABILITIES.indexOf((upper.startsWith('CAP_') ? upper : `CAP_${upper}`) as CapabilityName);
    if (index < 0) throw new ContainerError('BAD_CONFIG', `${where}: unknown capability "${name}"`);
    mask |= 1n << BigInt(index);
  }
  return mask;
}

export function capabilityBit(name: CapabilityName): bigint {
  return 1n << BigInt(CAPABILITIES.indexOf(name));
}
