// The container's root filesystem: a directory as it is, or read-only layers combined with
// overlayfs under a writable upper directory of the container's own, as Docker stacks image
// layers. The overlay is mounted by the helper inside the container's mount namespace, so the
// host never sees it and it goes away with the container; the upper directory is ours to
// remove, unless asked to keep it.

import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { stateRoot } from '../api/runtime-dir.js';
import { ContainerError } from './errors.js';
import type { MountStep } from './plan.js';

export interface PreparedRoot {
  /** The directory the helper binds and pivots into. */
  rootfs: string;
  /** The overlay mount, if there are layers. */
  prepare: MountStep[];
  /** The container's writable layer, if there are layers. */
  upper?: string;
  /** The directory holding it (and overlayfs's work directory), ours to remove. */
  dir?: string;
  /** Removes what we made for this container; keeps the upper layer if `keepUpper`. */
  release(): void;
}


export function checkDirectory(dir: string, what: string): string {
  const resolved = path.resolve(dir);
  let isDir = false;
  try {
    isDir = statSync(resolved).isDirectory();
  } catch { /* reported below */ }
  if (!isDir) throw new ContainerError('BAD_CONFIG', `${what} ${dir}: no such directory`);
  return resolved;
}

/** overlayfs takes its layers in one option string of at most a page. */
const OVERLAY_DATA_LIMIT = 4095;

export function prepareRoot(root: { path: string; layers: readonly string[] }, name: string, keepUpper: boolean): PreparedRoot {
  if (root.layers.length === 0) return { rootfs: root.path, prepare: [], release: () => {} };
  const lowers = [...root.layers].reverse().concat(root.path); // overlayfs wants the topmost first
  for (const dir of lowers) {
    if (/[:,\\]/.test(dir)) throw new ContainerError('BAD_CONFIG', `layer ${dir}: overlayfs cannot take a path with ':', ',' or '\\'`);
  }
  const base = path.join(stateRoot(), 'containers');
  mkdirSync(base, { recursive: true, mode: 0o700 });
  const dir = mkdtempSync(path.join(base, `${name}-`));
  const upper = path.join(dir, 'upper');
  const work = path.join(dir, 'work');
  const merged = path.join(dir, 'merged');
  for (const d of [upper, work, merged]) mkdirSync(d, { mode: 0o755 });
  const data = `lowerdir=${lowers.join(':')},upperdir=${upper},workdir=${work}`;
  if (data.length > OVERLAY_DATA_LIMIT) {
    rmSync(dir, { recursive: true, force: true });
    throw new ContainerError('BAD_CONFIG', `${root.layers.length} layers make an overlayfs option string of ${data.length} bytes; at most ${OVERLAY_DATA_LIMIT} fit (use shorter paths)`);
  }
  return {
    rootfs: merged,
    prepare: [{ source: 'overlay', target: merged, type: 'overlay', flags: 0, data, remountFlags: 0, isFile: false, propagation: [] }],
    upper,
    dir,
    release: () => {
      if (keepUpper) {
        // The work directory is overlayfs's scratch space; only the upper layer has content.
        rmSync(work, { recursive: true, force: true });
        rmSync(merged, { recursive: true, force: true });
      } else if (existsSync(dir)) {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  };
}
