// Where running VMs announce themselves: one directory, readable by its owner only, holding a
// control socket and a small record per VM. `tsvmm ps` lists it; other commands find a VM by name.

import { mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { TsvmmError } from '../errors.js';
import { pidAlive, processStartedAt } from '../meta/pid-alive.js';
import { writeWhole } from '../meta/write-whole.js';
import { fnv1a64Hex } from '../meta/fnv.js';
import { sleepSync } from '../meta/sleep-sync.js';
import { removeFile } from '../meta/remove-file.js';

/** How far a process's start (known to about a second) may seem to follow its record's startedAt. */
const PID_START_SLACK_MS = 2000;

/** What `ps` shows without asking the VM: fixed when it starts. */
export interface InstanceRecord {
  name: string;
  kind: 'vm' | 'container';
  pid: number;
  /** ms since the epoch. */
  startedAt: number;
  cpus: number;
  memory: number;
  /** Kernel path (VMs) or command (containers). */
  image: string;
  /**
   * What to clean up if the process dies without doing it (SIGKILL): a container's cgroup
   * directories and its own directory under the state directory (its writable layer).
   */
  leftovers?: { cgroups: string[]; dirs: string[] };
}

/** Where instances keep state that outlives a process (containers' writable layers): TSVMM_STATE_DIR, else /var/lib/tsvmm (root) or ~/.local/share/tsvmm. */
export function stateRoot(): string {
  if (process.env.TSVMM_STATE_DIR) return process.env.TSVMM_STATE_DIR;
  return process.getuid?.() === 0 ? '/var/lib/tsvmm' : path.join(homedir(), '.local/share/tsvmm');
}

export function runtimeDir(): string {
  if (process.env.TSVMM_RUNTIME_DIR) return process.env.TSVMM_RUNTIME_DIR;
  if (process.getuid?.() === 0) return '/run/tsvmm';
  const xdg = process.env.XDG_RUNTIME_DIR;
  return xdg ? path.join(xdg, 'tsvmm') : path.join('/tmp', `tsvmm-${process.getuid?.() ?? 'user'}`);
}

/** A tsvmm container's id in the runtime's state and its cgroup's name (tsvmm/ID): NAME-KEY, KEY naming the runtime directory. */
export function containerId(name: string, dir = runtimeDir()): string {
  return `${name}-${runtimeDirKey(dir)}`;
}

/** The runtime's state root of tsvmm's own containers (`tsvmm-runc --root` of them): <runtime dir>/containers. */
export function containerStateRoot(dir = runtimeDir()): string {
  return path.join(dir, 'containers');
}

const REASONS: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  ENOTDIR: 'a part of its path is not a directory',
  EROFS: 'on a read-only file system',
  ENOSPC: 'no space left on the device',
  ELOOP: 'too many symbolic links',
  ENAMETOOLONG: 'the path is too long',
};

/**
 * Makes sure the runtime directory exists and is ours. One it creates is owner-only (0700); one
 * that exists is used as it is, never changed (TSVMM_RUNTIME_DIR=/tmp must not make /tmp
 * private): the sockets and records in it are owner-only themselves. Missing parents are made
 * one at a time, so a path where mkdir can never succeed (under /proc) fails at once.
 * Every failure is one line naming the directory.
 */
export function ensureRuntimeDir(dir = runtimeDir()): string {
  const fromEnv = process.env.TSVMM_RUNTIME_DIR === dir ? ' (set by TSVMM_RUNTIME_DIR)' : '';
  const fail = (why: string) => new TsvmmError('RUNTIME_DIR', `runtime directory ${dir}${fromEnv}: ${why}`);
  const reason = (error: unknown) => {
    const code = (error as NodeJS.ErrnoException).code ?? '';
    return REASONS[code] ?? (code || (error as Error).message);
  };
  const absolute = path.resolve(dir);
  const missing: string[] = [];
  for (let p = absolute; ; p = path.dirname(p)) {
    try {
      const st = statSync(p);
      if (!st.isDirectory()) throw fail(p === absolute ? 'exists and is not a directory' : `${p} is not a directory`);
      break;
    } catch (error) {
      if (error instanceof TsvmmError) throw error;
      // ENOTDIR: a file further up, which the walk reaches and names.
      const code = (error as NodeJS.ErrnoException).code;
      if (code !== 'ENOENT' && code !== 'ENOTDIR') throw fail(reason(error));
      missing.unshift(p);
      if (p === path.dirname(p)) break;
    }
  }
  for (const p of missing) {
    try {
      mkdirSync(p, { mode: 0o700 });
    } catch (error) {
      // Another tsvmm made it a moment ago: fine, it is checked below like any existing one.
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') continue;
      const code = (error as NodeJS.ErrnoException).code;
      throw fail(code === 'ENOENT' ? `cannot be created (mkdir ${p}: no such file or directory, as under /proc)` : `cannot be created (${reason(error)})`);
    }
  }
  const st = statSync(absolute);
  if (!st.isDirectory()) throw fail('exists and is not a directory');
  if (process.getuid && st.uid !== process.getuid()) {
    throw fail('belongs to another user; set TSVMM_RUNTIME_DIR to a directory of yours');
  }
  return dir;
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/;

export function checkName(name: string): string {
  if (!NAME.test(name)) {
    throw new TsvmmError('BAD_CONFIG', `name "${name}": use 1-63 letters, digits, '.', '-' or '_', starting with a letter or digit`);
  }
  return name;
}

export function socketPath(name: string, dir = runtimeDir()): string {
  return path.join(dir, `${checkName(name)}.sock`);
}

function recordPath(name: string, dir: string): string {
  return path.join(dir, `${checkName(name)}.json`);
}

export function writeRecord(record: InstanceRecord, dir = runtimeDir()): void {
  const file = recordPath(record.name, dir);
  writeWhole(file, JSON.stringify(record), { mode: 0o600 });
}

/**
 * How an instance ended, left beside the records for a while (`NAME.outcome`) so that a watcher
 * that saw it running (the dashboard) can say what became of it. Not a record: `listInstances`
 * does not see it; a new instance of the same name removes it; old ones are pruned.
 */
export interface InstanceOutcome {
  name: string;
  kind: InstanceRecord['kind'];
  /** ms since the epoch. */
  endedAt: number;
  /** One line: "guest powered off (ACPI S5)", "exited with code 0", "stopped". */
  outcome: string;
}

/** Outcomes older than this are removed by a later writeOutcome. */
export const OUTCOME_KEEP_MS = 10 * 60_000;
/**
 * How often writeOutcome looks for old outcomes: a stat of every one on every instance's end cost
 * `container run` 3 ms with 70 of them, and a busy host ends hundreds in ten minutes. The time of
 * the last look is the mtime of this file (a dot name, which no instance name can be).
 */
export const OUTCOME_SWEEP_EVERY_MS = 60_000;
export const OUTCOMES_SWEPT = '.outcomes-swept';

function outcomePath(name: string, dir: string): string {
  return path.join(dir, `${checkName(name)}.outcome`);
}

export function writeOutcome(outcome: InstanceOutcome, dir = runtimeDir()): void {
  try {
    sweepOutcomes(dir);
    const file = outcomePath(outcome.name, dir);
    writeWhole(file, JSON.stringify(outcome), { mode: 0o600 });
  } catch {
    // Only a courtesy to watchers: an instance ends the same without it.
  }
}

function sweepOutcomes(dir: string): void {
  const swept = path.join(dir, OUTCOMES_SWEPT);
  try {
    if (Date.now() - statSync(swept).mtimeMs < OUTCOME_SWEEP_EVERY_MS) return;
  } catch { /* never swept */ }
  writeFileSync(swept, '', { mode: 0o600 });
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.outcome'))) {
    const full = path.join(dir, file);
    // Gone since the readdir (another instance's sweep, a new instance of that name): not ours to
    // remove, and no reason to lose the outcome being written.
    const st = statSync(full, { throwIfNoEntry: false });
    if (st && Date.now() - st.mtimeMs > OUTCOME_KEEP_MS) removeFile(full);
  }
}

/** The outcome an instance named `name` left, if any. */
export function readOutcome(name: string, dir = runtimeDir()): InstanceOutcome | undefined {
  try {
    const outcome = JSON.parse(readFileSync(outcomePath(name, dir), 'utf8')) as InstanceOutcome;
    return typeof outcome.outcome === 'string' && typeof outcome.endedAt === 'number' ? outcome : undefined;
  } catch {
    return undefined;
  }
}

/**
 * A short key of the runtime directory. Names are unique per runtime directory, so whatever a
 * name labels host-wide (cgroups, the name's lock) carries this key too: two users, or two test
 * runs, with a container of the same name do not collide.
 */
export function runtimeDirKey(dir = runtimeDir()): string {
  return fnv1a64Hex(path.resolve(dir)).slice(0, 8);
}

/**
 * Removes what a dead instance left: cgroup directories (rmdir: only an empty one goes) and
 * its directories under `roots` (nothing outside them, whatever the record says): its writable
 * layer under stateRoot, its container state under the runtime directory's containers/. Returns
 * whether everything is gone; a cgroup whose last process is still dying is left for next time.
 */
function reap(record: InstanceRecord, roots: string[]): boolean {
  let done = true;
  for (const dir of record.leftovers?.cgroups ?? []) {
    if (!dir.startsWith('/sys/fs/cgroup/')) continue;
    // Its processes were killed with their supervisor, but may take a moment to leave.
    for (let attempt = 0; ; attempt++) {
      try {
        rmdirSync(dir);
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'EBUSY' && attempt < 100) {
          sleepSync(10);
          continue;
        }
        if (code === 'EBUSY') done = false;
      }
      break;
    }
    // The shared tsvmm/ parent goes with its last container.
    try {
      if (path.basename(path.dirname(dir)) === 'tsvmm') rmdirSync(path.dirname(dir));
    } catch { /* another container is in it */ }
  }
  for (const dir of record.leftovers?.dirs ?? []) {
    const within = (root: string) => {
      const inside = path.relative(root, path.resolve(dir));
      return inside !== '' && !inside.startsWith('..') && !path.isAbsolute(inside);
    };
    if (roots.some(within)) rmSync(dir, { recursive: true, force: true });
  }
  return done;
}

export function removeInstance(name: string, dir = runtimeDir()): void {
  removeFile(recordPath(name, dir));
  removeFile(socketPath(name, dir));
}

/** The instances whose process still runs; records left by a crashed VMM are cleaned up. */
export function listInstances(dir = runtimeDir()): InstanceRecord[] {
  let files: string[];
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.json'));
  } catch {
    return [];
  }
  const out: InstanceRecord[] = [];
  for (const file of files) {
    try {
      const record = JSON.parse(readFileSync(path.join(dir, file), 'utf8')) as InstanceRecord;
      // A process that started after the record was written is not its owner but a later process
      // given the same pid (seen: a VMM's record, its pid reused by a kernel thread an hour on).
      const started = pidAlive(record.pid) ? processStartedAt(record.pid) : undefined;
      if (started !== undefined && started <= record.startedAt + PID_START_SLACK_MS) out.push(record);
      else if (reap(record, [stateRoot(), containerStateRoot(dir)])) removeInstance(record.name, dir);
    } catch {
      // A record being written or a stray file: not an instance.
    }
  }
  return out.sort((a, b) => a.startedAt - b.startedAt);
}

export function findInstance(name: string, dir = runtimeDir()): InstanceRecord {
  checkName(name);
  const record = listInstances(dir).find((r) => r.name === name);
  if (!record) throw new TsvmmError('NO_SUCH_INSTANCE', `no VM or container named "${name}" is running (see \`tsvmm ps\`)`);
  return record;
}
