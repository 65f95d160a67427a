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
