// Run by test/unit/snapshot-atomic.test.ts through vite-node, to be killed with SIGKILL half-way:
//   snapshot-writer-child.ts TARGET MIB
// Writes a snapshot of MIB MiB of non-zero memory, slowly, printing "progress DONE TOTAL" per chunk.

import { writeSnapshot } from '../../src/snapshot/writer.js';

const [target, mib] = process.argv.slice(2);
if (target === undefined || mib === undefined) throw new Error('usage: snapshot-writer-child.ts TARGET MIB');
const size = Number(mib) * 1024 * 1024;
const chunk = new Uint8Array(1 << 20).fill(0xa5);

await writeSnapshot(target, {
  vm: { child: true }, vcpus: 1, states: { 'vcpu0/regs': new Uint8Array(144).fill(1) },
  memory: [{
    name: 'ram', guestAddress: 0, size,
    source: async (_offset, length) => {
      await new Promise((resolve) => setTimeout(resolve, 10));
      return chunk.subarray(0, length);
    },
  }],
}, {
  chunkSize: chunk.length,
  onProgress: ({ bytesDone, bytesTotal }) => process.stdout.write(`progress ${bytesDone} ${bytesTotal}\n`),
});
process.stdout.write('done\n');
