// OCI mount options ("nosuid", "ro", "mode=755", "rbind", "rslave", ...) as mount(2) takes
// them: flags, flags to clear, propagation changes, and the filesystem's own data string. The
// table follows mount(8) and runc's specconv; what it does not know is filesystem data.

import { ContainerError } from './errors.js';

// <sys/mount.h>
export const MS_RDONLY = 0x1;
export const MS_NOSUID = 0x2;
export const MS_NODEV = 0x4;
export const MS_NOEXEC = 0x8;
export const MS_SYNCHRONOUS = 0x10;
export const MS_REMOUNT = 0x20;
export const MS_MANDLOCK = 0x40;
export const MS_DIRSYNC = 0x80;
export const MS_NOSYMFOLLOW = 0x100;
export const MS_NOATIME = 0x400;
export const MS_NODIRATIME = 0x800;
export const MS_BIND = 0x1000;
export const MS_REC = 0x4000;
export const MS_SILENT = 0x8000;
export const MS_UNBINDABLE = 0x20000;
export const MS_PRIVATE = 0x40000;
export const MS_SLAVE = 0x80000;
export const MS_SHARED = 0x100000;
export const MS_RELATIME = 0x200000;
export const MS_I_VERSION = 0x800000;
export const MS_STRICTATIME = 0x1000000;
export const MS_LAZYTIME = 0x2000000;

/** Option → [flag, whether the option clears it]. */
const FLAGS: Record<string, [number, boolean]> = {
  async: [MS_SYNCHRONOUS, true], atime: [MS_NOATIME, true], bind: [MS_BIND, false], defaults: [0, false],
  dev: [MS_NODEV, true], diratime: [MS_NODIRATIME, true], dirsync: [MS_DIRSYNC, false], exec: [MS_NOEXEC, true],
  iversion: [MS_I_VERSION, false], lazytime: [MS_LAZYTIME, false], loud: [MS_SILENT, true], mand: [MS_MANDLOCK, false],
  noatime: [MS_NOATIME, false], nodev: [MS_NODEV, false], nodiratime: [MS_NODIRATIME, false], noexec: [MS_NOEXEC, false],
  noiversion: [MS_I_VERSION, true], nolazytime: [MS_LAZYTIME, true], nomand: [MS_MANDLOCK, true],
  norelatime: [MS_RELATIME, true], nostrictatime: [MS_STRICTATIME, true], nosuid: [MS_NOSUID, false],
  nosymfollow: [MS_NOSYMFOLLOW, false], rbind: [MS_BIND | MS_REC, false], relatime: [MS_RELATIME, false],
  remount: [MS_REMOUNT, false], ro: [MS_RDONLY, false], rw: [MS_RDONLY, true], silent: [MS_SILENT, false],
  strictatime: [MS_STRICTATIME, false], suid: [MS_NOSUID, true], sync: [MS_SYNCHRONOUS, false],
  symfollow: [MS_NOSYMFOLLOW, true],
};

export const PROPAGATION: Record<string, number> = {
  rprivate: MS_PRIVATE | MS_REC, private: MS_PRIVATE, rslave: MS_SLAVE | MS_REC, slave: MS_SLAVE,
  rshared: MS_SHARED | MS_REC, shared: MS_SHARED, runbindable: MS_UNBINDABLE | MS_REC, unbindable: MS_UNBINDABLE,
};

/** Options whose meaning we know but do not implement: refused rather than ignored. */
const UNSUPPORTED = /^(r(ro|rw|nosuid|suid|nodev|dev|noexec|exec|nodiratime|diratime|relatime|norelatime|noatime|atime|strictatime|nostrictatime|nosymfollow|symfollow)|idmap|ridmap|tmpcopyup)$/;

export interface ParsedMountOptions {
  flags: number;
  /** Flags the options explicitly turn off (they matter when re-mounting a bind). */
  cleared: number;
  propagation: number[];
  data: string;
}

export function parseMountOptions(options: readonly string[], where: string): ParsedMountOptions {
  let flags = 0;
  let cleared = 0;
  const propagation: number[] = [];
  const data: string[] = [];
  for (const option of options) {
    const flag = FLAGS[option];
    if (flag) {
      const [bit, clears] = flag;
      if (clears) {
        flags &= ~bit;
        cleared |= bit;
      } else {
        flags |= bit;
        cleared &= ~bit;
      }
    } else if (option in PROPAGATION) {
      propagation.push(PROPAGATION[option]!);
    } else if (UNSUPPORTED.test(option)) {
      throw new ContainerError('UNSUPPORTED', `${where}: mount option "${option}" is not supported`);
    } else {
      data.push(option);
    }
  }
  return { flags, cleared, propagation, data: data.join(',') };
}
