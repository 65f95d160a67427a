// What a user asks for (VmConfig) and its checked, defaulted form (ResolvedVmConfig). Every
// check happens here, before /dev/kvm is touched, and fails with one line naming the option.

import { existsSync } from 'node:fs';
import { totalmem } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TsvmmError } from '../errors.js';
import { MiB } from '../arch/x86/layout.js';
import type { DiskConfig, NetConfig, VirtioConfig } from './virtio-setup.js';

export interface VmConfig {
  /** Kernel image (ELF with a PVH note, or ELF64). Default: the demo guest. */
  kernel?: string;
  initrd?: string;
  cmdline?: string;
  /** Guest RAM: bytes as a number, or a size such as "256M", "1G", "512MiB". Default 256 MiB. */
  memory?: number | string;
  cpus?: number;
  name?: string;
  /** virtio-blk disks on raw image files. */
  disks?: readonly DiskConfig[];
  /** virtio-net on a tap device. */
  net?: NetConfig;
  /** A virtio-rng device fed from the host's CSPRNG. */
  rng?: boolean;
  /** Where typed input goes: the 16550 UART (default) or a virtio console. */
  console?: 'serial' | 'virtio';
  /**
   * Announce virtio devices on the kernel command line (`virtio_mmio.device=`) as well as in the
   * ACPI DSDT. Default: yes for ELF kernels, no for bzImage (a stock kernel finds them in ACPI).
   */
  virtioCmdline?: boolean;
}

export interface ResolvedVmConfig {
  kernel: string;
  initrd: string | undefined;
  cmdline: string;
  memory: number;
  cpus: number;
  name: string;
  virtio: VirtioConfig;
}

/** A VmConfig option that cannot be used; the message starts with the option's name. */
export class ConfigError extends TsvmmError {
  constructor(message: string, option?: string) {
    super('BAD_CONFIG', message, { option });
    this.name = 'ConfigError';
  }
}

export const DEFAULT_MEMORY = 256 * MiB;
export const MIN_MEMORY = 16 * MiB;
export const DEFAULT_CMDLINE = 'console=ttyS0 reboot=k panic=1';
/** xAPIC ids are 8 bits and 0xff is the broadcast id. */
export const MAX_CPUS = 254;

const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const DEFAULT_KERNEL = path.join(PACKAGE_ROOT, 'guests/build/hello.elf');
export const GUESTS_DIR = path.join(PACKAGE_ROOT, 'guests/build');

const UNITS: Record<string, number> = {
  '': MiB, b: 1, k: 1024, kb: 1024, kib: 1024, m: MiB, mb: MiB, mib: MiB,
  g: 1024 * MiB, gb: 1024 * MiB, gib: 1024 * MiB, t: 1024 ** 4, tb: 1024 ** 4, tib: 1024 ** 4,
};

/** Parses "256M", "1.5G", "512MiB" or a plain number of MiB (as QEMU's -m does) into bytes. */
export function parseSize(value: number | string, option = 'memory'): number {
  if (typeof value === 'number') {
    if (!Number.isSafeInteger(value) || value <= 0) throw new ConfigError(`${option} ${value}: not a positive whole number of bytes`, option);
    return value;
  }
  const match = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(value);
  const unit = match ? UNITS[match[2]!.toLowerCase()] : undefined;
  if (!match || unit === undefined) throw new ConfigError(`${option} ${JSON.stringify(value)}: not a size (try 256M or 1G)`, option);
  const bytes = Math.round(Number(match[1]) * unit);
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new ConfigError(`${option} ${value}: not a usable size`, option);
  return bytes;
}

export function resolveConfig(config: VmConfig, limits: { hostMemory?: number } = {}): ResolvedVmConfig {
  const memory = parseSize(config.memory ?? DEFAULT_MEMORY);
  if (memory < MIN_MEMORY) throw new ConfigError(`memory ${config.memory}: at least ${MIN_MEMORY / MiB} MiB is needed`, 'memory');
  if (memory % 4096 !== 0) throw new ConfigError(`memory ${config.memory}: must be a whole number of 4 KiB pages`, 'memory');
  const hostMemory = limits.hostMemory ?? totalmem();
  if (memory > hostMemory) {
    throw new ConfigError(`memory ${config.memory}: ${Math.round(memory / MiB)} MiB is more than this host's ${Math.round(hostMemory / MiB)} MiB`, 'memory');
  }
  const cpus = config.cpus ?? 1;
  if (!Number.isInteger(cpus) || cpus < 1) throw new ConfigError(`cpus ${config.cpus}: must be a whole number of at least 1`, 'cpus');
  if (cpus > MAX_CPUS) throw new ConfigError(`cpus ${cpus}: at most ${MAX_CPUS} vCPUs are supported`, 'cpus');
  if (config.console !== undefined && config.console !== 'serial' && config.console !== 'virtio') {
    throw new ConfigError(`console ${String(config.console)}: must be serial or virtio`, 'console');
  }
  const kernel = config.kernel ?? DEFAULT_KERNEL;
  if (config.kernel === undefined && !existsSync(kernel)) {
    throw new ConfigError(`the default guest is not built (${kernel}); run \`npm install\` or \`make -C guests\``);
  }
  return {
    kernel,
    initrd: config.initrd,
    cmdline: config.cmdline ?? DEFAULT_CMDLINE,
    memory,
    cpus,
    name: config.name ?? `vm-${process.pid}`,
    virtio: {
      // Absolute, so that a snapshot finds its disks again from any directory.
      disks: (config.disks ?? []).map((d) => ({ ...d, path: path.resolve(d.path) })),
      net: config.net,
      rng: config.rng ?? false,
      virtioConsole: config.console === 'virtio',
      cmdline: config.virtioCmdline,
    },
  };
}

/**
 * The VmConfig that resolves to `resolved` again: how a VM boots afresh with the same kernel,
 * memory and devices, for a guest reset under `--reboot`, restored VMs included (their snapshot
 * holds their resolved configuration, with disks where they are now).
 */
export function bootConfig(resolved: ResolvedVmConfig): VmConfig {
  const { virtio } = resolved;
  return {
    kernel: resolved.kernel, initrd: resolved.initrd, cmdline: resolved.cmdline, memory: resolved.memory, cpus: resolved.cpus,
    name: resolved.name, disks: virtio.disks, net: virtio.net, rng: virtio.rng,
    console: virtio.virtioConsole ? 'virtio' : 'serial', virtioCmdline: virtio.cmdline,
  };
}
