// I/O throughput: the same sequential pass over the same file, written then read. Natively and in
// a container, the workload program pwrite()s / pread()s it in requests of R bytes, one at a time;
// in the VM, virtio.elf (mode=blk op=stream) streams it through tsvmm's virtio-blk with that file
// as its disk, 16 requests in flight. All go through the host's page cache (no O_DIRECT, no fsync
// while timed; the file is fdatasync()ed before each run). The workload program times its pass
// itself (CLOCK_MONOTONIC); the VM is timed by the host between the lines the guest prints around
// its pass. MB/s is 10^6 bytes a second.

import { closeSync, fdatasyncSync, ftruncateSync, openSync, statSync, writeSync } from 'node:fs';
import path from 'node:path';
import { selfTimedMs } from './clock.js';
import type { CompareEnv } from './env.js';
import { withRatios, type Measurement } from './model.js';
import { rounds, type Options } from './rounds.js';
import { runContainer, runNative, runVm } from './run.js';

const FILE = 'io.img';

/** A file of `bytes` bytes with every block written (not a hole), so that reads find data. */
function ensureFile(file: string, bytes: number): void {
  let size = -1;
  try { size = statSync(file).size; } catch { /* none yet */ }
  if (size === bytes) return;
  const fd = openSync(file, 'w');
  try {
    const chunk = Buffer.alloc(1 << 20, 0xa5);
    for (let off = 0; off < bytes; off += chunk.length) writeSync(fd, chunk, 0, Math.min(chunk.length, bytes - off), off);
    ftruncateSync(fd, bytes);
  } finally {
    closeSync(fd);
  }
}

function sync(file: string): void {
  const fd = openSync(file, 'r+');
  try { fdatasyncSync(fd); } finally { closeSync(fd); }
}

export async function measureIo(env: CompareEnv, o: Options): Promise<Measurement[]> {
  const T = 120_000;
  const file = path.join(env.dataDir, FILE);
  ensureFile(file, o.ioBytes);
  const inContainer = path.posix.join(path.posix.dirname(env.workInContainer), FILE);
  const mbps = (ms: number) => o.ioBytes / 1e6 / (ms / 1000);
  const out: Measurement[] = [];
  for (const dir of ['write', 'read'] as const) {
    const args = (f: string) => ['stream', f, dir, String(o.ioBytes), String(o.ioRequest)];
    const host = ['work: stream start', 'work: stream done'];
    const guest = ['blk: stream start', 'blk: stream done'];
    const figures = await rounds(env, `I/O ${dir}`, 'MB/s', o.runs, [
      {
        subject: 'native', method: `compare-work stream: ${dir === 'write' ? 'pwrite' : 'pread'} of ${o.ioRequest} B, one at a time, timed by itself`,
        run: async () => { sync(file); return mbps(selfTimedMs((await runNative(env, args(file), host, T)).clock, host[1]!, 'native')); },
      },
      {
        subject: 'container', method: `the same in a container, on the same file (bind-mounted at ${path.posix.dirname(env.workInContainer)})`, missing: env.containerMissing,
        run: async () => { sync(file); return mbps(selfTimedMs((await runContainer(env, args(inContainer), host, T)).clock, host[1]!, 'container')); },
      },
      {
        subject: 'vm', method: `virtio.elf mode=blk op=stream dir=${dir} req=${o.ioRequest} depth=16, the file as its virtio-blk disk, timed between the guest's lines`, missing: env.vmMissing,
        run: async () => {
          sync(file);
          const r = await runVm({
            kernel: env.virtioElf, memory: '64M', disks: [{ path: file }],
            cmdline: `mode=blk op=stream dir=${dir} size=${o.ioBytes} req=${o.ioRequest} depth=16`,
          }, guest, T);
          return mbps(r.clock.between(guest[0]!, guest[1]!, 'VM'));
        },
      },
    ]);
    out.push(withRatios({
      id: `io-${dir}`, title: `Sequential ${dir}`, unit: 'MB/s', higherIsBetter: true, figures, notes: [],
      description: `${o.ioBytes / 2 ** 20} MiB ${dir === 'write' ? 'written' : 'read'} sequentially in ${o.ioRequest / 1024} KiB requests, through the host page cache (higher is better).`,
    }));
  }
  return out;
}
