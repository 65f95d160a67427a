// Whether a process id names a running process: for records that outlive their owner (leases,
// runtime records, temporary files, network namespaces), to tell a stale one from one in use.

import { readFileSync } from 'node:fs';

/** Whether `pid` runs: a process killed a moment ago stays a zombie until reaped, and is not. EPERM: it runs, as someone else. */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    // /proc/PID/stat: "pid (comm) S ...", where comm may itself hold spaces and parentheses.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false; // gone between the two looks
  }
}

/**
 * When `pid` started, in ms since the epoch (to about a second: the boot time has whole seconds),
 * or undefined if it is gone. Tells a record's own process from a later one that got its pid.
 */
export function processStartedAt(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 22, starttime, in clock ticks after boot (USER_HZ, 100 on Linux); fields count from 3 after ")".
    const ticks = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);
    const btime = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'));
    return btime && Number.isFinite(ticks) ? Number(btime[1]) * 1000 + ticks * 10 : undefined;
  } catch {
    return undefined;
  }
}
