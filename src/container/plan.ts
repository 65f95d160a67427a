// From a ContainerSpec to the step list the helper (native/container-init.c) carries out. All
// the policy lives here: which namespaces, each mount with its flags in order (and which must be
// made read-only only after /dev is filled), which device nodes and symlinks, which
// capabilities, where the cgroups are. The helper knows no OCI and makes no choices.

import { statSync } from 'node:fs';
import type { TerminalSize } from '../api/protocol.js';
import { capabilityBit, capabilityMask } from './capabilities.js';
import { ContainerError } from './errors.js';
import { MS_BIND, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY, MS_REC, MS_REMOUNT, PROPAGATION, parseMountOptions } from './mount-options.js';
import type { ExecPlan, InitPlan, MountStep, ProcessPlan, RuntimePlan } from './plan-layout.js';
import { seccompPlan } from './seccomp.js';
import { defaultDevices, type ContainerSpec, type DeviceSpec, type IdMapping, type NamespaceKind } from './spec.js';

// <linux/sched.h>
export const CLONE_NEWNS = 0x00020000;
export const CLONE_NEWCGROUP = 0x02000000;
export const CLONE_NEWUTS = 0x04000000;
export const CLONE_NEWIPC = 0x08000000;
export const CLONE_NEWPID = 0x20000000;
export const CLONE_NEWNET = 0x40000000;
export const CLONE_NEWUSER = 0x10000000;

export const CLONE_FLAGS: Record<NamespaceKind, number> = {
  pid: CLONE_NEWPID, mount: CLONE_NEWNS, uts: CLONE_NEWUTS, ipc: CLONE_NEWIPC, network: CLONE_NEWNET, user: CLONE_NEWUSER, cgroup: CLONE_NEWCGROUP,
};

/** The names of /proc/PID/ns entries. */
export const NS_FILES: Record<NamespaceKind, string> = {
  pid: 'pid', mount: 'mnt', uts: 'uts', ipc: 'ipc', network: 'net', user: 'user', cgroup: 'cgroup',
};

// <asm-generic/resource.h>
export const RLIMITS: Record<string, number> = {
  RLIMIT_CPU: 0, RLIMIT_FSIZE: 1, RLIMIT_DATA: 2, RLIMIT_STACK: 3, RLIMIT_CORE: 4, RLIMIT_RSS: 5,
  RLIMIT_NPROC: 6, RLIMIT_NOFILE: 7, RLIMIT_MEMLOCK: 8, RLIMIT_AS: 9, RLIMIT_LOCKS: 10,
  RLIMIT_SIGPENDING: 11, RLIMIT_MSGQUEUE: 12, RLIMIT_NICE: 13, RLIMIT_RTPRIO: 14, RLIMIT_RTTIME: 15,
};

const S_IFCHR = 0o020000;
const S_IFBLK = 0o060000;
const S_IFIFO = 0o010000;

export type { ExecPlan, InitPlan, MountStep, ProcessPlan, RuntimePlan } from './plan-layout.js';

/** What the plan needs of the container's cgroups (cgroups.ts). */
export interface PlanCgroups {
  version: 'v1' | 'v2';
  procsFiles: string[];
  /** The container's own cgroup directories, shown read-only under /sys/fs/cgroup: name → host path ("" for v2's single one). */
  views: { name: string; path: string }[];
  /** Whether a devices cgroup keeps the container to its own device numbers. */
  devicesEnforced: boolean;
}

export interface PlanContext {
  supervisor: number;
  cgroups: PlanCgroups;
  /** The directory that becomes "/" (for layers, overlayfs's merged directory). */
  rootfs: string;
  /** Host-side mounts made in the new mount namespace before the root is bound: the overlay. */
  prepare: MountStep[];
  /** Give the workload a pty of this size (otherwise its stdio is whatever the helper has: pipes or files). */
  terminal?: TerminalSize;
  /** The host has work to do (the network, hooks) between the init's birth and its start. */
  waitForHost: boolean;
  runtime?: RuntimePlan;
  /** runc's --preserve-fds: this many of our fds from 3 on go to the init (the helper gets them from 4 on). */
  preserveFds?: number;
}

export function buildPlan(spec: ContainerSpec, context: PlanContext): InitPlan {
  const readonlyAfter: string[] = [];
  const mounts: MountStep[] = [];
  let devTmpfs = false;
  let devPts = false;
  for (const [i, m] of spec.mounts.entries()) {
    const where = `mounts[${i}] (${m.destination})`;
    const options = parseMountOptions(m.options, where);
    const destination = m.destination.replace(/\/+$/, '') || '/';
    if (destination === '/') throw new ContainerError('BAD_CONFIG', `${where}: cannot mount over the root itself`);
    if (m.type === 'cgroup') {
      mounts.push(...cgroupMounts(destination, options.flags, context.cgroups));
      if (options.flags & MS_RDONLY) readonlyAfter.push(destination);
      continue;
    }
    if (m.type === 'bind') {
      let isFile: boolean;
      try {
        isFile = !statSync(m.source).isDirectory();
      } catch {
        throw new ContainerError('BAD_CONFIG', `${where}: bind source ${m.source} does not exist`);
      }
      // mount(2) ignores other flags on a bind; they take a remount of the new mount.
      const wantsRemount = (options.flags & ~(MS_BIND | MS_REC | MS_REMOUNT)) !== 0 || options.cleared !== 0;
      mounts.push({
        source: m.source, target: destination, type: '', flags: MS_BIND | (options.flags & MS_REC), data: '',
        remountFlags: wantsRemount ? (options.flags & ~MS_REC) | MS_BIND | MS_REMOUNT : 0,
        isFile, propagation: options.propagation,
      });
      if (destination === '/dev') devTmpfs = false;
      continue;
    }
    let flags = options.flags;
    // /dev and tmpfs mounts get files made in them first; read-only comes after pivot_root.
    if ((m.type === 'tmpfs' || destination === '/dev') && flags & MS_RDONLY) {
      flags &= ~MS_RDONLY;
      readonlyAfter.push(destination);
    }
    if (destination === '/dev') devTmpfs = true;
    if (destination === '/dev/pts') devPts = true;
    mounts.push({ source: m.source, target: destination, type: m.type, flags, data: options.data, remountFlags: 0, isFile: false, propagation: options.propagation });
  }

  const devices: InitPlan['devices'] = [];
  const symlinks: InitPlan['symlinks'] = [];
  if (devTmpfs) {
    const byPath = new Map<string, DeviceSpec>();
    for (const d of [...defaultDevices(), ...spec.devices]) byPath.set(d.path, d);
    for (const d of byPath.values()) {
      const type = d.type === 'b' ? S_IFBLK : d.type === 'p' ? S_IFIFO : S_IFCHR;
      devices.push({ path: d.path, mode: type | (d.fileMode & 0o7777), major: d.major, minor: d.minor, uid: d.uid, gid: d.gid });
    }
    symlinks.push(
      { target: '/proc/self/fd', path: '/dev/fd' },
      { target: '/proc/self/fd/0', path: '/dev/stdin' },
      { target: '/proc/self/fd/1', path: '/dev/stdout' },
      { target: '/proc/self/fd/2', path: '/dev/stderr' },
    );
    if (devPts) symlinks.push({ target: 'pts/ptmx', path: '/dev/ptmx' });
    // The container's console is whatever its init writes to (its pty when it has one), never
    // the host's /dev/console nor the caller's terminal.
    symlinks.push({ target: '/proc/1/fd/1', path: '/dev/console' });
  }

  let cloneFlags = 0;
  let unshareFlags = 0;
  const joinNamespaces: ProcessPlan['joinNamespaces'] = [];
  for (const ns of spec.namespaces) {
    const joined = spec.namespacePaths?.[ns];
    if (joined) joinNamespaces.push({ flag: CLONE_FLAGS[ns], path: joined });
    else if (ns === 'cgroup') unshareFlags |= CLONE_NEWCGROUP;
    else cloneFlags |= CLONE_FLAGS[ns];
  }

  let rootRemountFlags = spec.root.readonly ? MS_RDONLY : 0;
  // Without a devices cgroup nothing stops a node found in the image from opening a host disk.
  if (!context.cgroups.devicesEnforced) rootRemountFlags |= MS_NODEV;

  const propagation = PROPAGATION[spec.rootPropagation];
  if (propagation === undefined) throw new ContainerError('UNSUPPORTED', `root propagation "${spec.rootPropagation}" is not supported`);

  return {
    supervisor: context.supervisor,
    cloneFlags,
    unshareFlags,
    cgroupProcs: context.cgroups.procsFiles,
    waitForHost: context.waitForHost,
    rootPropagation: propagation,
    rootfs: context.rootfs,
    prepare: context.prepare,
    mounts,
    devices,
    symlinks,
    loopbackUp: (cloneFlags & CLONE_NEWNET) !== 0,
    setHome: !spec.process.env.some((e) => e.startsWith('HOME=')),
    readonlyAfter,
    rootRemountFlags,
    hostname: spec.hostname,
    domainname: spec.domainname,
    readonlyPaths: spec.readonlyPaths,
    maskedPaths: spec.maskedPaths,
    idMaps: spec.uidMappings && spec.gidMappings ? { uid: idMap(spec.uidMappings), gid: idMap(spec.gidMappings) } : undefined,
    sysctl: Object.entries(spec.sysctl ?? {}).map(([key, value]) => ({ path: `/proc/sys/${key.replace(/\./g, '/')}`, value })),
    runtime: context.runtime,
    // execv's arguments: an empty list runs the path with itself as argv[0].
    createContainerHooks: (spec.hooks?.createContainer ?? []).map((h) => ({ path: h.path, args: h.args.length ? h.args : [h.path], env: h.env, timeoutSeconds: h.timeout ?? 0 })),
    process: processPlan(spec, context.cgroups.devicesEnforced, joinNamespaces, context.terminal, context.preserveFds),
  };
}

/** What the init and an exec'd process both get from the spec's process. */
function processPlan(spec: ContainerSpec, devicesEnforced: boolean, joinNamespaces: ProcessPlan['joinNamespaces'], terminal: TerminalSize | undefined, preserveFds = 0): ProcessPlan {
  return {
    rlimits: rlimitSteps(spec),
    cwd: spec.process.cwd,
    umask: spec.process.umask ?? 0o022,
    noNewPrivileges: spec.process.noNewPrivileges,
    user: spec.process.user,
    capabilities: capabilitySets(spec, devicesEnforced),
    args: spec.process.args,
    env: spec.process.env,
    terminal,
    joinNamespaces,
    oomScoreAdj: spec.process.oomScoreAdj,
    seccomp: spec.seccomp ? seccompPlan(spec.seccomp) : undefined,
    preserveFds,
  };
}

function idMap(mappings: IdMapping[]): string {
  return mappings.map((m) => `${m.containerID} ${m.hostID} ${m.size}\n`).join('');
}

function rlimitSteps(spec: ContainerSpec): ProcessPlan['rlimits'] {
  return spec.process.rlimits.map((r) => {
    const resource = RLIMITS[r.type];
    if (resource === undefined) throw new ContainerError('BAD_CONFIG', `${r.type} is not a Linux rlimit`);
    return { resource, soft: r.soft, hard: r.hard };
  });
}

/** The capability sets as the helper sets them (bit masks; capabilities go up to bit 40, exact as JSON numbers). */
export function capabilitySets(spec: ContainerSpec, devicesEnforced: boolean): ProcessPlan['capabilities'] {
  const caps = spec.process.capabilities;
  const sets = {
    bounding: capabilityMask(caps.bounding, 'process.capabilities.bounding'),
    effective: capabilityMask(caps.effective, 'process.capabilities.effective'),
    permitted: capabilityMask(caps.permitted, 'process.capabilities.permitted'),
    inheritable: capabilityMask(caps.inheritable, 'process.capabilities.inheritable'),
    ambient: capabilityMask(caps.ambient, 'process.capabilities.ambient'),
  };
  // The kernel raises an ambient capability only if it is permitted and inheritable; runc
  // skips the others (with a warning), and so do we, or `runc spec`'s bundle would not start.
  sets.ambient &= sets.permitted & sets.inheritable;
  if (!devicesEnforced) {
    // Without a devices cgroup, making nodes is the way to a host disk.
    for (const key of Object.keys(sets) as (keyof typeof sets)[]) sets[key] &= ~capabilityBit('CAP_MKNOD');
  }
  return {
    bounding: Number(sets.bounding), effective: Number(sets.effective), permitted: Number(sets.permitted),
    inheritable: Number(sets.inheritable), ambient: Number(sets.ambient),
  };
}

/** The pty of process.terminal, sized by consoleSize (0×0, as runc leaves it, when none is given: the engine sizes it). */
export function specTerminal(spec: ContainerSpec): TerminalSize | undefined {
  return spec.process.terminal ? { rows: spec.process.consoleSize?.height ?? 0, cols: spec.process.consoleSize?.width ?? 0 } : undefined;
}

/** The plan of `exec`: one more process, in the namespaces and cgroups of the container whose init is `pid`. */
export function buildExecPlan(spec: ContainerSpec, pid: number, cgroups: PlanCgroups, options: { consoleSocket?: string; detach: boolean; preserveFds?: number }): ExecPlan {
  // The user namespace first: the others belong to it, and entering them needs its capabilities.
  const order: NamespaceKind[] = ['user', 'ipc', 'uts', 'network', 'pid', 'cgroup', 'mount'];
  const joins = order.filter((ns) => spec.namespaces.includes(ns)).map((ns) => ({ flag: CLONE_FLAGS[ns], path: `/proc/${pid}/ns/${NS_FILES[ns]}` }));
  return {
    cgroupProcs: cgroups.procsFiles,
    consoleSocket: options.consoleSocket,
    detach: options.detach,
    process: processPlan(spec, cgroups.devicesEnforced, joins, specTerminal(spec), options.preserveFds),
  };
}

/**
 * The container's view of its own cgroups at /sys/fs/cgroup. cgroup v1: a tmpfs with one
 * read-only bind per controller of the container's cgroup directory (what runc does without
 * a cgroup namespace); v2: a read-only bind of its one directory.
 */
function cgroupMounts(destination: string, flags: number, cgroups: PlanCgroups): MountStep[] {
  const safe = MS_NOSUID | MS_NODEV | MS_NOEXEC;
  const bind = (source: string, target: string): MountStep => ({
    source, target, type: '', flags: MS_BIND | MS_REC, data: '',
    remountFlags: MS_BIND | MS_REMOUNT | safe | (flags & MS_RDONLY), isFile: false, propagation: [],
  });
  if (cgroups.version === 'v2') return cgroups.views.map((v) => bind(v.path, destination));
  return [
    { source: 'tmpfs', target: destination, type: 'tmpfs', flags: safe, data: 'mode=755', remountFlags: 0, isFile: false, propagation: [] },
    ...cgroups.views.map((v) => bind(v.path, `${destination}/${v.name}`)),
  ];
}
