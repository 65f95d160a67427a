// A container's cgroups: made before the container starts, limits written into them, the init
// process placed in them by the helper, frozen and thawed for pause and resume, read for CPU
// time and OOM kills, and removed when it has ended. Two layouts, one interface:
//
// The directory is tsvmm/<name>-<key>, the key naming the runtime directory (names are unique
// only within one), unless a bundle gives linux.cgroupsPath.
//
//  - cgroup v2: one directory, <cgroup2 mount>/tsvmm/<name>-<key>, with memory.max, cpu.max,
//    pids.max, cgroup.freeze. Controllers must be enabled in every ancestor's
//    cgroup.subtree_control, and v2 forbids that in a cgroup holding processes, so the
//    containers live under the hierarchy's root rather than under our own cgroup.
//  - cgroup v1: one directory per controller hierarchy, under the cgroup we are in there (so a
//    limit set on us also binds our containers), with memory.limit_in_bytes,
//    cpu.cfs_quota_us, pids.max, freezer.state, devices.allow/deny.
//
// Which one: TSVMM_CGROUP=v1|v2 if set; else v2 if it is the only hierarchy (unified mode) or
// offers the controllers; else v1 if it has them (hybrid hosts such as this project's, where
// the v2 hierarchy is empty); else a one-line error.

import { existsSync, mkdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { ContainerError } from './errors.js';
import { monotonicMs } from '../meta/clock.js';
import { defaultDeviceRules, type DeviceRule, type ResourceLimits } from './spec.js';
import type { PlanCgroups } from './plan.js';
import { sleepSync } from '../meta/sleep-sync.js';
import { parseMountinfo } from '../meta/mountinfo.js';

export type CgroupVersion = 'v1' | 'v2';

/** Where our cgroups are, as found on this host. */
export type CgroupLayout =
  | { version: 'v1'; /** controller → our own cgroup's directory in its hierarchy, and where that is mounted */ hierarchies: Map<string, V1Hierarchy> }
  | { version: 'v2'; mountPoint: string; controllers: Set<string> };

export interface V1Hierarchy {
  dir: string;
  mountPoint: string;
}

/** The v1 controllers a container joins: the first four it needs, the others it uses if present. */
const V1_REQUIRED = ['memory', 'cpu', 'pids', 'freezer'] as const;
const V1_OPTIONAL = ['cpuacct', 'devices'] as const;
const V2_CONTROLLERS = ['memory', 'cpu', 'pids'] as const;

export interface CgroupSources {
  mountinfo: string;
  /** /proc/self/cgroup */
  selfCgroup: string;
  /** The controllers a cgroup2 mount's root offers (its cgroup.controllers). */
  v2Controllers(mountPoint: string): string[];
  forced?: string;
}

/** This host's, as process `pid` (default: this one) sees it, with `forced` as TSVMM_CGROUP. */
export function hostCgroupSources(pid: number | 'self' = 'self', forced = process.env.TSVMM_CGROUP): CgroupSources {
  return {
    mountinfo: readFileSync(`/proc/${pid}/mountinfo`, 'utf8'),
    selfCgroup: readFileSync(`/proc/${pid}/cgroup`, 'utf8'),
    v2Controllers: (mountPoint) => {
      try {
        return readFileSync(path.join(mountPoint, 'cgroup.controllers'), 'utf8').trim().split(/\s+/).filter(Boolean);
      } catch {
        return [];
      }
    },
    forced,
  };
}

/** Finds the cgroup hierarchies this process can use; throws the one clear line if there is none. */
export function detectCgroups(sources: CgroupSources = hostCgroupSources()): CgroupLayout {
  const v1 = new Map<string, V1Hierarchy>();
  let v2Mount: string | undefined;
  const own = new Map<string, string>(); // "cpu,cpuacct" or "" (v2) → our path in that hierarchy
  for (const line of sources.selfCgroup.split('\n')) {
    const match = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (match) own.set(match[2]!, match[3]!);
  }
  for (const { root, mountPoint, fstype, superOptions } of parseMountinfo(sources.mountinfo)) {
    if (fstype === 'cgroup2') {
      v2Mount ??= mountPoint;
    } else if (fstype === 'cgroup') {
      const controllers = superOptions.split(',').filter((o) => o !== 'rw' && o !== 'ro' && !o.includes('='));
      const ownPath = [...own.entries()].find(([key]) => key.split(',').sort().join(',') === [...controllers].sort().join(','))?.[1];
      if (ownPath === undefined || controllers.length === 0) continue;
      // Our path is relative to the hierarchy's root; the mount may show only a subtree of it.
      const relative = path.relative(root, ownPath);
      if (relative.startsWith('..')) continue;
      for (const c of controllers) if (!v1.has(c)) v1.set(c, { dir: path.join(mountPoint, relative), mountPoint });
    }
  }

  const v2Controllers = v2Mount ? new Set(sources.v2Controllers(v2Mount)) : new Set<string>();
  const v2: CgroupLayout | undefined = v2Mount ? { version: 'v2', mountPoint: v2Mount, controllers: v2Controllers } : undefined;
  const v1Missing = V1_REQUIRED.filter((c) => !v1.has(c));
  const v1Layout: CgroupLayout | undefined = v1Missing.length === 0 ? { version: 'v1', hierarchies: v1 } : undefined;
  const unified = v2Mount !== undefined && v1.size === 0;
  const v2Complete = V2_CONTROLLERS.every((c) => v2Controllers.has(c));

  if (sources.forced === 'v1' || sources.forced === 'v2') {
    const chosen = sources.forced === 'v1' ? v1Layout : v2;
    if (chosen) return chosen;
    throw new ContainerError('NO_CGROUPS', sources.forced === 'v1'
      ? `TSVMM_CGROUP=v1, but cgroup v1 ${v1.size ? `lacks the ${v1Missing.join(', ')} controller${v1Missing.length > 1 ? 's' : ''}` : 'is not mounted'}`
      : 'TSVMM_CGROUP=v2, but no cgroup2 hierarchy is mounted');
  }
  if (sources.forced) throw new ContainerError('NO_CGROUPS', `TSVMM_CGROUP=${sources.forced}: say v1 or v2`);
  if (v2 && (unified || v2Complete)) return v2;
  if (v1Layout) return v1Layout;
  const v2Says = v2Mount
    ? `cgroup v2 at ${v2Mount} offers ${[...v2Controllers].filter((c) => (V2_CONTROLLERS as readonly string[]).includes(c)).join(', ') || 'none'} of memory, cpu, pids`
    : 'no cgroup v2 hierarchy is mounted';
  const v1Says = v1.size ? `cgroup v1 lacks the ${v1Missing.join(', ')} controller${v1Missing.length > 1 ? 's' : ''}` : 'no cgroup v1 controller is mounted';
  throw new ContainerError('NO_CGROUPS', `no usable cgroup hierarchy: ${v2Says}, and ${v1Says}; containers need one to be limited and paused`);
}

/** Refuses limits the layout has no controller for, before anything is made. */
export function checkLimits(layout: CgroupLayout, limits: ResourceLimits): void {
  if (layout.version === 'v2') {
    missingV2Controller(layout.mountPoint, layout.controllers, limits);
  }
}

function missingV2Controller(mountPoint: string, controllers: Set<string>, limits: ResourceLimits): void {
  const wanted: [string, unknown][] = [['memory', limits.memory], ['cpu', limits.cpu], ['pids', limits.pids]];
  for (const [controller, value] of wanted) {
    if (value !== undefined && !controllers.has(controller)) {
      throw new ContainerError('NO_CGROUPS', `cannot limit ${controller === 'pids' ? 'processes' : controller}: cgroup v2 at ${mountPoint} does not offer the ${controller} controller`);
    }
  }
}

/** A limit as the cgroup files hold it now; null = unlimited. */
export interface CgroupLimits {
  memory: number | null;
  cpu: { quota: number | null; period: number };
  pids: number | null;
}

export interface ContainerCgroup {
  readonly version: CgroupVersion;
  /** controller (v1) or "unified" (v2) → directory. */
  readonly paths: Readonly<Record<string, string>>;
  readonly plan: PlanCgroups;
  /** Writes the limits that are set in `limits`; the others are left as they are. */
  apply(limits: ResourceLimits): void;
  read(): CgroupLimits;
  freeze(): Promise<void>;
  thaw(): Promise<void>;
  /** Frozen (or freezing) now. */
  frozen(): boolean;
  /** CPU time used by everything in the container so far, µs. */
  cpuTimeUs(): number;
  /** Processes the OOM killer ended in this cgroup. */
  oomKills(): number;
  processes(): number[];
  /** SIGKILL to every process in it. */
  killAll(): Promise<void>;
  /** Removes the directories; waits briefly for the last processes to be gone. */
  remove(): Promise<void>;
  /** The same, synchronously and best effort, for a process that is exiting. */
  removeNow(): void;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function write(file: string, value: string, what: string): void {
  try {
    writeFileSync(file, value);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const why = code === 'EBUSY' && file.includes('memory') ? 'the container uses more than that and cannot give it back'
      : code === 'EINVAL' ? 'the kernel refused the value' : code ?? String(error);
    throw new ContainerError('CGROUP', `cannot set ${what} (${value.trim()} into ${file}): ${why}`, { cause: error });
  }
}

function read(file: string): string {
  return readFileSync(file, 'utf8');
}

/** `key value` lines (memory.events, cpu.stat, memory.oom_control) → value of key, or 0. */
function keyed(file: string, key: string): number {
  try {
    const match = new RegExp(`^${key} (\\d+)$`, 'm').exec(read(file));
    return match ? Number(match[1]) : 0;
  } catch {
    return 0;
  }
}

function makeDir(dir: string, name: string): void {
  if (existsSync(dir)) {
    // Left by a supervisor that died: empty, it goes; with processes, it is someone's container.
    try {
      rmdirSync(dir);
    } catch {
      throw new ContainerError('CGROUP', `cgroup ${dir} already holds processes: is another container named "${name}" running?`);
    }
  }
  try {
    try {
      mkdirSync(dir, { recursive: true });
    } catch (error) {
      // The last container of another tsvmm removed the parent between our two mkdirs.
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      mkdirSync(dir, { recursive: true });
    }
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ContainerError('NO_CGROUPS', `cannot create cgroup ${dir}: ${code === 'EACCES' || code === 'EPERM' || code === 'EROFS' ? `${code} (containers need root)` : code}`, { cause: error });
  }
}

/** The tsvmm/ parent goes with its last container: it sits inside cgroups that others may want to remove. */
function removeParent(dir: string): void {
  const parent = path.dirname(dir);
  if (path.basename(parent) !== 'tsvmm') return;
  try {
    rmdirSync(parent);
  } catch { /* another container is in it */ }
}

async function removeDirs(dirs: string[], killAll: () => Promise<void>): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    const left = dirs.filter((d) => existsSync(d));
    if (left.length === 0) {
      dirs.forEach(removeParent);
      return;
    }
    let busy: string | undefined;
    for (const dir of left) {
      try {
        rmdirSync(dir);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EBUSY') throw new ContainerError('CGROUP', `cannot remove cgroup ${dir}: ${(error as NodeJS.ErrnoException).code}`);
        busy = dir;
      }
    }
    if (!busy) {
      dirs.forEach(removeParent);
      return;
    }
    // A process that outlived the init (no pid namespace, or still being torn down).
    if (attempt === 10) await killAll();
    if (attempt > 200) throw new ContainerError('CGROUP', `cannot remove cgroup ${busy}: processes are still in it`);
    await sleep(attempt < 10 ? 1 : 10);
  }
}

function removeDirsNow(dirs: string[]): void {
  const deadline = monotonicMs() + 200;
  for (const dir of dirs) {
    while (existsSync(dir)) {
      try {
        rmdirSync(dir);
      } catch {
        // Its last process has been killed but is not gone yet.
        if (monotonicMs() > deadline) return;
        sleepSync(1);
      }
    }
    removeParent(dir);
  }
}

/** Where a container's cgroup goes inside a hierarchy whose (our) base is `base`. */
function containerDir(base: string, hierarchyRoot: string, dirName: string, cgroupsPath: string | undefined): string {
  if (!cgroupsPath) return path.join(base, 'tsvmm', dirName);
  // OCI: an absolute path is from the hierarchy's root, a relative one from ours.
  const resolved = cgroupsPath.startsWith('/') ? path.join(hierarchyRoot, cgroupsPath) : path.join(base, cgroupsPath);
  if (!resolved.startsWith(`${hierarchyRoot}/`)) throw new ContainerError('BAD_CONFIG', `linux.cgroupsPath ${JSON.stringify(cgroupsPath)} leaves the cgroup hierarchy`);
  return resolved;
}

export interface CgroupRequest {
  /** The container's name, for messages. */
  name: string;
  /** Its directory's name under tsvmm/: the name qualified by the runtime directory, so that two never collide. */
  dirName: string;
  resources: ResourceLimits;
  deviceRules: DeviceRule[];
  cgroupsPath?: string;
}

/** Makes the container's cgroups and writes its limits and device rules. */
export function createCgroup(layout: CgroupLayout, request: CgroupRequest): ContainerCgroup {
  const cgroup = layout.version === 'v1' ? new V1Cgroup(layout.hierarchies, request) : new V2Cgroup(layout.mountPoint, layout.controllers, request);
  try {
    cgroup.setUp(request);
  } catch (error) {
    void cgroup.remove().catch(() => {});
    throw error;
  }
  return cgroup;
}

/** The cgroups of a container made earlier (by another process: tsvmm-runc's create), to pause, kill or remove. */
export function openCgroup(layout: CgroupLayout, request: CgroupRequest): ContainerCgroup {
  return layout.version === 'v1' ? new V1Cgroup(layout.hierarchies, request) : new V2Cgroup(layout.mountPoint, layout.controllers, request);
}

const UNLIMITED_V1 = 2 ** 62; // memory.limit_in_bytes reads PAGE_COUNTER_MAX pages when unlimited

class V1Cgroup implements ContainerCgroup {
  readonly version = 'v1' as const;
  readonly paths: Record<string, string> = {};
  readonly #dirs: string[] = [];

  constructor(hierarchies: Map<string, V1Hierarchy>, request: CgroupRequest) {
    for (const controller of [...V1_REQUIRED, ...V1_OPTIONAL]) {
      const hierarchy = hierarchies.get(controller);
      if (!hierarchy) continue;
      const dir = containerDir(hierarchy.dir, hierarchy.mountPoint, request.dirName, request.cgroupsPath);
      this.paths[controller] = dir;
      if (!this.#dirs.includes(dir)) this.#dirs.push(dir);
    }
    // Joined only when asked for: a cpuset cgroup starts empty and must be filled before use.
    const { resources } = request;
    const wanted = [
      ['cpuset', resources.cpusetCpus !== undefined || resources.cpusetMems !== undefined],
      ['blkio', resources.blockIOWeight !== undefined],
    ] as const;
    for (const [controller, asked] of wanted) {
      const hierarchy = hierarchies.get(controller);
      if (!asked || !hierarchy) continue;
      const dir = containerDir(hierarchy.dir, hierarchy.mountPoint, request.name, request.cgroupsPath);
      this.paths[controller] = dir;
      if (!this.#dirs.includes(dir)) this.#dirs.push(dir);
    }
  }

  get plan(): PlanCgroups {
    return {
      version: 'v1',
      procsFiles: this.#dirs.map((d) => path.join(d, 'cgroup.procs')),
      views: Object.entries(this.paths).map(([name, dir]) => ({ name, path: dir })),
      devicesEnforced: 'devices' in this.paths,
    };
  }

  setUp(request: CgroupRequest): void {
    for (const dir of this.#dirs) makeDir(dir, request.name);
    const cpuset = this.paths.cpuset;
    if (cpuset) {
      // A new cpuset cgroup has no CPUs and no memory nodes; runc fills it from its parent.
      for (const file of ['cpuset.cpus', 'cpuset.mems']) {
        if (!read(path.join(cpuset, file)).trim()) write(path.join(cpuset, file), read(path.join(path.dirname(cpuset), file)).trim(), file);
      }
    }
    const devices = this.paths.devices;
    if (devices) {
      // Deny all, then the bundle's rules, then what every container needs (as runc does).
      for (const rule of [{ allow: false, type: 'a', major: null, minor: null, access: 'rwm' } as DeviceRule, ...request.deviceRules, ...defaultDeviceRules()]) {
        const line = rule.type === 'a' ? 'a' : `${rule.type} ${rule.major ?? '*'}:${rule.minor ?? '*'} ${rule.access}`;
        write(path.join(devices, rule.allow ? 'devices.allow' : 'devices.deny'), line, `device rule "${line}"`);
      }
    }
    this.apply(request.resources);
  }

  #file(controller: string, file: string): string {
    return path.join(this.paths[controller]!, file);
  }

  apply(limits: ResourceLimits): void {
    if (limits.memory !== undefined || limits.memorySwap !== undefined) {
      const memsw = this.#file('memory', 'memory.memsw.limit_in_bytes');
      const mem = this.#file('memory', 'memory.limit_in_bytes');
      // With swap accounting, memory+swap gets the limit asked, else the memory limit (no
      // swapping past it); it must never be below the memory limit, so the order of the two
      // writes depends on the direction. Without swap accounting there is no swap to limit.
      const memory = limits.memory === undefined ? undefined : String(limits.memory);
      const swap = limits.memorySwap !== undefined ? String(limits.memorySwap) : memory;
      const writeMem = () => { if (memory !== undefined) write(mem, memory, 'the memory limit'); };
      const writeSwap = () => { if (swap !== undefined && existsSync(memsw)) write(memsw, swap, 'the memory+swap limit'); };
      if (limits.memory !== undefined && limits.memory > Number(read(mem))) {
        writeSwap();
        writeMem();
      } else {
        writeMem();
        writeSwap();
      }
    }
    if (limits.memoryReservation !== undefined) write(this.#file('memory', 'memory.soft_limit_in_bytes'), String(limits.memoryReservation), 'the memory reservation');
    if (limits.swappiness !== undefined) write(this.#file('memory', 'memory.swappiness'), String(limits.swappiness), 'the swappiness');
    if (limits.disableOOMKiller) write(this.#file('memory', 'memory.oom_control'), '1', 'the OOM killer switch');
    if (limits.cpuShares !== undefined) write(this.#file('cpu', 'cpu.shares'), String(limits.cpuShares), 'the CPU shares');
    if (limits.cpusetCpus !== undefined && this.paths.cpuset) write(this.#file('cpuset', 'cpuset.cpus'), limits.cpusetCpus, 'the CPUs (cpuset)');
    if (limits.cpusetMems !== undefined && this.paths.cpuset) write(this.#file('cpuset', 'cpuset.mems'), limits.cpusetMems, 'the memory nodes (cpuset)');
    // A host without the blkio controller (or CFQ/BFQ weights) gets none, as with runc where the file is missing.
    if (limits.blockIOWeight !== undefined && this.paths.blkio && existsSync(this.#file('blkio', 'blkio.weight'))) {
      write(this.#file('blkio', 'blkio.weight'), String(limits.blockIOWeight), 'the block I/O weight');
    }
    if (limits.cpu !== undefined) {
      write(this.#file('cpu', 'cpu.cfs_period_us'), String(limits.cpu.period), 'the CPU period');
      write(this.#file('cpu', 'cpu.cfs_quota_us'), String(limits.cpu.quota), 'the CPU quota');
    }
    if (limits.pids !== undefined) write(this.#file('pids', 'pids.max'), String(limits.pids), 'the process limit');
  }

  read(): CgroupLimits {
    const memory = Number(read(this.#file('memory', 'memory.limit_in_bytes')));
    const quota = Number(read(this.#file('cpu', 'cpu.cfs_quota_us')));
    const pids = read(this.#file('pids', 'pids.max')).trim();
    return {
      memory: memory >= UNLIMITED_V1 ? null : memory,
      cpu: { quota: quota < 0 ? null : quota, period: Number(read(this.#file('cpu', 'cpu.cfs_period_us'))) },
      pids: pids === 'max' ? null : Number(pids),
    };
  }

  async freeze(): Promise<void> {
    const state = this.#file('freezer', 'freezer.state');
    // FREEZING can last while a task sits in an uninterruptible sleep; asking again nudges it.
    for (let i = 0; i < 1000; i++) {
      write(state, 'FROZEN', 'the freezer');
      if (read(state).trim() === 'FROZEN') return;
      await sleep(i < 10 ? 1 : 10);
    }
    write(state, 'THAWED', 'the freezer');
    throw new ContainerError('CGROUP', `the container did not freeze within 10 s (${state} stayed FREEZING)`);
  }

  frozen(): boolean {
    try {
      return read(this.#file('freezer', 'freezer.state')).trim() !== 'THAWED';
    } catch {
      return false;
    }
  }

  async thaw(): Promise<void> {
    const state = this.#file('freezer', 'freezer.state');
    write(state, 'THAWED', 'the freezer');
    while (read(state).trim() !== 'THAWED') await sleep(1);
  }

  cpuTimeUs(): number {
    if (!this.paths.cpuacct) return 0;
    try {
      return Math.round(Number(read(this.#file('cpuacct', 'cpuacct.usage'))) / 1000);
    } catch {
      return 0;
    }
  }

  oomKills(): number {
    return keyed(this.#file('memory', 'memory.oom_control'), 'oom_kill');
  }

  processes(): number[] {
    try {
      return read(this.#file('pids', 'cgroup.procs')).split('\n').filter(Boolean).map(Number);
    } catch {
      return [];
    }
  }

  async killAll(): Promise<void> {
    // Frozen, nobody can fork while we go through the list; SIGKILL lands on thaw.
    await this.freeze().catch(() => {});
    for (const pid of this.processes()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch { /* already gone */ }
    }
    await this.thaw().catch(() => {});
  }

  async remove(): Promise<void> {
    await removeDirs(this.#dirs, () => this.killAll());
  }

  removeNow(): void {
    removeDirsNow(this.#dirs);
  }
}

class V2Cgroup implements ContainerCgroup {
  readonly version = 'v2' as const;
  readonly paths: Record<string, string>;
  readonly #dir: string;
  readonly #mountPoint: string;
  readonly #controllers: Set<string>;

  constructor(mountPoint: string, controllers: Set<string>, request: CgroupRequest) {
    this.#mountPoint = mountPoint;
    this.#controllers = controllers;
    this.#dir = containerDir(mountPoint, mountPoint, request.dirName, request.cgroupsPath);
    this.paths = { unified: this.#dir };
  }

  get plan(): PlanCgroups {
    return { version: 'v2', procsFiles: [path.join(this.#dir, 'cgroup.procs')], views: [{ name: '', path: this.#dir }], devicesEnforced: false };
  }

  setUp(request: CgroupRequest): void {
    this.#need(request.resources);
    // Each ancestor hands the controllers down; writing one that is already on is harmless.
    const enable = V2_CONTROLLERS.filter((c) => this.#controllers.has(c)).map((c) => `+${c}`);
    const parts = path.relative(this.#mountPoint, path.dirname(this.#dir)).split('/').filter(Boolean);
    let dir = this.#mountPoint;
    for (let i = 0; i <= parts.length; i++) {
      if (i > 0) {
        dir = path.join(dir, parts[i - 1]!);
        if (!existsSync(dir)) makeDir(dir, request.name);
      }
      for (const controller of enable) write(path.join(dir, 'cgroup.subtree_control'), controller, `the ${controller.slice(1)} controller for ${dir}`);
    }
    makeDir(this.#dir, request.name);
    this.apply(request.resources);
  }

  #need(limits: ResourceLimits): void {
    missingV2Controller(this.#mountPoint, this.#controllers, limits);
  }

  #file(file: string): string {
    return path.join(this.#dir, file);
  }

  apply(limits: ResourceLimits): void {
    this.#need(limits);
    if (limits.memory !== undefined) {
      write(this.#file('memory.max'), String(limits.memory), 'the memory limit');
      if (existsSync(this.#file('memory.swap.max'))) {
        // OCI's swap counts memory plus swap; v2's swap.max is the swap alone (runc converts the same way).
        const swap = limits.memorySwap === undefined ? '0' : limits.memorySwap === -1 ? 'max' : String(Math.max(0, limits.memorySwap - limits.memory));
        write(this.#file('memory.swap.max'), swap, 'the swap limit');
      }
    }
    if (limits.memoryReservation !== undefined) write(this.#file('memory.low'), String(limits.memoryReservation), 'the memory reservation');
    if (limits.cpuShares !== undefined && this.#controllers.has('cpu')) {
      write(this.#file('cpu.weight'), String(1 + Math.floor(((limits.cpuShares - 2) * 9999) / 262142)), 'the CPU weight');
    }
    if (limits.cpusetCpus !== undefined && existsSync(this.#file('cpuset.cpus'))) write(this.#file('cpuset.cpus'), limits.cpusetCpus, 'the CPUs (cpuset)');
    if (limits.cpusetMems !== undefined && existsSync(this.#file('cpuset.mems'))) write(this.#file('cpuset.mems'), limits.cpusetMems, 'the memory nodes (cpuset)');
    if (limits.blockIOWeight !== undefined && existsSync(this.#file('io.weight'))) {
      write(this.#file('io.weight'), `default ${1 + Math.floor(((limits.blockIOWeight - 10) * 9999) / 990)}`, 'the I/O weight');
    }
    if (limits.cpu !== undefined) write(this.#file('cpu.max'), `${limits.cpu.quota} ${limits.cpu.period}`, 'the CPU quota');
    if (limits.pids !== undefined) write(this.#file('pids.max'), String(limits.pids), 'the process limit');
  }

  read(): CgroupLimits {
    const value = (file: string) => {
      try {
        const text = read(this.#file(file)).trim();
        return text === 'max' ? null : Number(text);
      } catch {
        return null;
      }
    };
    let cpu: CgroupLimits['cpu'] = { quota: null, period: 100_000 };
    try {
      const [quota, period] = read(this.#file('cpu.max')).trim().split(' ');
      cpu = { quota: quota === 'max' ? null : Number(quota), period: Number(period) };
    } catch { /* no cpu controller */ }
    return { memory: value('memory.max'), cpu, pids: value('pids.max') };
  }

  async freeze(): Promise<void> {
    write(this.#file('cgroup.freeze'), '1', 'cgroup.freeze');
    for (let i = 0; i < 1000; i++) {
      if (keyed(this.#file('cgroup.events'), 'frozen') === 1) return;
      await sleep(i < 10 ? 1 : 10);
    }
    write(this.#file('cgroup.freeze'), '0', 'cgroup.freeze');
    throw new ContainerError('CGROUP', 'the container did not freeze within 10 s');
  }

  frozen(): boolean {
    try {
      return read(this.#file('cgroup.freeze')).trim() === '1';
    } catch {
      return false;
    }
  }

  async thaw(): Promise<void> {
    write(this.#file('cgroup.freeze'), '0', 'cgroup.freeze');
    while (keyed(this.#file('cgroup.events'), 'frozen') !== 0) await sleep(1);
  }

  cpuTimeUs(): number {
    return keyed(this.#file('cpu.stat'), 'usage_usec');
  }

  oomKills(): number {
    return keyed(this.#file('memory.events'), 'oom_kill');
  }

  processes(): number[] {
    try {
      return read(this.#file('cgroup.procs')).split('\n').filter(Boolean).map(Number);
    } catch {
      return [];
    }
  }

  async killAll(): Promise<void> {
    if (existsSync(this.#file('cgroup.kill'))) {
      write(this.#file('cgroup.kill'), '1', 'cgroup.kill');
      return;
    }
    await this.freeze().catch(() => {});
    for (const pid of this.processes()) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch { /* already gone */ }
    }
    await this.thaw().catch(() => {});
  }

  async remove(): Promise<void> {
    await removeDirs([this.#dir], () => this.killAll());
  }

  removeNow(): void {
    removeDirsNow([this.#dir]);
  }
}
