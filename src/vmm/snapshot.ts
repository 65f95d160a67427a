// What a VM snapshot holds, in the sections of the snapshot format (src/snapshot/format.ts):
// the VM's configuration in the manifest; each vCPU's and the VM's KVM state as raw kernel
// structures; the devices' state as JSON; guest RAM as mappable memory sections. And the way
// back: a VM built from a snapshot in a fresh process, its memory mapped from the file.
//
// Diff snapshots store only the pages written since the VM's previous snapshot (or since it was
// restored), over that snapshot as parent. Two kinds of writer change guest memory, and a page
// either one wrote must be in the diff or the restored chain is silently wrong:
// - the vCPUs, and KVM on their behalf (kvmclock, emulated instructions): KVM's dirty log, which
//   the memory slots carry only from a VM's first snapshot on (KVM_MEM_LOG_DIRTY_PAGES costs a
//   write fault per page after each read of the log), read and cleared by KVM_GET_DIRTY_LOG;
// - the VMM's device thread (disk reads, received packets and console input, random bytes, used
//   rings), which KVM never sees: GuestMemory marks the pages it writes in a bitmap shared by all
//   threads (slice(), write*(), and VirtQueue for the rings it writes through its own views).
// A diff stores the union of the two.

import { closeSync, fstatSync, openSync } from 'node:fs';
import path from 'node:path';
import type { Kvm, VcpuFd, VmFd } from '../kvm/kvm.js';
import { KVM_MEM } from '../kvm/ioctls.js';
import { restoreVcpu, saveVcpu, vcpuMsrIndices, type VcpuSnapshot } from '../kvm/vcpu-state.js';
import { restoreVm, saveVm, type VmSnapshot } from '../kvm/vm-state.js';
import { dirtyBitmapBytes, GuestMemory, type MemoryExtent } from '../memory/guest-memory.js';
// The snapshot file format's reader and writer (node:fs/promises, node:zlib, node:crypto) load
// when a snapshot is written or opened, not with every VM.
import type { Snapshot, WriteResult } from '../snapshot/index.js';
const snapshotFiles = () => import('../snapshot/index.js');
import { readVirtioRunnerState, type VirtioRunnerState } from '../devices/virtio/device.js';
import { array, int, object, optional } from '../devices/persist.js';
import { TsvmmError } from '../errors.js';
import { readLegacyDeviceState, type LegacyDeviceState } from './legacy-devices.js';
import type { ResolvedVmConfig } from './config.js';
import type { VirtioSlot } from './virtio-slots.js';
import { diskSize } from './virtio-setup.js';

/** The device state a restored VM starts from. */
export interface RestoredDevices {
  legacy: LegacyDeviceState;
  virtio: { registers: Uint8Array; io: VirtioRunnerState | undefined }[];
}

/** What the manifest's `vm` field holds. */
interface VmManifest {
  config: ResolvedVmConfig;
  xsaveSize: number;
  /** One per disk, in the order of config.virtio.disks (snapshots of tsvmm before 0.2 lack it). */
  disks?: DiskIdentity[];
}

/**
 * What a snapshot records of each disk, to find it again and to refuse another file in its
 * place: the guest's view of a disk is in the snapshot (its caches, its queue positions), the
 * disk's bytes are not. The path is absolute; device and inode say "the same file", which a copy
 * is not; the size, which even a copy must keep.
 */
export interface DiskIdentity {
  path: string;
  size: number;
  dev: number;
  ino: number;
}

/** The identity of each disk of a running VM, from the files it has open. */
export function diskIdentities(config: ResolvedVmConfig, slots: readonly VirtioSlot[]): DiskIdentity[] {
  const blocks = slots.flatMap((s) => (s.backend.kind === 'block' ? [s.backend] : []));
  return config.virtio.disks.map((disk, i) => {
    const { fd, size } = blocks[i]!;
    const st = fstatSync(fd);
    return { path: path.resolve(disk.path), size, dev: st.dev, ino: st.ino };
  });
}

/** Where a snapshot's disks are now: `diskPaths` maps a recorded path to where that disk lives. */
export interface RestoreOptions {
  diskPaths?: Readonly<Record<string, string>>;
  /** Check the CRC of all guest memory in the file (and its parents) first: reads all of it. */
  verify?: boolean;
}

/**
 * The files a restored VM's memory is mapped from. Pages the guest has not written yet still
 * come from them, so a file truncated or rewritten in place under a running VM takes guest
 * memory with it (the guest then faults, or worse). What can be prevented is: tsvmm replaces a
 * snapshot by renaming a new file over it (the mapped inode never changes), writes it read-only
 * (an in-place writer of its owner, cp or a shell's `>`, gets EACCES; root's are not stopped),
 * and restores only from files no one else may write (checkWritableOnlyByOwner). An in-place
 * write that still happens is detected: we keep each file open and watch its size and
 * modification time, so the VM ends with an error that says so.
 */
interface MappedFile {
  path: string;
  fd: number;
  size: number;
  mtimeMs: number;
}

export class MappedFiles {
  readonly #files: MappedFile[];

  private constructor(files: MappedFile[]) {
    this.#files = files;
  }

  /** Opens the files `mapped` (open as they were mapped) again by path, to watch them. */
  static open(mapped: readonly { path: string; fd: number }[]): MappedFiles {
    const files: MappedFile[] = [];
    try {
      for (const m of mapped) {
        const fd = openSync(m.path, 'r');
        const st = fstatSync(fd);
        files.push({ path: m.path, fd, size: st.size, mtimeMs: st.mtimeMs });
        // Watching another file than the one mapped would miss what happens to the mapped one.
        const was = fstatSync(m.fd);
        if (st.ino !== was.ino || st.dev !== was.dev) throw new TsvmmError('SNAPSHOT_CHANGED', `${m.path}: replaced by another file while it was being restored; restore again`);
      }
    } catch (error) {
      for (const f of files) closeSync(f.fd);
      throw error;
    }
    return new MappedFiles(files);
  }

  /** What happened to a file since the VM was restored from it, or undefined if nothing did. */
  problem(): string | undefined {
    for (const f of this.#files) {
      let st;
      try {
        st = fstatSync(f.fd);
      } catch {
        continue;
      }
      if (st.size < f.size) {
        return `the snapshot file ${f.path} this VM was restored from was truncated (${f.size} bytes, now ${st.size}) while the VM ran from it: guest memory it held is gone. Keep a snapshot file whole while VMs restored from it run (or restore from a copy)`;
      }
      if (st.mtimeMs !== f.mtimeMs || st.size !== f.size) {
        return `the snapshot file ${f.path} this VM was restored from was written to while the VM ran from it: guest memory may have changed under the guest. Keep a snapshot file unchanged while VMs restored from it run (tsvmm snapshot replaces a file atomically, which is safe)`;
      }
    }
    return undefined;
  }

  close(): void {
    for (const f of this.#files.splice(0)) closeSync(f.fd);
  }
}

/**
 * The snapshot's disks, each at its recorded path or where `diskPaths` says it moved, checked to be
 * the very file (same device and inode) or, when moved, a file of the same size. Throws
 * DISK_MISMATCH naming the disk and what to do.
 */
function relocateDisks(file: string, config: ResolvedVmConfig, recorded: readonly DiskIdentity[] | undefined, options: RestoreOptions): ResolvedVmConfig {
  const moves = new Map(Object.entries(options.diskPaths ?? {}).map(([from, to]) => [path.resolve(from), path.resolve(to)]));
  const known = config.virtio.disks.map((d) => path.resolve(d.path));
  for (const from of moves.keys()) {
    if (!known.includes(from)) {
      throw new TsvmmError('BAD_CONFIG', `disk path ${from}: ${file} has no such disk (its disks: ${known.join(', ') || 'none'})`);
    }
  }
  const disks = config.virtio.disks.map((disk, i) => {
    const was = known[i]!;
    const now = moves.get(was);
    const where = now ?? was;
    const identity = recorded?.[i];
    const mismatch = (why: string, hint: string) => new TsvmmError('DISK_MISMATCH', `disk ${where}${now ? ` (for ${was})` : ''}: ${why}; ${hint}`);
    const moveHint = `if the disk moved, say where it is now (restore --disk-path ${was}=NEW)`;
    let st: { dev: number; ino: number; size: number };
    let fd: number | undefined;
    try {
      fd = openSync(where, 'r');
      st = { ...fstatSync(fd), size: diskSize(fd, `disk ${where}`) };
    } catch (error) {
      if (error instanceof TsvmmError) throw error;
      const code = (error as NodeJS.ErrnoException).code;
      throw mismatch(code === 'ENOENT' ? 'no such file' : `cannot be read (${code})`, now ? 'check the path given with --disk-path' : moveHint);
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
    if (identity) {
      if (st.size !== identity.size) {
        throw mismatch(`is ${st.size} bytes, the snapshot's disk was ${identity.size}`, `this is not the disk the snapshot was taken with${now ? '' : `; ${moveHint}`}`);
      }
      if (!now && (st.dev !== identity.dev || st.ino !== identity.ino)) {
        throw mismatch('is another file than the one the snapshot was taken with (it was replaced or copied)',
          `if it is a faithful copy, say so with restore --disk-path ${was}=${was}`);
      }
    }
    return { ...disk, path: where };
  });
  return { ...config, virtio: { ...config.virtio, disks } };
}

const VCPU_BLOBS = ['cpuid', 'regs', 'sregs', 'xsave', 'xcrs', 'debugregs', 'lapic', 'msrs', 'vcpuEvents'] as const;
const VM_BLOBS = ['picMaster', 'picSlave', 'ioapic', 'pit2', 'clock'] as const;

export interface SnapshotParts {
  config: ResolvedVmConfig;
  kvm: Kvm;
  vm: VmFd;
  vcpus: readonly VcpuFd[];
  memory: GuestMemory;
  devices: RestoredDevices;
  disks: DiskIdentity[];
}

export interface SnapshotOptions {
  onProgress?(done: number, total: number): void;
  /** Write only the pages written since this VM's previous snapshot, with that one as parent. */
  diff?: boolean;
  /** Abandons the snapshot between chunks of memory (SNAPSHOT_ABORTED); the target is left as it was. */
  signal?: AbortSignal;
}

/**
 * A VM's snapshots as they follow one another: the last one written (or the one the VM was
 * restored from), and which pages changed since. One per VM; call it while the VM is paused.
 */
export class SnapshotHistory {
  #last: { path: string; id: string } | undefined;
  /** Set once KVM logs dirty pages for this VM. */
  #logging = false;

  /** A VM restored from a snapshot may write diffs over it: log from the start. */
  restoredFrom(source: OpenedVmSnapshot['source'], vm: VmFd, memory: GuestMemory): void {
    this.#startOver(vm, memory);
    this.#last = source;
  }

  /** Throws unless a snapshot with these options can be written: a diff needs an earlier snapshot. */
  check(target: string, options: SnapshotOptions): void {
    if (options.diff) this.#parentFor(target);
  }

  #parentFor(target: string): { path: string; id: string } {
    if (!this.#last) {
      throw new TsvmmError('NO_PARENT_SNAPSHOT', `cannot write a diff snapshot to ${target}: this VM has no earlier snapshot for it to build on (take a full one first)`);
    }
    return this.#last;
  }

  async write(target: string, parts: SnapshotParts, options: SnapshotOptions = {}): Promise<WriteResult> {
    const { vm, memory } = parts;
    if (!options.diff) {
      const result = await writeVmSnapshot(target, parts, options);
      this.#startOver(vm, memory);
      this.#last = { path: path.resolve(target), id: result.id };
      return result;
    }
    const parent = this.#parentFor(target);
    await checkParent(parent.path, parent.id);
    // Read and clear both logs, the vCPUs' and the VMM's; if the diff fails, they go back.
    const kvmLog = memory.regions.map((r, slot) => {
      const bitmap = new Uint8Array(dirtyBitmapBytes(r.size));
      vm.getDirtyLog(slot, bitmap);
      return bitmap;
    });
    const dirty = memory.takeDirty().map((ours, i) => ours.map((byte, j) => byte | kvmLog[i]![j]!));
    try {
      const result = await writeVmSnapshot(target, parts, options, { parent: parent.path, dirty });
      this.#last = { path: path.resolve(target), id: result.id };
      return result;
    } catch (error) {
      memory.markDirtyPages(dirty);
      throw error;
    }
  }

  /** After a full snapshot: every page is saved; what is written from now on goes in the next diff. */
  #startOver(vm: VmFd, memory: GuestMemory): void {
    if (!this.#logging) {
      memory.registerWith(vm, KVM_MEM.KVM_MEM_LOG_DIRTY_PAGES);
      this.#logging = true;
    } else {
      const scratch = memory.regions.map((r) => new Uint8Array(dirtyBitmapBytes(r.size)));
      memory.regions.forEach((_, slot) => vm.getDirtyLog(slot, scratch[slot]!));
    }
    memory.takeDirty();
  }
}

/** A diff must sit on the very snapshot the VM took: a file written over since would make the chain wrong. */
async function checkParent(file: string, id: string): Promise<void> {
  const parent = await (await snapshotFiles()).openSnapshot(file);
  try {
    if (parent.file.id !== id) {
      throw new TsvmmError('BAD_SNAPSHOT', `${file}: replaced since this VM saved it there, so a diff cannot build on it (take a full snapshot)`);
    }
  } finally {
    await parent.close();
  }
}

/** Writes a snapshot of a paused VM (all vCPUs out of KVM_RUN, the I/O thread idle); a diff if `diff` says over what. */
export async function writeVmSnapshot(
  target: string, parts: SnapshotParts, options: SnapshotOptions = {}, diff?: { parent: string; dirty: Uint8Array[] },
): Promise<WriteResult> {
  const xsaveSize = parts.vm.xsaveSize();
  const states = new Map<string, Uint8Array>();
  const devices = new Map<string, unknown>();
  parts.vcpus.forEach((vcpu) => {
    const s = saveVcpu(vcpu, vcpuMsrIndices(parts.kvm, vcpu), { xsaveSize });
    for (const blob of VCPU_BLOBS) states.set(`vcpu${vcpu.id}/${blob}`, s[blob]);
    devices.set(`vcpu${vcpu.id}`, { id: s.id, mpState: s.mpState, skippedMsrs: s.skippedMsrs });
  });
  const vmState = saveVm(parts.vm);
  for (const blob of VM_BLOBS) states.set(`vm/${blob}`, vmState[blob]);
  devices.set('legacy', parts.devices.legacy);
  parts.devices.virtio.forEach((d, i) => {
    states.set(`virtio${i}/registers`, d.registers);
    devices.set(`virtio${i}`, d.io ?? null);
  });
  const manifest: VmManifest = { config: parts.config, xsaveSize, disks: parts.disks };
  return (await snapshotFiles()).writeSnapshot(target, {
    vm: manifest as never,
    vcpus: parts.vcpus.length,
    states,
    devices: devices as never,
    memory: parts.memory.regions.map((r, i) => ({ name: `ram${i}`, guestAddress: r.start, size: r.size, source: r.bytes.subarray(0, r.size), dirty: diff?.dirty[i] })),
    parent: diff?.parent,
  }, { onProgress: options.onProgress && ((p) => options.onProgress!(p.bytesDone, p.bytesTotal)), signal: options.signal });
}

/** A snapshot opened for restoring: its configuration, memory mapped in, and its state. */
export interface OpenedVmSnapshot {
  /** The file (its absolute path) and its id: what a diff of the restored VM names as its parent. */
  source: { path: string; id: string };
  /** The files guest memory is mapped from, watched while the VM runs; the VM closes it. */
  mapped: MappedFiles;
  config: ResolvedVmConfig;
  memory: GuestMemory;
  devices: RestoredDevices;
  /** Puts the saved KVM state into a freshly created VM and its vCPUs. */
  restoreKvm(vm: VmFd, vcpus: readonly VcpuFd[]): void;
}

export async function openVmSnapshot(file: string, options: RestoreOptions = {}): Promise<OpenedVmSnapshot> {
  const snapshot = await (await snapshotFiles()).openSnapshot(file, { verifyMemory: options.verify });
  try {
    snapshot.chain.forEach(checkWritableOnlyByOwner);
    const manifest = snapshot.manifest.vm as unknown as VmManifest;
    if (!manifest || typeof manifest !== 'object' || !manifest.config || typeof manifest.xsaveSize !== 'number') {
      throw new TsvmmError('BAD_SNAPSHOT', `${file}: not a snapshot of a tsvmm VM (its manifest has no VM configuration)`);
    }
    const config = relocateDisks(file, manifest.config, manifest.disks, options);
    const layout = snapshot.regions.map((r) => ({ start: r.guestAddress, size: r.size }));
    const extents: MemoryExtent[] = snapshot.regions.flatMap((r) => snapshot.memoryExtents(r.name).map((e) => ({
      fd: e.fd, fileOffset: e.fileOffset, guestAddress: r.guestAddress + e.guestOffset, length: e.length,
    })));
    const state = (name: string) => snapshot.state(name);
    const vcpuSnapshots = Array.from({ length: config.cpus }, (_, id): VcpuSnapshot => {
      const meta = readVcpuMeta(snapshot.device(`vcpu${id}`), `${file}: vcpu${id}`);
      const blobs = Object.fromEntries(VCPU_BLOBS.map((b) => [b, state(`vcpu${id}/${b}`)]));
      return { ...(blobs as Record<(typeof VCPU_BLOBS)[number], Uint8Array>), id: meta.id, mpState: meta.mpState, skippedMsrs: meta.skippedMsrs };
    });
    const vmSnapshot = Object.fromEntries(VM_BLOBS.map((b) => [b, state(`vm/${b}`)])) as unknown as VmSnapshot;
    const devices: RestoredDevices = {
      legacy: readLegacyDeviceState(snapshot.device('legacy'), `${file}: legacy`),
      virtio: virtioCount(snapshot).map((i) => ({
        registers: state(`virtio${i}/registers`),
        io: optional(readVirtioRunnerState)(snapshot.device(`virtio${i}`), `${file}: virtio${i}`),
      })),
    };
    // Last, so that a snapshot refused above leaves nothing mapped or open.
    const mapped = MappedFiles.open(snapshot.chain);
    let memory: GuestMemory;
    try {
      // The mappings keep the file's pages reachable after its descriptors are closed.
      memory = GuestMemory.mapFiles(layout, extents);
    } catch (error) {
      mapped.close();
      throw error;
    }
    return {
      source: { path: path.resolve(file), id: snapshot.file.id },
      mapped, config, memory, devices,
      restoreKvm(vm, vcpus) {
        if (vm.xsaveSize() !== manifest.xsaveSize) {
          throw new TsvmmError('BAD_SNAPSHOT', `${file}: taken on a CPU with ${manifest.xsaveSize}-byte XSAVE state, this one has ${vm.xsaveSize()}`);
        }
        vcpus.forEach((vcpu, i) => restoreVcpu(vcpu, vcpuSnapshots[i]!, { xsaveSize: manifest.xsaveSize }));
        // The interrupt controllers and PIT last, just before the vCPUs run (see vm-state.ts).
        restoreVm(vm, vmSnapshot);
      },
    };
  } finally {
    snapshot.close();
  }
}

/**
 * A restored VM reads the pages its guest has not written yet from the snapshot file, so whoever
 * may write the file may change the guest's memory under it: refuse a file that another user
 * (root aside) owns or that its group or everyone may write, as ssh refuses such a key.
 */
function checkWritableOnlyByOwner(file: { path: string; fd: number }): void {
  const st = fstatSync(file.fd);
  const uid = process.getuid?.();
  const why = 'could change the memory of a VM restored from it (its pages are read from the file as the guest first touches them)';
  if (uid !== undefined && st.uid !== uid && st.uid !== 0) {
    throw new TsvmmError('SNAPSHOT_UNSAFE', `${file.path}: belongs to uid ${st.uid}, who ${why}; restore from a copy of your own`);
  }
  if (st.mode & 0o022) {
    const who = st.mode & 0o002 ? 'everyone' : 'its group';
    throw new TsvmmError('SNAPSHOT_UNSAFE', `${file.path}: ${who} may write it (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}) and ${why}; \`chmod go-w\` it, or restore from a copy`);
  }
}

/** What a snapshot keeps of a vCPU besides its KVM structures. */
const readVcpuMeta = object({ id: int(0, 4095), mpState: int(0, 0xffff), skippedMsrs: array(int(0, 2 ** 32 - 1), 4096) });

function virtioCount(snapshot: Snapshot): number[] {
  return snapshot.deviceNames.filter((n) => /^virtio\d+$/.test(n)).map((n) => Number(n.slice(6))).sort((a, b) => a - b);
}
