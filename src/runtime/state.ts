// A container of tsvmm-runc between two of its commands: <root>/<id>/state (what create learnt,
// as a runtime_state frame of src/container/plan-layout.ts, which the C fast path of
// bin/tsvmm-runc reads too), and <root>/<id>/exec.fifo while it waits for `start`. Its status is never stored, but
// read from the host each time, as runc does: no init process (or another one under its pid, or
// a zombie) means stopped; the fifo still there means created; a frozen cgroup means paused.

import { closeSync, existsSync, fstatSync, mkdirSync, openSync, readdirSync, readFileSync, rmSync, statSync, type Stats } from 'node:fs';
import path from 'node:path';
import type { CgroupRequest } from '../container/cgroups.js';
import type { ContainerSpec } from '../container/spec.js';
import { readHelperFrame, RuntimeStateLayout, helperFrame } from '../container/plan-layout.js';
import { writeWhole } from '../meta/write-whole.js';
import { processStat } from '../meta/pid-alive.js';
import { notExist, RuntimeError } from './errors.js';
import type { Status } from './lifecycle.js';

export const OCI_VERSION = '1.0.2-dev';
export const DEFAULT_ROOT = '/run/tsvmm-runc';

/** What tsvmm-runc keeps of a container. */
export interface ContainerRecord {
  id: string;
  /** The init's host pid. */
  pid: number;
  /** Field 22 of /proc/PID/stat when it was made: tells our init from a later process with its pid. */
  startTime: string;
  bundle: string;
  rootfs: string;
  /** ISO 8601. */
  created: string;
  owner: string;
  annotations: Record<string, string>;
  cgroup: CgroupRequest;
  /** The cgroup directories made (the C fast path of bin/tsvmm-runc removes them on delete). */
  cgroupDirs: string[];
  spec: ContainerSpec;
}

/** The state of the OCI runtime spec ("state" operation), which hooks also get on stdin. */
export interface OciState {
  ociVersion: string;
  id: string;
  status: Status;
  pid: number;
  bundle: string;
  rootfs?: string;
  created?: string;
  owner?: string;
  annotations?: Record<string, string>;
}

/** runc's rule for ids: letters, digits, _ + - . and not "." or "..". */
export function checkId(id: string | undefined): string {
  if (!id) throw new RuntimeError('container id cannot be empty');
  if (!/^[\w+.-]+$/.test(id) || id === '.' || id === '..' || id.length > 1024) throw new RuntimeError(`invalid container id format: ${id}`);
  return id;
}

export class StateStore {
  constructor(readonly root: string) {}

  dir(id: string): string {
    return path.join(this.root, id);
  }

  fifo(id: string): string {
    return path.join(this.dir(id), 'exec.fifo');
  }

  /** Makes <root>/<id>; fails as runc does if it exists (mkdir is the lock between two creates). */
  claim(id: string): void {
    mkdirSync(this.root, { recursive: true, mode: 0o711 });
    try {
      mkdirSync(this.dir(id), { mode: 0o711 });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new RuntimeError(`container with given ID already exists: ${id}`);
      throw new RuntimeError(`cannot create the state directory ${this.dir(id)}: ${(error as NodeJS.ErrnoException).code}`);
    }
  }

  #file(id: string): string {
    return path.join(this.dir(id), 'state');
  }

  save(record: ContainerRecord): void {
    // 0600, as runc's state.json: the spec in it may hold secrets (its environment).
    const due = (kind: 'startContainer' | 'poststart' | 'poststop') => (record.spec.hooks?.[kind].length ?? 0) > 0;
    writeWhole(this.#file(record.id), helperFrame(RuntimeStateLayout, {
      pid: record.pid, startTime: record.startTime, cgroupDirs: record.cgroupDirs,
      hooks: { startContainer: due('startContainer'), poststart: due('poststart'), poststop: due('poststop') },
      oci: {
        created: ociStateText(record, 'created'), running: ociStateText(record, 'running'),
        paused: ociStateText(record, 'paused'), stopped: ociStateText(record, 'stopped'),
      },
      record: JSON.stringify(record),
    }), { mode: 0o600 });
  }

  load(id: string): ContainerRecord {
    checkId(id);
    let frame: Buffer;
    let fd: number;
    try {
      fd = openSync(this.#file(id), 'r');
    } catch {
      throw notExist(id);
    }
    try {
      // The state names a pid to signal and directories to remove: it counts only if nobody but
      // us (or root) could have written it or swapped it in (the C fast path checks the same).
      if (!ownedByUs(fstatSync(fd)) || !ownedByUs(statSync(this.dir(id)))) {
        throw new RuntimeError(`the state of container ${id} (${this.#file(id)}) may have been written by another user; refusing it`);
      }
      frame = readFileSync(fd);
    } finally {
      closeSync(fd);
    }
    try {
      return JSON.parse(readHelperFrame(RuntimeStateLayout, frame).record) as ContainerRecord;
    } catch {
      throw new RuntimeError(`the state of container ${id} (${this.#file(id)}) is damaged, or of another tsvmm-runc`);
    }
  }

  ids(): string[] {
    try {
      return readdirSync(this.root).filter((id) => existsSync(this.#file(id))).sort();
    } catch {
      return [];
    }
  }

  remove(id: string): void {
    rmSync(this.dir(id), { recursive: true, force: true });
  }
}

/** A file or directory only this user (or root) can change. */
export function ownedByUs(st: Stats): boolean {
  return (st.uid === process.geteuid!() || st.uid === 0) && (st.mode & 0o022) === 0;
}

/** Whether the container's init is still alive (and still ours). */
export function initAlive(record: Pick<ContainerRecord, 'pid' | 'startTime'>): boolean {
  const stat = processStat(record.pid);
  return stat !== undefined && stat.startTime === record.startTime && stat.state !== 'Z' && stat.state !== 'X';
}

export function ociState(record: ContainerRecord, status: Status): OciState {
  return {
    ociVersion: OCI_VERSION,
    id: record.id,
    pid: status === 'stopped' ? 0 : record.pid,
    status,
    bundle: record.bundle,
    rootfs: record.rootfs,
    created: record.created,
    owner: record.owner,
    ...(Object.keys(record.annotations).length ? { annotations: record.annotations } : {}),
  };
}

/** What `state` prints: Node's answer, and the fast path's (which the state file carries for each status). */
export function ociStateText(record: ContainerRecord, status: Status): string {
  return JSON.stringify(ociState(record, status), null, 2);
}
