// A container as tsvmm understands it, whichever way it was asked for: an OCI bundle
// (oci.ts) and the `--rootfs` flags (config.ts) both become a ContainerSpec, from which
// plan.ts makes the helper's step list. The defaults follow what `runc spec` writes and what
// containerd's default spec keeps, so a flag-made container looks like a bundle-made one.

import type { CapabilitySets } from './capabilities.js';
import { defaultCapabilitySets } from './capabilities.js';

export type NamespaceKind = 'pid' | 'network' | 'ipc' | 'uts' | 'mount' | 'cgroup' | 'user';

/** OCI hooks: programs the runtime runs at points of the container's life, with its state on stdin. */
export interface Hook {
  path: string;
  args: string[];
  env: string[];
  /** Seconds; undefined waits as long as it takes (as runc does). */
  timeout?: number;
}

export const HOOK_KINDS = ['prestart', 'createRuntime', 'createContainer', 'startContainer', 'poststart', 'poststop'] as const;
export type HookKind = (typeof HOOK_KINDS)[number];
export type Hooks = Record<HookKind, Hook[]>;

/** One uid or gid range of a user namespace. */
export interface IdMapping {
  containerID: number;
  hostID: number;
  size: number;
}

/** A seccomp filter as config.json gives it (names kept; the helper resolves them with libseccomp). */
export interface SeccompSpec {
  defaultAction: string;
  defaultErrnoRet?: number;
  architectures: string[];
  flags: string[];
  syscalls: {
    names: string[];
    action: string;
    errnoRet?: number;
    args: { index: number; value: number; valueTwo: number; op: string }[];
  }[];
}

export interface MountSpec {
  /** Inside the container, absolute. */
  destination: string;
  /** Filesystem type ("proc", "tmpfs", ...) or "bind"; "cgroup" means the container's own cgroups. */
  type: string;
  /** For bind mounts, a host path (absolute by now); otherwise the filesystem's source name. */
  source: string;
  options: readonly string[];
}

/** A device node made in the container's /dev. */
export interface DeviceSpec {
  path: string;
  type: 'c' | 'b' | 'p';
  major: number;
  minor: number;
  fileMode: number;
  uid: number;
  gid: number;
}

/** One line of the devices cgroup (v1): which device numbers may be read, written or made. */
export interface DeviceRule {
  allow: boolean;
  type: 'a' | 'c' | 'b';
  /** null: any. */
  major: number | null;
  minor: number | null;
  access: string;
}

export interface Rlimit {
  type: string;
  soft: number;
  hard: number;
}

/** Limits; undefined leaves one as it is (unlimited for a new container). */
export interface ResourceLimits {
  /** Bytes. */
  memory?: number;
  /** CPU bandwidth: `quota` µs of CPU time per `period` µs, so quota/period CPUs. */
  cpu?: { quota: number; period: number };
  pids?: number;
  /** Relative CPU weight (cgroup v1 cpu.shares; v2 cpu.weight is derived from it as runc does). */
  cpuShares?: number;
  /** CPUs and memory nodes (cpuset), in the kernel's list format ("0-1", "0"). */
  cpusetCpus?: string;
  cpusetMems?: string;
  /** Memory plus swap, bytes; -1: unlimited. Undefined: the same as the memory limit (no swap past it). */
  memorySwap?: number;
  /** Soft limit, bytes. */
  memoryReservation?: number;
  swappiness?: number;
  disableOOMKiller?: boolean;
  /** blkio.weight / io.weight, where the host has it. */
  blockIOWeight?: number;
}

export interface ContainerSpec {
  process: {
    args: string[];
    env: string[];
    cwd: string;
    user: { uid: number; gid: number; additionalGids: number[] };
    capabilities: CapabilitySets;
    rlimits: Rlimit[];
    noNewPrivileges: boolean;
    umask?: number;
    /** A pseudo-terminal for the process (handed to the engine through --console-socket). */
    terminal?: boolean;
    consoleSize?: { height: number; width: number };
    oomScoreAdj?: number;
  };
  root: {
    /** The lowest layer: an absolute host directory. */
    path: string;
    /** Read-only layers stacked over it with overlayfs, lowest first. */
    layers: string[];
    readonly: boolean;
  };
  hostname?: string;
  domainname?: string;
  mounts: MountSpec[];
  namespaces: NamespaceKind[];
  /** Namespaces joined rather than made: kind → a path such as /proc/PID/ns/net. */
  namespacePaths?: Partial<Record<NamespaceKind, string>>;
  uidMappings?: IdMapping[];
  gidMappings?: IdMapping[];
  /** Namespaced kernel parameters, written under /proc/sys inside the container. */
  sysctl?: Record<string, string>;
  seccomp?: SeccompSpec;
  hooks?: Hooks;
  annotations?: Record<string, string>;
  resources: ResourceLimits;
  devices: DeviceSpec[];
  deviceRules: DeviceRule[];
  maskedPaths: string[];
  readonlyPaths: string[];
  /** "rslave" unless the bundle says otherwise. */
  rootPropagation: string;
  /** OCI linux.cgroupsPath: where under the hierarchy the container's cgroup goes. */
  cgroupsPath?: string;
}

export const DEFAULT_PATH = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
export const DEFAULT_CPU_PERIOD = 100_000;

/** The least memory limit a container may have, from the CLI or a bundle: less starts nothing. */
export const MIN_CONTAINER_MEMORY = 4 * 1024 * 1024;

/** The mounts `runc spec` lists, in its order. */
export function defaultMounts(): MountSpec[] {
  return [
    { destination: '/proc', type: 'proc', source: 'proc', options: [] },
    { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
    { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
    { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
    { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
    { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    { destination: '/sys/fs/cgroup', type: 'cgroup', source: 'cgroup', options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'] },
  ];
}

/** Files and directories of the host kernel that say too much: hidden under /dev/null or an empty tmpfs. */
export const DEFAULT_MASKED_PATHS = [
  '/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
  '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware', '/sys/devices/virtual/powercap',
];

/** Kernel knobs a container may read but not turn. */
export const DEFAULT_READONLY_PATHS = ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'];

/** The nodes every container's /dev has (runc makes the same ones whatever the bundle says). */
export function defaultDevices(): DeviceSpec[] {
  const node = (name: string, major: number, minor: number): DeviceSpec => ({ path: `/dev/${name}`, type: 'c', major, minor, fileMode: 0o666, uid: 0, gid: 0 });
  return [node('null', 1, 3), node('zero', 1, 5), node('full', 1, 7), node('random', 1, 8), node('urandom', 1, 9), node('tty', 5, 0)];
}

/**
 * The device numbers a container may use, after "deny everything": its default nodes, ptys,
 * /dev/ptmx and /dev/net/tun, and making (not opening) any node. runc allows the same.
 */
export function defaultDeviceRules(): DeviceRule[] {
  const allow = (type: 'c' | 'b', major: number | null, minor: number | null, access = 'rwm'): DeviceRule => ({ allow: true, type, major, minor, access });
  return [
    allow('c', null, null, 'm'), allow('b', null, null, 'm'),
    ...defaultDevices().map((d) => allow('c', d.major, d.minor)),
    allow('c', 136, null), allow('c', 5, 2), allow('c', 10, 200),
  ];
}

export const ALL_NAMESPACES: readonly NamespaceKind[] = ['pid', 'network', 'ipc', 'uts', 'mount'];

/** A container for `command` on `rootfs` with the defaults above. */
export function defaultSpec(rootfs: string, command: string[]): ContainerSpec {
  return {
    process: {
      args: command,
      env: [DEFAULT_PATH, 'TERM=xterm'],
      cwd: '/',
      user: { uid: 0, gid: 0, additionalGids: [] },
      capabilities: defaultCapabilitySets(),
      rlimits: [{ type: 'RLIMIT_NOFILE', soft: 1024, hard: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: rootfs, layers: [], readonly: false },
    mounts: defaultMounts(),
    namespaces: [...ALL_NAMESPACES],
    resources: {},
    devices: [],
    deviceRules: [{ allow: false, type: 'a', major: null, minor: null, access: 'rwm' }],
    maskedPaths: [...DEFAULT_MASKED_PATHS],
    readonlyPaths: [...DEFAULT_READONLY_PATHS],
    rootPropagation: 'rslave',
  };
}
