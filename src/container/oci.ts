// Reads an OCI runtime bundle (a directory with config.json and a root filesystem, as
// `runc spec` makes it) into a ContainerSpec. config.json is untrusted input: every field is
// checked for its type, and every field tsvmm does not implement is refused with one line
// naming it, rather than silently ignored (a container without the seccomp profile or user
// namespace its author asked for is not the container they meant).

import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { ContainerError } from './errors.js';
import { defaultMounts, type ContainerSpec, type DeviceRule, type DeviceSpec, type MountSpec, type NamespaceKind, type ResourceLimits, type Rlimit, DEFAULT_CPU_PERIOD } from './spec.js';
import { RLIMITS } from './plan.js';

type Json = unknown;
type JsonObject = Record<string, Json>;

const NAMESPACES: Record<string, NamespaceKind> = { pid: 'pid', network: 'network', ipc: 'ipc', uts: 'uts', mount: 'mount', cgroup: 'cgroup' };

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

  /** Refuses keys outside `known`, or among `refused` with a value that asks for something. */
  only(object: JsonObject, where: string, known: readonly string[]): void {
    for (const [key, value] of Object.entries(object)) {
      if (known.includes(key)) continue;
      if (value === null || (typeof value === 'object' && Object.keys(value as object).length === 0)) continue;
      this.unsupported(`${where ? `${where}.` : ''}${key}`);
    }
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
  f.only(config, '', ['ociVersion', 'process', 'root', 'hostname', 'domainname', 'mounts', 'linux', 'annotations']);

  const version = f.string(config.ociVersion, 'ociVersion');
  if (!/^1\.\d+\.\d+/.test(version)) f.unsupported('ociVersion', `${JSON.stringify(version)} is not a 1.x runtime spec`);

  if (config.process === undefined) f.fail('process', 'is missing: there is nothing to run');
  const process = f.object(config.process, 'process');
  f.only(process, 'process', ['terminal', 'consoleSize', 'user', 'args', 'env', 'cwd', 'capabilities', 'rlimits', 'noNewPrivileges', 'oomScoreAdj']);
  if (process.terminal !== undefined && f.boolean(process.terminal, 'process.terminal')) {
    f.unsupported('process.terminal', 'is true; tsvmm gives the container its own stdio, so set it to false');
  }
  if (process.oomScoreAdj !== undefined) f.unsupported('process.oomScoreAdj');
  const args = f.strings(process.args, 'process.args');
  if (args.length === 0) f.fail('process.args', 'is empty: there is nothing to run');
  const env = process.env === undefined ? [] : f.strings(process.env, 'process.env');
  for (const entry of env) if (!entry.includes('=')) f.fail('process.env', `entry ${JSON.stringify(entry)} is not NAME=value`);
  const cwd = f.string(process.cwd, 'process.cwd');
  if (!cwd.startsWith('/')) f.fail('process.cwd', `${JSON.stringify(cwd)} must be an absolute path`);

  const user = process.user === undefined ? {} : f.object(process.user, 'process.user');
  f.only(user, 'process.user', ['uid', 'gid', 'additionalGids', 'umask']);
  const uid = user.uid === undefined ? 0 : f.integer(user.uid, 'process.user.uid');
  const gid = user.gid === undefined ? 0 : f.integer(user.gid, 'process.user.gid');
  const additionalGids = user.additionalGids === undefined ? [] : f.array(user.additionalGids, 'process.user.additionalGids').map((g) => f.integer(g, 'process.user.additionalGids'));
  const umask = user.umask === undefined ? undefined : f.integer(user.umask, 'process.user.umask');

  const caps = process.capabilities === undefined ? {} : f.object(process.capabilities, 'process.capabilities');
  f.only(caps, 'process.capabilities', ['bounding', 'effective', 'inheritable', 'permitted', 'ambient']);
  const capSet = (key: string) => (caps[key] === undefined ? [] : f.strings(caps[key], `process.capabilities.${key}`));

  const rlimits: Rlimit[] = (process.rlimits === undefined ? [] : f.array(process.rlimits, 'process.rlimits')).map((value, i) => {
    const r = f.object(value, `process.rlimits[${i}]`);
    const type = f.string(r.type, `process.rlimits[${i}].type`);
    if (!(type in RLIMITS)) f.fail(`process.rlimits[${i}].type`, `${JSON.stringify(type)} is not a Linux rlimit`);
    const soft = f.integer(r.soft, `process.rlimits[${i}].soft`);
    const hard = f.integer(r.hard, `process.rlimits[${i}].hard`);
    return { type, soft: soft >= UNLIMITED ? -1 : soft, hard: hard >= UNLIMITED ? -1 : hard };
  });

  if (config.root === undefined) f.fail('root', 'is missing: which directory is the root filesystem?');
  const root = f.object(config.root, 'root');
  f.only(root, 'root', ['path', 'readonly']);
  const rootPath = path.resolve(bundle, f.string(root.path, 'root.path'));
  if (!existsSync(rootPath) || !statSync(rootPath).isDirectory()) {
    throw new ContainerError('BAD_CONFIG', `bundle ${bundle}: root.path ${JSON.stringify(root.path)}: no such directory (${rootPath})`);
  }
  const readonly = root.readonly === undefined ? false : f.boolean(root.readonly, 'root.readonly');

  const mounts: MountSpec[] = (config.mounts === undefined ? defaultMounts() : f.array(config.mounts, 'mounts').map((value, i) => {
    const where = `mounts[${i}]`;
    const m = f.object(value, where);
    f.only(m, where, ['destination', 'type', 'source', 'options']);
    const destination = f.string(m.destination, `${where}.destination`);
    if (!destination.startsWith('/')) f.fail(`${where}.destination`, `${JSON.stringify(destination)} must be an absolute path`);
    const options = m.options === undefined ? [] : f.strings(m.options, `${where}.options`);
    const isBind = options.includes('bind') || options.includes('rbind');
    const type = m.type === undefined || m.type === 'none' ? (isBind ? 'bind' : '') : f.string(m.type, `${where}.type`);
    if (!type) f.fail(`${where}.type`, 'is missing (and the options do not say bind)');
    let source = m.source === undefined ? type : f.string(m.source, `${where}.source`);
    if (type === 'bind' || isBind) {
      source = path.resolve(bundle, source);
      if (!existsSync(source)) f.fail(`${where}.source`, `${JSON.stringify(m.source)}: no such file or directory`);
    }
    return { destination, type: isBind ? 'bind' : type, source, options };
  }));

  const linux = config.linux === undefined ? {} : f.object(config.linux, 'linux');
  f.only(linux, 'linux', ['namespaces', 'resources', 'maskedPaths', 'readonlyPaths', 'devices', 'cgroupsPath', 'rootfsPropagation']);

  const namespaces: NamespaceKind[] = [];
  for (const [i, value] of (linux.namespaces === undefined ? [] : f.array(linux.namespaces, 'linux.namespaces')).entries()) {
    const ns = f.object(value, `linux.namespaces[${i}]`);
    const type = f.string(ns.type, `linux.namespaces[${i}].type`);
    if (ns.path !== undefined) f.unsupported(`linux.namespaces[${i}].path`, '(joining an existing namespace) is not supported by tsvmm');
    const kind = NAMESPACES[type];
    if (!kind) f.unsupported(`linux.namespaces[${i}]`, `(a ${type} namespace) is not supported by tsvmm`);
    if (!namespaces.includes(kind)) namespaces.push(kind);
  }
  for (const needed of ['mount', 'pid'] as const) {
    if (!namespaces.includes(needed)) f.unsupported('linux.namespaces', `has no ${needed} namespace; tsvmm runs every container in its own mount and pid namespaces`);
  }
  const hostname = config.hostname === undefined ? undefined : f.string(config.hostname, 'hostname');
  const domainname = config.domainname === undefined ? undefined : f.string(config.domainname, 'domainname');
  if ((hostname || domainname) && !namespaces.includes('uts')) f.fail('hostname', 'needs a uts namespace (linux.namespaces)');

  const { resources, deviceRules } = readResources(f, linux.resources);
  const devices: DeviceSpec[] = (linux.devices === undefined ? [] : f.array(linux.devices, 'linux.devices')).map((value, i) => {
    const where = `linux.devices[${i}]`;
    const d = f.object(value, where);
    f.only(d, where, ['path', 'type', 'major', 'minor', 'fileMode', 'uid', 'gid']);
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
  const propagation = linux.rootfsPropagation === undefined ? 'rslave' : f.string(linux.rootfsPropagation, 'linux.rootfsPropagation');
  if (!['private', 'rprivate', 'slave', 'rslave'].includes(propagation)) f.unsupported('linux.rootfsPropagation', `${JSON.stringify(propagation)} is not supported (private or slave only)`);

  return {
    process: {
      args, env, cwd, user: { uid, gid, additionalGids }, rlimits, umask,
      capabilities: { bounding: capSet('bounding'), effective: capSet('effective'), permitted: capSet('permitted'), inheritable: capSet('inheritable'), ambient: capSet('ambient') },
      noNewPrivileges: process.noNewPrivileges === undefined ? false : f.boolean(process.noNewPrivileges, 'process.noNewPrivileges'),
    },
    root: { path: rootPath, layers: [], readonly },
    hostname, domainname, mounts, namespaces, resources, devices, deviceRules,
    maskedPaths: linux.maskedPaths === undefined ? [] : f.strings(linux.maskedPaths, 'linux.maskedPaths'),
    readonlyPaths: linux.readonlyPaths === undefined ? [] : f.strings(linux.readonlyPaths, 'linux.readonlyPaths'),
    rootPropagation: propagation,
    cgroupsPath: linux.cgroupsPath === undefined ? undefined : f.string(linux.cgroupsPath, 'linux.cgroupsPath'),
  };
}

function readResources(f: Fields, value: Json): { resources: ResourceLimits; deviceRules: DeviceRule[] } {
  const resources: ResourceLimits = {};
  const deviceRules: DeviceRule[] = [];
  if (value === undefined) return { resources, deviceRules };
  const r = f.object(value, 'linux.resources');
  f.only(r, 'linux.resources', ['memory', 'cpu', 'pids', 'devices']);

  if (r.memory !== undefined) {
    const memory = f.object(r.memory, 'linux.resources.memory');
    f.only(memory, 'linux.resources.memory', ['limit', 'swap']);
    if (memory.limit !== undefined) {
      const limit = f.integer(memory.limit, 'linux.resources.memory.limit');
      if (limit > 0 && limit < UNLIMITED) resources.memory = limit;
    }
    // The only swap setting we honour is the one we apply anyway: memory+swap no more than the limit.
    if (memory.swap !== undefined) {
      const swap = f.integer(memory.swap, 'linux.resources.memory.swap');
      if (swap !== -1 && swap !== memory.limit) f.unsupported('linux.resources.memory.swap', '(other than equal to the limit) is not supported by tsvmm');
    }
  }
  if (r.cpu !== undefined) {
    const cpu = f.object(r.cpu, 'linux.resources.cpu');
    f.only(cpu, 'linux.resources.cpu', ['quota', 'period']);
    const quota = cpu.quota === undefined ? -1 : f.integer(cpu.quota, 'linux.resources.cpu.quota');
    const period = cpu.period === undefined ? DEFAULT_CPU_PERIOD : f.integer(cpu.period, 'linux.resources.cpu.period');
    if (period < 1000 || period > 1_000_000) f.fail('linux.resources.cpu.period', `${period} must be between 1000 and 1000000 µs`);
    if (quota > 0) {
      if (quota < 1000) f.fail('linux.resources.cpu.quota', `${quota} must be at least 1000 µs`);
      resources.cpu = { quota, period };
    }
  }
  if (r.pids !== undefined) {
    const pids = f.object(r.pids, 'linux.resources.pids');
    f.only(pids, 'linux.resources.pids', ['limit']);
    const limit = f.integer(pids.limit, 'linux.resources.pids.limit');
    if (limit > 0) resources.pids = limit;
  }
  for (const [i, value] of (r.devices === undefined ? [] : f.array(r.devices, 'linux.resources.devices')).entries()) {
    const where = `linux.resources.devices[${i}]`;
    const d = f.object(value, where);
    f.only(d, where, ['allow', 'type', 'major', 'minor', 'access']);
    const type = d.type === undefined ? 'a' : f.string(d.type, `${where}.type`);
    if (type !== 'a' && type !== 'c' && type !== 'b') f.fail(`${where}.type`, `${JSON.stringify(type)} is not a, c or b`);
    const access = d.access === undefined ? 'rwm' : f.string(d.access, `${where}.access`);
    if (!/^[rwm]{1,3}$/.test(access)) f.fail(`${where}.access`, `${JSON.stringify(access)} is not made of r, w and m`);
    deviceRules.push({
      allow: f.boolean(d.allow, `${where}.allow`), type, access,
      major: d.major === undefined || d.major === -1 ? null : f.integer(d.major, `${where}.major`),
      minor: d.minor === undefined || d.minor === -1 ? null : f.integer(d.minor, `${where}.minor`),
    });
  }
  return { resources, deviceRules };
}
