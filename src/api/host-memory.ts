// Host memory an instance holds, read the same way wherever it is shown (the dashboard, `ps`,
// `tsvmm compare`):
//  - a process (a VM is its whole VMM process): /proc/PID/smaps_rollup. RSS counts every page the
//    process maps, also those it shares with other processes (Node's binary and libraries, the page
//    cache of files it read); PSS divides each shared page among the processes that map it, so the
//    PSS of every process on the host adds up to the memory really used; "private" counts only the
//    pages no other process maps (what stopping it gives back).
//  - a container: its memory cgroup's charge (the pages its processes brought in, page cache and
//    kernel memory charged to it), which is what its limit applies to.

import { readFileSync } from 'node:fs';

export interface ProcessMemory {
  rss: number;
  pss: number;
  private: number;
}

/** /proc/PID/smaps_rollup (Linux 4.14+), in bytes. */
export function processMemory(pid: number | 'self'): ProcessMemory {
  const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  const kib = (key: string): number => {
    const m = new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text);
    if (!m) throw new Error(`/proc/${pid}/smaps_rollup has no ${key}`);
    return Number(m[1]) * 1024;
  };
  return { rss: kib('Rss'), pss: kib('Pss'), private: kib('Private_Clean') + kib('Private_Dirty') };
}

/** Bytes a container's memory cgroup charges now and at its peak (v1 memory controller, or v2). */
export function cgroupMemory(paths: Readonly<Record<string, string>>): { current: number; peak: number } {
  const read = (file: string) => Number(readFileSync(file, 'utf8').trim());
  if (paths.memory) return { current: read(`${paths.memory}/memory.usage_in_bytes`), peak: read(`${paths.memory}/memory.max_usage_in_bytes`) };
  if (paths.unified) {
    const current = read(`${paths.unified}/memory.current`);
    let peak = current;
    try { peak = read(`${paths.unified}/memory.peak`); } catch { /* kernels before 5.19 */ }
    return { current, peak };
  }
  throw new Error('the container has no memory cgroup');
}
