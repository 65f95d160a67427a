// Reads an OCI runtime bundle (a directory with config.json and a root filesystem) into a
// ContainerSpec, the way runc reads it: config.json is untrusted input, so every field tsvmm uses
// is checked for its type, but properties it does not know are ignored (the runtime spec says a
// runtime MUST ignore unknown properties; engines write many). A field it knows but cannot
// honour is refused with one line naming it only where runc refuses it too (a user namespace
// without mappings, a sysctl outside the container's namespaces, an AppArmor profile on a host
// without AppArmor, ...); fields runc ignores when empty or zero are ignored the same way.

import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { ContainerError } from './errors.js';
import { defaultMounts, HOOK_KINDS, type ContainerSpec, type DeviceRule, type DeviceSpec, type Hook, type Hooks, type IdMapping, type MountSpec, type NamespaceKind, type ResourceLimits, type Rlimit, type SeccompSpec, DEFAULT_CPU_PERIOD, MIN_CONTAINER_MEMORY } from './spec.js';
import { RLIMITS } from './plan.js';

type Json = unknown;
type JsonObject = Record<string, Json>;

const NAMESPACES: Record<string, NamespaceKind> = { pid: 'pid', network: 'network', ipc: 'ipc', uts: 'uts', mount: 'mount', cgroup: 'cgroup', user: 'user' };

/** Largest value a JSON number keeps exactly; OCI writes 2^64-1 for "unlimited" in places. */
const UNLIMITED = 2 ** 53;

class Fields {
  constructor(readonly file: string) {}

  fail(where: string, message: string, code: 'BAD_CONFIG' | 'UNSUPPORTED' = 'BAD_CONFIG'): never {
    throw new ContainerError(code, `${this.file}: ${where} ${message}`);
  }

  unsupported(where: string, why = 'is not supported by tsvmm'): never {
    return this.fail(where, why, 'UNSUPPORTED');
  }

  object(value: Json, where: string): JsonObject {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) this.fail(where, 'must be an object');
    return value as JsonObject;
  }

  string(value: Json, where: string): string {
    if (typeof value !== 'string') this.fail(where, 'must be a string');
    return value;
  }

  integer(value: Json, where: string): number {
    if (typeof value !== 'number' || !Number.isInteger(value)) this.fail(where, 'must be a whole number');
    return value;
  }

  boolean(value: Json, where: string): boolean {
    if (typeof value !== 'boolean') this.fail(where, 'must be true or false');
    return value;
  }

  strings(value: Json, where: string): string[] {
    if (!Array.isArray(value) || value.some((v) => typeof v !== 'string')) this.fail(where, 'must be a list of strings');
    return value as string[];
  }

  array(value: Json, where: string): Json[] {
    if (!Array.isArray(value)) this.fail(where, 'must be a list');
    return value;
  }

  /** A value that asks for something: neither absent, null, false, 0, "" nor empty. */
  static given(value: Json): boolean {
    if (value === undefined || value === null || value === false || value === 0 || value === '') return false;
    if (Array.isArray(value)) return value.length > 0;
    if (typeof value === 'object') return Object.values(value as object).some((v) => Fields.given(v));
    return true;
  }

  optionalInteger(value: Json, where: string): number | undefined {
    return value === undefined || value === null ? undefined : this.integer(value, where);
  }
}

/** Reads `dir/config.json`; throws one-line ContainerErrors for anything missing, malformed or unsupported. */
export function loadBundle(dir: string): ContainerSpec {
  const bundle = path.resolve(dir);
  if (!existsSync(bundle) || !statSync(bundle).isDirectory()) throw new ContainerError('BAD_CONFIG', `bundle ${dir}: no such directory`);
  const file = path.join(bundle, 'config.json');
  if (!existsSync(file)) throw new ContainerError('BAD_CONFIG', `bundle ${dir} has no config.json (\`runc spec\` writes one)`);
  let json: Json;
  try {
    json = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new ContainerError('BAD_CONFIG', `${file} is not valid JSON: ${(error as Error).message}`);
  }
  return specFromConfig(json, bundle, file);
}

/** The checked ContainerSpec of an already parsed config.json; relative paths are taken from `bundle`. */
export function specFromConfig(json: Json, bundle: string, file = path.join(bundle, 'config.json')): ContainerSpec {
  const f: Fields = new Fields(path.basename(file) === 'config.json' ? file : 'config.json');
  const config = f.object(json, '');

  const version = f.string(config.ociVersion, 'ociVersion');
  if (!/^1\.\d+\.\d+/.test(version)) f.unsupported('ociVersion', `${JSON.stringify(version)} is not a 1.x runtime spec`);

  if (config.process === undefined) f.fail('process', 'is missing: there is nothing to run');
  const process = readProcess(f, config.process);

  if (config.root === undefined) f.fail('root', 'is missing: which directory is the root filesystem?');
  const root = f.object(config.root, 'root');
  const rootPath = path.resolve(bundle, f.string(root.path, 'root.path'));
  if (!existsSync(rootPath) || !statSync(rootPath).isDirectory()) {
    throw new ContainerError('BAD_CONFIG', `bundle ${bundle}: root.path ${JSON.stringify(root.path)}: no such directory (${rootPath})`);
  }
  const readonly = root.readonly === undefined ? false : f.boolean(root.readonly, 'root.readonly');

  const mounts: MountSpec[] = (config.mounts === undefined ? defaultMounts() : f.array(config.mounts, 'mounts').map((value, i) => {
    const where = `mounts[${i}]`;
    const m = f.object(value, where);
    const destination = f.string(m.destination, `${where}.destination`);
    if (!destination.startsWith('/')) f.fail(`${where}.destination`, `${JSON.stringify(destination)} must be an absolute path`);
    const options = m.options === undefined || m.options === null ? [] : f.strings(m.options, `${where}.options`);
    const isBind = options.includes('bind') || options.includes('rbind');
    const type = m.type === undefined || m.type === 'none' || m.type === '' ? (isBind ? 'bind' : '') : f.string(m.type, `${where}.type`);
    if (!type) f.fail(`${where}.type`, 'is missing (and the options do not say bind)');
    if (Fields.given(m.uidMappings) || Fields.given(m.gidMappings)) f.unsupported(`${where}.uidMappings`, '(id-mapped mounts) is not supported by tsvmm');
    let source = m.source === undefined ? type : f.string(m.source, `${where}.source`);
    if (type === 'bind' || isBind) {
      source = path.resolve(bundle, source);
      if (!existsSync(source)) f.fail(`${where}.source`, `${JSON.stringify(m.source)}: no such file or directory`);
    }
    return { destination, type: isBind ? 'bind' : type, source, options };
  }));

  const linux = config.linux === undefined || config.linux === null ? {} : f.object(config.linux, 'linux');

  const namespaces: NamespaceKind[] = [];
  const namespacePaths: Partial<Record<NamespaceKind, string>> = {};
  for (const [i, value] of (linux.namespaces === undefined || linux.namespaces === null ? [] : f.array(linux.namespaces, 'linux.namespaces')).entries()) {
    const ns = f.object(value, `linux.namespaces[${i}]`);
    const type = f.string(ns.type, `linux.namespaces[${i}].type`);
    const kind = NAMESPACES[type];
    if (!kind) f.unsupported(`linux.namespaces[${i}]`, `(a ${type} namespace) is not supported by tsvmm`);
    if (namespaces.includes(kind)) f.fail(`linux.namespaces[${i}]`, `repeats the ${type} namespace`);
    namespaces.push(kind);
    if (ns.path !== undefined && ns.path !== '') {
      const nsPath = f.string(ns.path, `linux.namespaces[${i}].path`);
      if (!nsPath.startsWith('/')) f.fail(`linux.namespaces[${i}].path`, `${JSON.stringify(nsPath)} must be an absolute path`);
      namespacePaths[kind] = nsPath;
    }
  }
  // runc cannot keep the host's mounts out of a container without a mount namespace; neither can we.
  if (!namespaces.includes('mount')) f.unsupported('linux.namespaces', 'has no mount namespace; a container needs one of its own');
  if (namespacePaths.mount) f.unsupported('linux.namespaces', 'joins a mount namespace by path; the root filesystem needs one of its own');
  if (namespaces.includes('user') && namespacePaths.user) f.unsupported('linux.namespaces', 'joins a user namespace by path; tsvmm makes user namespaces only');
  const hostname = config.hostname === undefined || config.hostname === '' ? undefined : f.string(config.hostname, 'hostname');
  const domainname = config.domainname === undefined || config.domainname === '' ? undefined : f.string(config.domainname, 'domainname');
  if ((hostname || domainname) && !namespaces.includes('uts')) f.fail('hostname', 'needs a uts namespace (linux.namespaces)');

  const idMappings = (key: 'uidMappings' | 'gidMappings'): IdMapping[] | undefined => {
    if (!Fields.given(linux[key])) return undefined;
    return f.array(linux[key], `linux.${key}`).map((value, i) => {
      const m = f.object(value, `linux.${key}[${i}]`);
      return { containerID: f.integer(m.containerID, `linux.${key}[${i}].containerID`), hostID: f.integer(m.hostID, `linux.${key}[${i}].hostID`), size: f.integer(m.size, `linux.${key}[${i}].size`) };
    });
  };
  const uidMappings = idMappings('uidMappings');
  const gidMappings = idMappings('gidMappings');
  if (namespaces.includes('user') && (!uidMappings || !gidMappings)) f.fail('linux.uidMappings', 'and linux.gidMappings are both needed with a user namespace');
  if (!namespaces.includes('user') && (uidMappings || gidMappings)) f.fail('linux.uidMappings', 'needs a user namespace (linux.namespaces)');

  const sysctl = readSysctl(f, linux.sysctl, namespaces, namespacePaths);
  const seccomp = readSeccomp(f, linux.seccomp);
  const hooks = readHooks(f, config.hooks);

  const { resources, deviceRules } = readResources(f, linux.resources);
  const devices: DeviceSpec[] = (linux.devices === undefined || linux.devices === null ? [] : f.array(linux.devices, 'linux.devices')).map((value, i) => {
    const where = `linux.devices[${i}]`;
    const d = f.object(value, where);
    const type = f.string(d.type, `${where}.type`);
    if (type !== 'c' && type !== 'b' && type !== 'p' && type !== 'u') f.fail(`${where}.type`, `${JSON.stringify(type)} is not c, b, u or p`);
    const devicePath = f.string(d.path, `${where}.path`);
    if (!devicePath.startsWith('/dev/')) f.fail(`${where}.path`, `${JSON.stringify(devicePath)} is not under /dev`);
    return {
      path: devicePath, type: type === 'u' ? 'c' : type,
      major: type === 'p' ? 0 : f.integer(d.major, `${where}.major`), minor: type === 'p' ? 0 : f.integer(d.minor, `${where}.minor`),
      fileMode: d.fileMode === undefined ? 0o666 : f.integer(d.fileMode, `${where}.fileMode`),
      uid: d.uid === undefined ? 0 : f.integer(d.uid, `${where}.uid`), gid: d.gid === undefined ? 0 : f.integer(d.gid, `${where}.gid`),
    };
  });
  const propagation = linux.rootfsPropagation === undefined || linux.rootfsPropagation === '' ? 'rslave' : f.string(linux.rootfsPropagation, 'linux.rootfsPropagation');
  if (!['private', 'rprivate', 'slave', 'rslave'].includes(propagation)) f.unsupported('linux.rootfsPropagation', `${JSON.stringify(propagation)} is not supported (private or slave only)`);
  if (Fields.given(linux.mountLabel)) f.unsupported('linux.mountLabel', 'is not applied by tsvmm (SELinux)');
  if (Fields.given(linux.intelRdt)) f.unsupported('linux.intelRdt', 'is not supported by tsvmm');
  if (Fields.given(linux.personality)) f.unsupported('linux.personality', 'is not supported by tsvmm');
  if (Fields.given(linux.timeOffsets)) f.unsupported('linux.timeOffsets', 'is not supported by tsvmm');

  const annotations: Record<string, string> = {};
  if (config.annotations !== undefined && config.annotations !== null) {
    for (const [key, value] of Object.entries(f.object(config.annotations, 'annotations'))) annotations[key] = f.string(value, `annotations.${key}`);
  }

  return {
    process,
    root: { path: rootPath, layers: [], readonly },
    hostname, domainname, mounts, namespaces, namespacePaths, uidMappings, gidMappings, sysctl, seccomp, hooks, annotations,
    resources, devices, deviceRules,
    maskedPaths: linux.maskedPaths === undefined || linux.maskedPaths === null ? [] : f.strings(linux.maskedPaths, 'linux.maskedPaths'),
    readonlyPaths: linux.readonlyPaths === undefined || linux.readonlyPaths === null ? [] : f.strings(linux.readonlyPaths, 'linux.readonlyPaths'),
    rootPropagation: propagation,
    cgroupsPath: linux.cgroupsPath === undefined || linux.cgroupsPath === '' ? undefined : f.string(linux.cgroupsPath, 'linux.cgroupsPath'),
  };
}

/** config.json's `process`, or the file `exec --process` reads: what to run, as whom, with what. */
function readProcess(f: Fields, value: Json): ContainerSpec['process'] {
  const process = f.object(value, 'process');
  const terminal = process.terminal === undefined ? false : f.boolean(process.terminal, 'process.terminal');
  let consoleSize: { height: number; width: number } | undefined;
  if (process.consoleSize !== undefined) {
    const size = f.object(process.consoleSize, 'process.consoleSize');
    consoleSize = { height: f.integer(size.height, 'process.consoleSize.height'), width: f.integer(size.width, 'process.consoleSize.width') };
  }
  const oomScoreAdj = f.optionalInteger(process.oomScoreAdj, 'process.oomScoreAdj');
  if (oomScoreAdj !== undefined && (oomScoreAdj < -1000 || oomScoreAdj > 1000)) f.fail('process.oomScoreAdj', `${oomScoreAdj} is not between -1000 and 1000`);
  const args = f.strings(process.args, 'process.args');
  if (args.length === 0) f.fail('process.args', 'is empty: there is nothing to run');
  const env = process.env === undefined || process.env === null ? [] : f.strings(process.env, 'process.env');
  for (const entry of env) if (!entry.includes('=')) f.fail('process.env', `entry ${JSON.stringify(entry)} is not NAME=value`);
  const cwd = f.string(process.cwd, 'process.cwd');
  if (!cwd.startsWith('/')) f.fail('process.cwd', `${JSON.stringify(cwd)} must be an absolute path`);
  // Confinement the host must provide; runc refuses a profile it cannot apply, and so do we.
  if (Fields.given(process.apparmorProfile)) f.unsupported('process.apparmorProfile', `${JSON.stringify(process.apparmorProfile)}: AppArmor profiles are not applied by tsvmm`);
  if (Fields.given(process.selinuxLabel)) f.unsupported('process.selinuxLabel', 'is not applied by tsvmm (SELinux)');

  const user = process.user === undefined ? {} : f.object(process.user, 'process.user');
  const uid = user.uid === undefined ? 0 : f.integer(user.uid, 'process.user.uid');
  const gid = user.gid === undefined ? 0 : f.integer(user.gid, 'process.user.gid');
  const additionalGids = user.additionalGids === undefined || user.additionalGids === null ? [] : f.array(user.additionalGids, 'process.user.additionalGids').map((g) => f.integer(g, 'process.user.additionalGids'));
  const umask = f.optionalInteger(user.umask, 'process.user.umask');
  if (Fields.given(user.username)) f.unsupported('process.user.username', '(a Windows user name) is not a Linux field');

  const caps = process.capabilities === undefined || process.capabilities === null ? {} : f.object(process.capabilities, 'process.capabilities');
  const capSet = (key: string) => (caps[key] === undefined || caps[key] === null ? [] : f.strings(caps[key], `process.capabilities.${key}`));

  const rlimits: Rlimit[] = (process.rlimits === undefined || process.rlimits === null ? [] : f.array(process.rlimits, 'process.rlimits')).map((value, i) => {
    const r = f.object(value, `process.rlimits[${i}]`);
    const type = f.string(r.type, `process.rlimits[${i}].type`);
    if (!(type in RLIMITS)) f.fail(`process.rlimits[${i}].type`, `${JSON.stringify(type)} is not a Linux rlimit`);
    const soft = f.integer(r.soft, `process.rlimits[${i}].soft`);
    const hard = f.integer(r.hard, `process.rlimits[${i}].hard`);
    return { type, soft: soft >= UNLIMITED ? -1 : soft, hard: hard >= UNLIMITED ? -1 : hard };
  });

  return {
    args, env, cwd, user: { uid, gid, additionalGids }, rlimits, umask, terminal, consoleSize, oomScoreAdj,
    capabilities: { bounding: capSet('bounding'), effective: capSet('effective'), permitted: capSet('permitted'), inheritable: capSet('inheritable'), ambient: capSet('ambient') },
    noNewPrivileges: process.noNewPrivileges === undefined ? false : f.boolean(process.noNewPrivileges, 'process.noNewPrivileges'),
  };
}

/** Reads the resources JSON of `update --resources FILE` (a config.json `linux.resources` object). */
export function resourcesFromJson(json: Json, file: string): ResourceLimits {
  return readResources(new Fields(file), json).resources;
}

/** Reads the process JSON of `exec --process FILE` (a config.json `process` object). */
export function processFromJson(json: Json, file: string): ContainerSpec['process'] {
  return readProcess(new Fields(file), json);
}

/**
 * The sysctls runc allows: those of a namespace the container has its own of (ipc: kernel.msg*,
 * kernel.sem, kernel.shm*, fs.mqueue.*; uts: kernel.hostname, kernel.domainname; network: net.*),
 * never one that would turn a knob of the host.
 */
function readSysctl(f: Fields, value: Json, namespaces: NamespaceKind[], paths: Partial<Record<NamespaceKind, string>>): Record<string, string> | undefined {
  if (!Fields.given(value)) return undefined;
  const out: Record<string, string> = {};
  for (const [key, v] of Object.entries(f.object(value, 'linux.sysctl'))) {
    const where = `linux.sysctl.${key}`;
    const setting = f.string(v, where);
    if (!/^[a-z0-9_]+(\.[A-Za-z0-9_-]+)+$/.test(key) || key.includes('..')) f.fail(where, 'is not a sysctl name');
    const ipc = /^(kernel\.(msgmax|msgmnb|msgmni|sem|shmall|shmmax|shmmni|shm_rmid_forced)|fs\.mqueue\..+)$/.test(key);
    const uts = key === 'kernel.hostname' || key === 'kernel.domainname';
    const kind: NamespaceKind | undefined = ipc ? 'ipc' : uts ? 'uts' : key.startsWith('net.') ? 'network' : undefined;
    if (!kind) f.fail(where, 'is not in a namespace of the container: it would change the host (runc refuses it too)');
    if (!namespaces.includes(kind)) f.fail(where, `needs a ${kind} namespace of the container's own`);
    // runc allows a joined network namespace unless it is the host's; we cannot tell cheaply, so we trust the engine's path.
    void paths;
    out[key] = setting;
  }
  return out;
}

function readHooks(f: Fields, value: Json): Hooks | undefined {
  if (!Fields.given(value)) return undefined;
  const hooks = f.object(value, 'hooks');
  const out = Object.fromEntries(HOOK_KINDS.map((kind) => [kind, [] as Hook[]])) as unknown as Hooks;
  for (const kind of HOOK_KINDS) {
    if (hooks[kind] === undefined || hooks[kind] === null) continue;
    out[kind] = f.array(hooks[kind], `hooks.${kind}`).map((item, i) => {
      const where = `hooks.${kind}[${i}]`;
      const h = f.object(item, where);
      const hookPath = f.string(h.path, `${where}.path`);
      if (!hookPath.startsWith('/')) f.fail(`${where}.path`, `${JSON.stringify(hookPath)} must be an absolute path`);
      const timeout = f.optionalInteger(h.timeout, `${where}.timeout`);
      if (timeout !== undefined && timeout <= 0) f.fail(`${where}.timeout`, `${timeout} must be more than 0 seconds`);
      return {
        path: hookPath,
        args: h.args === undefined || h.args === null ? [hookPath] : f.strings(h.args, `${where}.args`),
        env: h.env === undefined || h.env === null ? [] : f.strings(h.env, `${where}.env`),
        timeout,
      };
    });
  }
  return out;
}

const SECCOMP_OPS = ['SCMP_CMP_NE', 'SCMP_CMP_LT', 'SCMP_CMP_LE', 'SCMP_CMP_EQ', 'SCMP_CMP_GE', 'SCMP_CMP_GT', 'SCMP_CMP_MASKED_EQ'];
export const SECCOMP_ACTIONS = ['SCMP_ACT_KILL', 'SCMP_ACT_KILL_PROCESS', 'SCMP_ACT_KILL_THREAD', 'SCMP_ACT_TRAP', 'SCMP_ACT_ERRNO', 'SCMP_ACT_TRACE', 'SCMP_ACT_ALLOW', 'SCMP_ACT_LOG'];
export const SECCOMP_ARCHES = ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'];

function readSeccomp(f: Fields, value: Json): SeccompSpec | undefined {
  if (value === undefined || value === null) return undefined;
  const s = f.object(value, 'linux.seccomp');
  const action = (v: Json, where: string): string => {
    const name = f.string(v, where);
    if (!SECCOMP_ACTIONS.includes(name)) f.unsupported(where, `${JSON.stringify(name)} is not supported by tsvmm (${SECCOMP_ACTIONS.join(', ')})`);
    return name;
  };
  if (Fields.given(s.listenerPath)) f.unsupported('linux.seccomp.listenerPath', 'is not supported by tsvmm');
  const flags = s.flags === undefined || s.flags === null ? [] : f.strings(s.flags, 'linux.seccomp.flags');
  const architectures = s.architectures === undefined || s.architectures === null ? [] : f.strings(s.architectures, 'linux.seccomp.architectures')
    // Architectures this x86-64 host cannot run are nothing to filter (runc adds them to the filter, to no effect).
    .filter((a) => SECCOMP_ARCHES.includes(a));
  const syscalls = (s.syscalls === undefined || s.syscalls === null ? [] : f.array(s.syscalls, 'linux.seccomp.syscalls')).map((item, i) => {
    const where = `linux.seccomp.syscalls[${i}]`;
    const rule = f.object(item, where);
    return {
      names: f.strings(rule.names, `${where}.names`),
      action: action(rule.action, `${where}.action`),
      errnoRet: f.optionalInteger(rule.errnoRet, `${where}.errnoRet`),
      args: (rule.args === undefined || rule.args === null ? [] : f.array(rule.args, `${where}.args`)).map((a, k) => {
        const arg = f.object(a, `${where}.args[${k}]`);
        const op = f.string(arg.op, `${where}.args[${k}].op`);
        if (!SECCOMP_OPS.includes(op)) f.fail(`${where}.args[${k}].op`, `${JSON.stringify(op)} is not a seccomp comparison`);
        const index = f.integer(arg.index, `${where}.args[${k}].index`);
        if (index < 0 || index > 5) f.fail(`${where}.args[${k}].index`, `${index} is not an argument number (0-5)`);
        const number = (v: Json, w: string) => {
          const n = v === undefined ? 0 : f.integer(v, w);
          if (n < 0 || n >= UNLIMITED) f.unsupported(w, `${n} is beyond what tsvmm compares exactly (0 to 2^53)`);
          return n;
        };
        return { index, op, value: number(arg.value, `${where}.args[${k}].value`), valueTwo: number(arg.valueTwo, `${where}.args[${k}].valueTwo`) };
      }),
    };
  });
  return { defaultAction: action(s.defaultAction, 'linux.seccomp.defaultAction'), defaultErrnoRet: f.optionalInteger(s.defaultErrnoRet, 'linux.seccomp.defaultErrnoRet'), architectures, flags, syscalls };
}

function readResources(f: Fields, value: Json): { resources: ResourceLimits; deviceRules: DeviceRule[] } {
  const resources: ResourceLimits = {};
  const deviceRules: DeviceRule[] = [];
  if (value === undefined || value === null) return { resources, deviceRules };
  const r = f.object(value, 'linux.resources');

  if (r.memory !== undefined && r.memory !== null) {
    const memory = f.object(r.memory, 'linux.resources.memory');
    const limit = f.optionalInteger(memory.limit, 'linux.resources.memory.limit');
    // As for --mem (runc refuses tiny limits too): a limit of a few bytes only gets the init OOM-killed.
    if (limit !== undefined && limit > 0 && limit < MIN_CONTAINER_MEMORY) f.fail('linux.resources.memory.limit', `${limit} bytes: at least 4 MiB is needed to start anything`);
    if (limit !== undefined && limit > 0 && limit < UNLIMITED) resources.memory = limit;
    const swap = f.optionalInteger(memory.swap, 'linux.resources.memory.swap');
    if (swap !== undefined && swap !== 0) {
      if (swap === -1 || swap >= UNLIMITED) resources.memorySwap = -1;
      else if (limit !== undefined && limit > 0 && swap < limit) f.fail('linux.resources.memory.swap', `${swap} is less than the memory limit ${limit} (it counts memory plus swap)`);
      else resources.memorySwap = swap;
    }
    const reservation = f.optionalInteger(memory.reservation, 'linux.resources.memory.reservation');
    if (reservation !== undefined && reservation > 0 && reservation < UNLIMITED) resources.memoryReservation = reservation;
    const swappiness = f.optionalInteger(memory.swappiness, 'linux.resources.memory.swappiness');
    // runc reads an absent swappiness as "leave it"; 0-100 otherwise.
    if (swappiness !== undefined && swappiness >= 0 && swappiness < UNLIMITED) {
      if (swappiness > 100) f.fail('linux.resources.memory.swappiness', `${swappiness} is not between 0 and 100`);
      resources.swappiness = swappiness;
    }
    if (memory.disableOOMKiller !== undefined && memory.disableOOMKiller !== null && f.boolean(memory.disableOOMKiller, 'linux.resources.memory.disableOOMKiller')) resources.disableOOMKiller = true;
    // kernel and kernelTCP limits: runc 1.1 ignores them (the kernel dropped kmem limits).
  }
  if (r.cpu !== undefined && r.cpu !== null) {
    const cpu = f.object(r.cpu, 'linux.resources.cpu');
    const quota = f.optionalInteger(cpu.quota, 'linux.resources.cpu.quota') ?? -1;
    const periodGiven = f.optionalInteger(cpu.period, 'linux.resources.cpu.period');
    const period = periodGiven || DEFAULT_CPU_PERIOD;
    if (period < 1000 || period > 1_000_000) f.fail('linux.resources.cpu.period', `${period} must be between 1000 and 1000000 µs`);
    if (quota > 0) {
      if (quota < 1000) f.fail('linux.resources.cpu.quota', `${quota} must be at least 1000 µs`);
      resources.cpu = { quota, period };
    }
    const shares = f.optionalInteger(cpu.shares, 'linux.resources.cpu.shares');
    if (shares !== undefined && shares !== 0) {
      if (shares < 2 || shares > 262144) f.fail('linux.resources.cpu.shares', `${shares} is not between 2 and 262144`);
      resources.cpuShares = shares;
    }
    if (Fields.given(cpu.cpus)) resources.cpusetCpus = cpuList(f, cpu.cpus, 'linux.resources.cpu.cpus');
    if (Fields.given(cpu.mems)) resources.cpusetMems = cpuList(f, cpu.mems, 'linux.resources.cpu.mems');
    if (Fields.given(cpu.realtimeRuntime) || Fields.given(cpu.realtimePeriod)) f.unsupported('linux.resources.cpu.realtimeRuntime', 'is not supported by tsvmm');
  }
  if (r.pids !== undefined && r.pids !== null) {
    const pids = f.object(r.pids, 'linux.resources.pids');
    const limit = f.optionalInteger(pids.limit, 'linux.resources.pids.limit');
    if (limit !== undefined && limit > 0) resources.pids = limit;
  }
  if (r.blockIO !== undefined && r.blockIO !== null) {
    const blockIO = f.object(r.blockIO, 'linux.resources.blockIO');
    const weight = f.optionalInteger(blockIO.weight, 'linux.resources.blockIO.weight');
    if (weight !== undefined && weight !== 0) {
      if (weight < 10 || weight > 1000) f.fail('linux.resources.blockIO.weight', `${weight} is not between 10 and 1000`);
      resources.blockIOWeight = weight;
    }
    for (const key of ['leafWeight', 'weightDevice', 'throttleReadBpsDevice', 'throttleWriteBpsDevice', 'throttleReadIOPSDevice', 'throttleWriteIOPSDevice']) {
      if (Fields.given(blockIO[key])) f.unsupported(`linux.resources.blockIO.${key}`, 'is not supported by tsvmm');
    }
  }
  for (const key of ['hugepageLimits', 'network', 'rdma', 'unified']) {
    if (Fields.given(r[key])) f.unsupported(`linux.resources.${key}`, 'is not supported by tsvmm');
  }
  for (const [i, item] of (r.devices === undefined || r.devices === null ? [] : f.array(r.devices, 'linux.resources.devices')).entries()) {
    const where = `linux.resources.devices[${i}]`;
    const d = f.object(item, where);
    const type = d.type === undefined || d.type === null ? 'a' : f.string(d.type, `${where}.type`);
    if (type !== 'a' && type !== 'c' && type !== 'b') f.fail(`${where}.type`, `${JSON.stringify(type)} is not a, c or b`);
    const access = d.access === undefined || d.access === null || d.access === '' ? 'rwm' : f.string(d.access, `${where}.access`);
    if (!/^[rwm]{1,3}$/.test(access)) f.fail(`${where}.access`, `${JSON.stringify(access)} is not made of r, w and m`);
    deviceRules.push({
      allow: f.boolean(d.allow, `${where}.allow`), type, access,
      major: d.major === undefined || d.major === null || d.major === -1 ? null : f.integer(d.major, `${where}.major`),
      minor: d.minor === undefined || d.minor === null || d.minor === -1 ? null : f.integer(d.minor, `${where}.minor`),
    });
  }
  return { resources, deviceRules };
}

/** "0-3,5": the kernel's list format for cpuset.cpus and cpuset.mems. */
function cpuList(f: Fields, value: Json, where: string): string {
  const list = f.string(value, where).trim();
  if (!/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(list)) f.fail(where, `${JSON.stringify(list)} is not a list such as "0-1,3"`);
  return list;
}
