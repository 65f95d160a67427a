// Whether a process id names a running process: for records that outlive their owner (leases,
// runtime records, temporary files, network namespaces), to tell a stale one from one in use.

import { readFileSync } from 'node:fs';

/** Field 22 (starttime) of /proc/PID/stat and its state letter; undefined if there is no such process. */
export function processStat(pid: number): { state: string; startTime: string } | undefined {
  if (!(pid > 0)) return undefined;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name is in parentheses and may hold anything; the fields follow the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return { state: fields[0]!, startTime: fields[19]! };
  } catch {
    return undefined;
  }
}

/** Whether `pid` runs: a process killed a moment ago stays a zombie until reaped, and is not. EPERM: it runs, as someone else. */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
  const stat = processStat(pid); // undefined: gone between the two looks
  return stat !== undefined && stat.state !== 'Z';
}

/**
 * When `pid` started, in ms since the epoch (to about a second: the boot time has whole seconds),
 * or undefined if it is gone. Tells a record's own process from a later one that got its pid.
 */
export function processStartedAt(pid: number): number | undefined {
  const stat = processStat(pid);
  if (!stat) return undefined;
  // starttime counts clock ticks after boot (USER_HZ, 100 on Linux); /proc/stat's btime is the boot.
  const btime = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'));
  const ticks = Number(stat.startTime);
  return btime && Number.isFinite(ticks) ? Number(btime[1]) * 1000 + ticks * 10 : undefined;
}
