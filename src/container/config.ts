// What a user asks of a container (ContainerConfig: the library's options, which the CLI flags
// map onto) and its checked form: a ContainerSpec plus how to run it. Every check happens here,
// before anything is created, and fails with one line naming the option.

import { readFileSync } from 'node:fs';
import { cpus as hostCpus } from 'node:os';
import path from 'node:path';
import { checkName } from '../api/runtime-dir.js';
import { randomName } from '../meta/random-name.js';
import { parseSize } from '../vmm/config.js';
import { isTsvmmError } from '../errors.js';
import { ContainerError } from './errors.js';
import { loadBundle } from './oci.js';
import { checkDirectory } from './rootfs.js';
import type { TerminalSize } from '../api/protocol.js';
import { DEFAULT_CPU_PERIOD, MIN_CONTAINER_MEMORY, defaultSpec, type ContainerSpec, type ResourceLimits } from './spec.js';

export interface ContainerConfig {
  /** An OCI runtime bundle: a directory with config.json and the root filesystem it names. */
  bundle?: string;
  /** Or a directory to use as the root filesystem. */
  rootfs?: string;
  /** Read-only directories stacked over the root filesystem with overlayfs, lowest first. */
  layers?: readonly string[];
  /** What to run. Required with `rootfs`; with a bundle, replaces its process.args. */
  command?: readonly string[];
  /** Added to the environment (PATH and TERM are there already). */
  env?: Readonly<Record<string, string>>;
  /** Working directory inside the container. Default "/" (or the bundle's). */
  cwd?: string;
  /** Default: the container's name (or the bundle's hostname). */
  hostname?: string;
  /** Memory limit: bytes, or a size such as "64M", "1G". Past it, the kernel's OOM killer steps in. */
  memory?: number | string;
  /** CPU bandwidth in CPUs, e.g. 0.5 or 2 (a CFS quota per 100 ms period). */
  cpus?: number;
  /** Most processes (and threads) at once: a fork bomb stops here. */
  pids?: number;
  /** "veth": an interface on the tsvmm0 bridge; "none" (default): only loopback. */
  net?: 'none' | 'veth';
  /** For `tsvmm ps` and friends. Default ctr-XXXXXX. */
  name?: string;
  /** Mount the root filesystem read-only. */
  readOnly?: boolean;
  /** With layers: keep the container's writable layer after it ends. */
  keepUpper?: boolean;
  /**
   * "pipe" (default): output is collected (`output`, 'output' events) and input comes from
   * `write()`. "inherit": the container uses this process's stdin, stdout and stderr.
   */
  stdio?: 'pipe' | 'inherit';
  /**
   * Give the container a pty of its own (true: the bundle's process.consoleSize, else 24 rows,
   * 80 columns): its controlling terminal and stdio, in a session of its own, with echo, line
   * editing and Ctrl-C as SIGINT done inside. Unset: as a bundle's process.terminal says (as
   * runc takes it), none for a root directory; false: none, whatever the bundle says.
   * What it writes arrives as 'output' (stdout), write() types into it, resize() changes its
   * size. Needs stdio "pipe". Without one, the container's stdio are pipes or the files this
   * process has; never a terminal of ours.
   */
  terminal?: boolean | TerminalSize;
  /** How long stop() waits after SIGTERM before SIGKILL. Default 10 s. */
  stopTimeoutMs?: number;
}

export interface ResolvedContainerConfig {
  name: string;
  spec: ContainerSpec;
  net: 'none' | 'veth';
  keepUpper: boolean;
  stdio: 'pipe' | 'inherit';
  terminal: TerminalSize | undefined;
  stopTimeoutMs: number;
  /** What `tsvmm ps` shows as the image: the command line. */
  image: string;
}

/** Changes `tsvmm update` and Container.update() make. */
export interface ContainerLimits {
  memory?: number | string;
  cpus?: number;
  pids?: number;
}

export const MIN_MEMORY = MIN_CONTAINER_MEMORY;

function fail(message: string): never {
  throw new ContainerError('BAD_CONFIG', message);
}

/** Checks limits as given by a user and turns them into cgroup settings. */
export function resolveLimits(limits: ContainerLimits): ResourceLimits {
  const out: ResourceLimits = {};
  if (limits.memory !== undefined) {
    let memory: number;
    try {
      memory = parseSize(limits.memory, '--mem');
    } catch (error) {
      if (isTsvmmError(error)) fail(error.message);
      throw error;
    }
    if (memory < MIN_MEMORY) fail(`--mem ${limits.memory}: at least 4 MiB is needed to start anything`);
    out.memory = memory;
  }
  if (limits.cpus !== undefined) {
    const cpus = Number(limits.cpus);
    const available = hostCpus().length;
    if (!Number.isFinite(cpus) || cpus <= 0) fail(`--cpus ${limits.cpus}: must be a positive number, such as 0.5 or 2`);
    if (cpus > available) fail(`--cpus ${limits.cpus}: this host has ${available} CPU${available > 1 ? 's' : ''}`);
    const quota = Math.round(cpus * DEFAULT_CPU_PERIOD);
    if (quota < 1000) fail(`--cpus ${limits.cpus}: at least 0.01 CPUs`);
    out.cpu = { quota, period: DEFAULT_CPU_PERIOD };
  }
  if (limits.pids !== undefined) {
    if (!Number.isInteger(limits.pids) || limits.pids < 1) fail(`--pids ${limits.pids}: must be a whole number of at least 1`);
    out.pids = limits.pids;
  }
  return out;
}

/** A terminal size as the kernel's struct winsize holds it: 1 to 65535 rows and columns. */
export function checkTerminalSize(size: TerminalSize): TerminalSize {
  const ok = (n: unknown) => Number.isInteger(n) && (n as number) >= 1 && (n as number) <= 65535;
  if (!ok(size.rows) || !ok(size.cols)) fail(`terminal size ${String(size.cols)}x${String(size.rows)}: columns and rows must be whole numbers from 1 to 65535`);
  return { rows: size.rows, cols: size.cols };
}

function resolveTerminal(terminal: ContainerConfig['terminal'], spec: ContainerSpec): TerminalSize | undefined {
  if (terminal === false || (terminal === undefined && !spec.process.terminal)) return undefined;
  if (terminal === undefined || terminal === true) {
    const size = spec.process.consoleSize;
    // runc leaves a pty of no size where none is given; a shell would then wrap at column 0.
    return size && size.height > 0 && size.width > 0 ? checkTerminalSize({ rows: size.height, cols: size.width }) : { rows: 24, cols: 80 };
  }
  return checkTerminalSize(terminal);
}

/**
 * Whether a bundle's config.json asks for a terminal (process.terminal); false if it cannot be
 * read, which Container.create then reports. Only that field is read: Container.create checks
 * the whole file (loadBundle), and doing it twice was a few milliseconds of `container run`.
 */
export function bundleAsksForTerminal(bundle: string): boolean {
  try {
    const config = JSON.parse(readFileSync(path.join(bundle, 'config.json'), 'utf8')) as { process?: { terminal?: unknown } } | null;
    return config?.process?.terminal === true;
  } catch {
    return false;
  }
}

/**
 * What config.json may ask that only tsvmm-runc carries out (an engine's runtime runs the hooks);
 * `tsvmm container run` refuses it rather than ignore it.
 */
function refuseRuntimeOnly(spec: ContainerSpec): void {
  const hooks = Object.entries(spec.hooks ?? {}).filter(([, list]) => list.length > 0).map(([kind]) => kind);
  if (hooks.length) throw new ContainerError('UNSUPPORTED', `config.json: hooks (${hooks.join(', ')}) are run by tsvmm-runc, the OCI runtime, not by tsvmm container run`);
  if (spec.namespaces.includes('user')) throw new ContainerError('UNSUPPORTED', 'config.json: linux.namespaces: a user namespace is not supported by tsvmm container run');
}

const HOSTNAME = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

export function resolveContainerConfig(config: ContainerConfig): ResolvedContainerConfig {
  const name = checkName(config.name ?? randomName('ctr'));
  if (config.bundle !== undefined && config.rootfs !== undefined) fail('give either a bundle or --rootfs, not both');
  if (config.bundle === undefined && config.rootfs === undefined) fail('say which root filesystem to use: --rootfs DIR, or --bundle DIR for an OCI bundle');
  const command = config.command ? [...config.command] : [];

  let spec: ContainerSpec;
  if (config.bundle !== undefined) {
    spec = loadBundle(config.bundle);
    refuseRuntimeOnly(spec);
    if (command.length) spec.process.args = command;
  } else {
    const rootfs = checkDirectory(config.rootfs!, '--rootfs');
    if (command.length === 0) fail('say what to run: tsvmm container run --rootfs DIR -- COMMAND [ARGS...]');
    spec = defaultSpec(rootfs, command);
    spec.hostname = name;
  }
  spec.root.layers = (config.layers ?? []).map((l) => checkDirectory(l, '--layer'));
  if (config.readOnly) spec.root.readonly = true;

  if (config.hostname !== undefined) {
    if (!HOSTNAME.test(config.hostname) || config.hostname.length > 64) fail(`--hostname ${JSON.stringify(config.hostname)}: not a valid host name`);
    if (!spec.namespaces.includes('uts')) fail('--hostname needs a uts namespace, and the bundle has none');
    spec.hostname = config.hostname;
  }
  for (const [key, value] of Object.entries(config.env ?? {})) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) fail(`--env ${key}: not a variable name`);
    spec.process.env = spec.process.env.filter((e) => !e.startsWith(`${key}=`)).concat(`${key}=${value}`);
  }
  if (config.cwd !== undefined) {
    if (!config.cwd.startsWith('/')) fail(`--cwd ${config.cwd}: must be an absolute path`);
    spec.process.cwd = config.cwd;
  }
  Object.assign(spec.resources, resolveLimits({ memory: config.memory, cpus: config.cpus, pids: config.pids }));

  const net = config.net ?? 'none';
  if (net !== 'none' && net !== 'veth') fail(`--net ${String(net)}: must be veth or none`);
  if (net === 'veth' && !spec.namespaces.includes('network')) fail('--net veth needs a network namespace, and the bundle has none');
  if (net === 'veth' && process.getuid?.() !== 0) fail('--net veth needs root (it creates a bridge and a veth pair)');

  const stdio = config.stdio ?? 'pipe';
  if (stdio !== 'pipe' && stdio !== 'inherit') fail(`stdio ${String(stdio)}: must be pipe or inherit`);
  const terminal = resolveTerminal(config.terminal, spec);
  if (terminal && stdio !== 'pipe') {
    fail(config.terminal === undefined
      ? 'config.json asks for a terminal (process.terminal), which needs stdio "pipe" (its pty is relayed through output events and write()); or set terminal: false'
      : 'a container with a terminal needs stdio "pipe": its pty is relayed through output events and write()');
  }
  // What was decided, for whoever reads the spec later (tsvmm-runc state, exec).
  spec.process.terminal = terminal !== undefined;
  const stopTimeoutMs = config.stopTimeoutMs ?? 10_000;
  if (!Number.isFinite(stopTimeoutMs) || stopTimeoutMs < 0) fail(`stop timeout ${stopTimeoutMs}: must be 0 or more milliseconds`);

  return {
    name, spec, net, stdio, terminal, stopTimeoutMs,
    keepUpper: config.keepUpper === true,
    image: spec.process.args.join(' '),
  };
}
