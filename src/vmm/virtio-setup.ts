// Builds the VM's virtio devices on the main thread: opens disk images and the tap (failing
// with one clear line), places each device in the MMIO window and on an interrupt line, wires
// KVM's ioeventfd (QueueNotify writes) and irqfd (interrupts) to eventfds, and says how a kernel
// without ACPI finds the devices: `virtio_mmio.device=4K@0xc0000000:5` on the command line
// (arch/x86/acpi.ts describes them in the DSDT for the others).

import { closeSync, constants as fsConstants, fstatSync, openSync } from 'node:fs';
import path from 'node:path';
import { addon, errnoName } from '../kvm/addon.js';
import { EventFd } from '../kvm/event-fd.js';
import type { VmFd } from '../kvm/kvm.js';
import { TsvmmError } from '../errors.js';
import { REG, VIRTIO_MMIO_SIZE, VirtioMmioState, type VirtioDeviceInfo } from '../devices/virtio/mmio-transport.js';
import { blockInfo, SECTOR_SIZE } from '../devices/virtio/block.js';
import { netInfo } from '../devices/virtio/net.js';
import { rngInfo } from '../devices/virtio/rng.js';
import { consoleInfo } from '../devices/virtio/console.js';
import { ByteRing } from './byte-ring.js';
import { lockDisk } from './disk-lock.js';
import type { VirtioBackendConfig, VirtioSlot } from './virtio-slots.js';

/** Virtio devices start at the bottom of the 32-bit PCI hole, 4 KiB apart. */
export const VIRTIO_MMIO_BASE = 0xc0000000;
/** ISA lines nobody else uses (0 PIT, 1 keyboard, 2 cascade, 3/4 COM, 8 RTC, 9 SCI, 13 FPU), then IOAPIC-only lines. */
const VIRTIO_IRQS = [5, 6, 7, 10, 11, 12, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23];

export interface DiskConfig {
  path: string;
  readOnly?: boolean;
}

export interface NetConfig {
  /** Name of a tap device (created if missing and permitted). */
  tap: string;
  /** "52:54:00:12:34:56"; random (locally administered) by default. */
  mac?: string;
}

export interface VirtioConfig {
  disks: readonly DiskConfig[];
  net: NetConfig | undefined;
  rng: boolean;
  /** A virtio console, which then takes the typed input instead of the UART. */
  virtioConsole: boolean;
  /**
   * Also announce the devices as `virtio_mmio.device=` on the kernel command line (they are always
   * in the DSDT). Undefined: only for ELF kernels, which are tsvmm's guests or Firecracker-style.
   */
  cmdline?: boolean;
}

export interface VirtioSetup {
  slots: VirtioSlot[];
  /** Signalled by the vCPU thread when a transport changes state. */
  controlFd: number;
  /** The devices in command-line form, for a kernel that reads no ACPI. */
  cmdline: string;
  console: { input: ByteRing; inputReady: number; output: ByteRing } | undefined;
  release(): void;
}

const KVM_IOEVENTFD_FLAG_DATAMATCH = 1;
const TUNSETIFF = 0x400454ca;
const IFF_TAP = 0x0002;
const IFF_NO_PI = 0x1000;
const IFNAMSIZ = 16;

export class VirtioSetupError extends TsvmmError {
  constructor(code: string, message: string) {
    super(code, message);
    this.name = 'VirtioSetupError';
  }
}

/** Opens the devices' files and makes their eventfds; nothing here needs KVM (see attachVirtio). */
export function openVirtio(config: VirtioConfig): VirtioSetup {
  const fds: number[] = [];
  const release = () => {
    for (const fd of fds.splice(0)) {
      try { closeSync(fd); } catch { /* already closed */ }
    }
  };
  const eventfd = () => {
    const { fd } = EventFd.create();
    fds.push(fd);
    return fd;
  };
  try {
    const devices: { name: string; info: VirtioDeviceInfo; backend: VirtioBackendConfig }[] = [];
    config.disks.forEach((disk, i) => devices.push(openDisk(disk, i, fds)));
    if (config.net) devices.push(openTap(config.net, fds));
    if (config.rng) devices.push({ name: 'virtio-rng', info: rngInfo(), backend: { kind: 'rng' } });
    let console: VirtioSetup['console'];
    if (config.virtioConsole) {
      console = { input: ByteRing.create(4096), inputReady: eventfd(), output: ByteRing.create(64 * 1024) };
      devices.push({ name: 'virtio-console', info: consoleInfo(), backend: { kind: 'console', input: console.input.buffer, inputReady: console.inputReady, output: console.output.buffer } });
    }
    if (devices.length > VIRTIO_IRQS.length) {
      throw new VirtioSetupError('BAD_CONFIG', `at most ${VIRTIO_IRQS.length} virtio devices fit, ${devices.length} were asked for`);
    }
    const slots = devices.map((d, i): VirtioSlot => ({
      ...d,
      base: VIRTIO_MMIO_BASE + i * VIRTIO_MMIO_SIZE,
      irq: VIRTIO_IRQS[i]!,
      queueFds: d.info.queueSizes.map(() => eventfd()),
      irqfd: eventfd(),
      state: VirtioMmioState.create(d.info).buffer,
    }));
    const cmdline = slots.map((s) => `virtio_mmio.device=4K@0x${s.base.toString(16)}:${s.irq}`).join(' ');
    return { slots, controlFd: slots.length ? eventfd() : -1, cmdline, console, release };
  } catch (error) {
    release();
    throw error;
  }
}

/** Tells KVM to turn QueueNotify writes and interrupt signals into eventfd traffic. */
export function attachVirtio(vm: VmFd, setup: VirtioSetup): void {
  for (const slot of setup.slots) {
    slot.queueFds.forEach((fd, queue) => vm.ioeventfd(fd, BigInt(slot.base + REG.QueueNotify), 4, KVM_IOEVENTFD_FLAG_DATAMATCH, BigInt(queue)));
    vm.irqfd(slot.irqfd, slot.irq);
  }
}

function openDisk(disk: DiskConfig, index: number, fds: number[]) {
  const readOnly = disk.readOnly ?? false;
  let fd: number;
  try {
    fd = openSync(disk.path, readOnly ? 'r' : 'r+');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such file'
      : code === 'EISDIR' ? 'is a directory'
        : code === 'EACCES' || code === 'EROFS' ? `cannot open for writing${readOnly ? '' : ' (add ,ro to use it read-only)'}`
          : (error as Error).message;
    throw new VirtioSetupError('DISK_UNUSABLE', `disk ${disk.path}: ${reason}`);
  }
  fds.push(fd);
  lockDisk(fd, `disk ${disk.path}`, readOnly);
  const size = diskSize(fd, `disk ${disk.path}`);
  if (size === 0) throw new VirtioSetupError('DISK_UNUSABLE', `disk ${disk.path}: smaller than one ${SECTOR_SIZE}-byte sector`);
  const id = path.basename(disk.path).slice(0, 20);
  return {
    name: `virtio-blk${index} (${disk.path})`,
    info: blockInfo({ size, readOnly, id }),
    backend: { kind: 'block' as const, fd, size, readOnly, id },
  };
}

/** BLKGETSIZE64 = _IOR(0x12, 114, size_t): a block device's size in bytes (fstat says 0). */
const BLKGETSIZE64 = 0x80081272;

/** What the guest sees of a disk image or block device open as `fd`: its size in whole sectors. */
export function diskSize(fd: number, what: string): number {
  const stat = fstatSync(fd);
  let bytes = stat.size;
  if (stat.isBlockDevice()) {
    const out = new BigUint64Array(1);
    const rc = addon().ioctl(fd, BLKGETSIZE64, out);
    if (rc < 0) throw new VirtioSetupError('DISK_UNUSABLE', `${what}: cannot read the block device's size (BLKGETSIZE64: ${errnoName(-rc)})`);
    bytes = Number(out[0]);
  } else if (!stat.isFile()) {
    throw new VirtioSetupError('DISK_UNUSABLE', `${what}: not a file or a block device`);
  }
  return Math.floor(bytes / SECTOR_SIZE) * SECTOR_SIZE;
}

function openTap(net: NetConfig, fds: number[]) {
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(net.tap)) {
    throw new VirtioSetupError('BAD_CONFIG', `--net tap=${net.tap}: a tap name is 1-15 letters, digits, '.', '-' or '_'`);
  }
  const mac = parseMac(net.mac);
  let fd: number;
  try {
    fd = openSync('/dev/net/tun', fsConstants.O_RDWR | fsConstants.O_NONBLOCK);
  } catch (error) {
    throw new VirtioSetupError('NET_UNUSABLE', `--net tap=${net.tap}: cannot open /dev/net/tun (${(error as NodeJS.ErrnoException).code})`);
  }
  fds.push(fd);
  const ifreq = new Uint8Array(40);
  ifreq.set(Buffer.from(net.tap, 'latin1').subarray(0, IFNAMSIZ - 1));
  new DataView(ifreq.buffer).setUint16(IFNAMSIZ, IFF_TAP | IFF_NO_PI, true);
  const rc = addon().ioctl(fd, TUNSETIFF, ifreq);
  if (rc < 0) {
    const name = errnoName(-rc);
    const reason = name === 'EPERM' || name === 'EACCES'
      ? 'permission denied (creating or attaching a tap needs CAP_NET_ADMIN, or a tap made for your user with `ip tuntap add`)'
      : name === 'EBUSY' ? 'the tap is in use by another program' : name;
    throw new VirtioSetupError('NET_UNUSABLE', `--net tap=${net.tap}: ${reason}`);
  }
  return { name: `virtio-net (${net.tap})`, info: netInfo(mac), backend: { kind: 'net' as const, tap: fd } };
}

export function parseMac(text: string | undefined): Uint8Array {
  if (text === undefined) {
    // The global Web Crypto: node:crypto loads only for a VM that needs a MAC made up.
    const mac = crypto.getRandomValues(new Uint8Array(6));
    mac[0] = 0x52; // locally administered, unicast (QEMU's 52:54:00 prefix)
    mac[1] = 0x54;
    mac[2] = 0x00;
    return mac;
  }
  const parts = text.split(':');
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{2}$/.test(p))) {
    throw new VirtioSetupError('BAD_CONFIG', `mac=${text}: not a MAC address like 52:54:00:12:34:56`);
  }
  const mac = Uint8Array.from(parts.map((p) => parseInt(p, 16)));
  if (mac[0]! & 1) throw new VirtioSetupError('BAD_CONFIG', `mac=${text}: a multicast address cannot be a NIC's`);
  return mac;
}
