// Diff snapshots on /dev/kvm: chains base → diff1 → diff2 of a guest that writes memory and of one
// whose disk reads land in guest memory (written by the VMM's device thread, which KVM's dirty log
// does not see). Each chain must restore exactly what a full snapshot at the same instant holds,
// and the restored VM must go on as if it had never stopped.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { GUESTS, kvmMissingReason, TEST_ELF } from '../helpers/kvm.js';
import { openSnapshot } from '../../src/snapshot/index.js';
import type { WriteResult } from '../../src/snapshot/index.js';

const dir = mkdtempSync(path.join(tmpdir(), 'tsvmm-diff-'));
const LIBRARY = path.resolve('dist/bundle/index.js');
/**
 * Not part of the library: the VM's device state, for checking where a queue stands. Reached in
 * the unbundled build, whose Vm is then the one the script uses.
 */
const INTERNALS = path.resolve('dist/vmm/vm.js');
const VIRTIO = path.join(GUESTS, 'virtio.elf');
const file = (name: string) => path.join(dir, name);

/** Runs an ES module script in a fresh Node process; a script may end itself with SIGKILL. */
function script(source: string, timeout = 90_000) {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', `import { Vm } from ${JSON.stringify(LIBRARY)};
const { Vm: UnbundledVm, deviceStateOf } = await import(${JSON.stringify(INTERNALS)});
const fs = await import('node:fs');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
${source}`], { encoding: 'utf8', timeout });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

function tsvmm(args: string[]) {
  const r = spawnSync(process.execPath, ['bin/tsvmm.js', ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** "counter: 1\ncounter: 2\n...": the text a counting guest prints for its first n numbers. */
const sequence = (n: number) => Array.from({ length: n }, (_, i) => `counter: ${i + 1}\n`).join('');

/** Checks that `text` (after `prefix`) is the counter's sequence, cut anywhere; returns how many lines it holds. */
function expectSequence(text: string, prefix = ''): number {
  expect(text.startsWith(prefix), text.slice(0, 200)).toBe(true);
  const counted = text.slice(prefix.length);
  const lines = counted.split('\n').length - 1;
  expect(counted.slice(0, sequence(lines).length)).toBe(sequence(lines));
  return lines;
}

/** The snapshot's guest memory as the chain under it lays it out, every region in order. */
async function memoryOf(snapshotFile: string): Promise<{ chain: string[]; ram: Uint8Array[] }> {
  const snapshot = await openSnapshot(snapshotFile);
  try {
    return {
      chain: snapshot.chain.map((f) => path.basename(f.path)),
      ram: await Promise.all(snapshot.regions.map((r) => snapshot.readMemory(r.name, 0, r.size))),
    };
  } finally {
    await snapshot.close();
  }
}

/** Where a chain's memory differs from a full snapshot taken at the same instant: none, if no page written was missed. */
async function differingPages(chainTop: string, full: string): Promise<string[]> {
  const [a, b] = [await memoryOf(chainTop), await memoryOf(full)];
  const out: string[] = [];
  a.ram.forEach((region, r) => {
    for (let at = 0; at < region.length; at += 4096) {
      if (Buffer.compare(region.subarray(at, at + 4096), b.ram[r]!.subarray(at, at + 4096)) !== 0) out.push(`ram${r}+0x${at.toString(16)}`);
    }
  });
  return out;
}

describe.skipIf(kvmMissingReason)('diff snapshots', () => {
  it('a guest writing memory: base → diff1 → diff2 restore exactly, diffs are tiny, a restored VM writes diff3 over its source', async () => {
    const TOUCH = 'touch: done 16777216\n';
    const saver = script(`
      const vm = Vm.boot({ kernel: ${JSON.stringify(TEST_ELF)}, cmdline: 'mode=touch bytes=16777216 pause=3000', memory: '64M' });
      const results = {};
      for (const [name, at] of [['base', 10], ['diff1', 30], ['diff2', 50]]) {
        await vm.waitForOutput('counter: ' + at + '\\n');
        await vm.pause();
        await sleep(50); // let the console ring drain: all that was printed
        fs.writeFileSync(${JSON.stringify(dir)} + '/' + name + '.txt', vm.output);
        results[name] = await vm.snapshot(${JSON.stringify(dir)} + '/' + name + '.snap', { diff: name !== 'base' });
        if (name !== 'diff2') vm.resume();
      }
      // The same instant in full, to hold the chain against.
      results.full2 = await vm.snapshot(${JSON.stringify(file('full2.snap'))});
      console.log(JSON.stringify(results));
      process.kill(process.pid, 'SIGKILL');`);
    expect(saver.signal, saver.stderr).toBe('SIGKILL');
    const results = JSON.parse(saver.stdout) as Record<'base' | 'diff1' | 'diff2' | 'full2', WriteResult>;

    // The base holds the 16 MiB the guest touched; a diff, the few pages written since the last.
    expect(results.base.memoryBytesWritten).toBeGreaterThan(16 << 20);
    for (const d of [results.diff1, results.diff2]) {
      expect(d.memoryBytes).toBeGreaterThan(0);
      expect(d.memoryBytes).toBeLessThanOrEqual(256 * 1024); // a page per line counted, and the stack
      expect(d.fileSize * 100).toBeLessThan(results.base.memoryBytesWritten);
      expect(statSync(d.path).blocks * 100).toBeLessThan(statSync(results.base.path).blocks);
    }
    expect((await memoryOf(file('diff2.snap'))).chain).toEqual(['base.snap', 'diff1.snap', 'diff2.snap']);
    expect(await differingPages(file('diff2.snap'), file('full2.snap'))).toEqual([]);

    // Restored from each diff, the guest goes on from there (and checks the pages it wrote before).
    for (const [name, at] of [['diff1', 30], ['diff2', 50]] as const) {
      const restorer = script(`
        const vm = await Vm.restore(${JSON.stringify(file(`${name}.snap`))});
        await vm.waitForOutput(/(counter: \\d+\\n[^]*){20}/);
        await vm.pause();
        await sleep(50);
        process.stdout.write(vm.output);
        await vm.stop();`);
      expect(restorer.status, restorer.stderr).toBe(0);
      expect(expectSequence(readFileSync(file(`${name}.txt`), 'utf8') + restorer.stdout, TOUCH)).toBeGreaterThanOrEqual(at + 20);
    }

    // A restored VM's diff builds on the file it came from; the chain grows across processes.
    const middle = script(`
      const vm = await Vm.restore(${JSON.stringify(file('diff2.snap'))});
      await vm.waitForOutput(/(counter: \\d+\\n[^]*){15}/);
      await vm.pause();
      await sleep(50);
      fs.writeFileSync(${JSON.stringify(file('diff3.txt'))}, vm.output);
      console.log(JSON.stringify(await vm.snapshot(${JSON.stringify(file('diff3.snap'))}, { diff: true })));
      process.kill(process.pid, 'SIGKILL');`);
    expect(middle.signal, middle.stderr).toBe('SIGKILL');
    expect((JSON.parse(middle.stdout) as WriteResult).memoryBytes).toBeLessThanOrEqual(256 * 1024);
    expect((await memoryOf(file('diff3.snap'))).chain).toEqual(['base.snap', 'diff1.snap', 'diff2.snap', 'diff3.snap']);
    const last = script(`
      const vm = await Vm.restore(${JSON.stringify(file('diff3.snap'))});
      await vm.waitForOutput(/(counter: \\d+\\n[^]*){10}/);
      await vm.pause();
      await sleep(50);
      process.stdout.write(vm.output);
      await vm.stop();`);
    expect(last.status, last.stderr).toBe(0);
    const before = readFileSync(file('diff2.txt'), 'utf8') + readFileSync(file('diff3.txt'), 'utf8');
    expect(expectSequence(before + last.stdout, TOUCH)).toBeGreaterThanOrEqual(50 + 15 + 10);
  });

  it('a guest reading its disk: the sectors the device thread wrote into guest memory are in the diff', async () => {
    const disk = file('blk.img');
    writeFileSync(disk, '');
    truncateSync(disk, 4 << 20);
    const cmdline = 'seed=5 start=0 sectors=1024';
    const writer = tsvmm(['run', '-q', '--kernel', VIRTIO, '--mem', '64M', '--disk', disk, '--cmdline', `mode=blk op=write ${cmdline}`]);
    expect(writer.stdout).toContain('blk: wrote 1024 sectors');

    // The base before the driver has even set up its queue; then the guest runs in steps of about a
    // millisecond, with a diff after each, until the disk's answers to its reads are in guest memory.
    const saver = script(`
      const vm = UnbundledVm.boot({ kernel: ${JSON.stringify(VIRTIO)}, cmdline: 'mode=blk op=verify ${cmdline}', memory: '64M', disks: [{ path: ${JSON.stringify(disk)} }] });
      await vm.waitForOutput('virtio: found blk');
      await vm.pause();
      const base = await vm.snapshot(${JSON.stringify(file('blk-base.snap'))});
      const answered = async () => (await deviceStateOf(vm)).virtio[0].io?.queues.find(([q]) => q === 0)?.[1].nextUsed ?? 0;
      const baseAnswered = await answered();
      const diffs = [];
      while (await answered() === baseAnswered && diffs.length < 500) {
        vm.resume();
        await sleep(1);
        await vm.pause();
        const name = ${JSON.stringify(dir)} + '/blk-diff' + (diffs.length + 1) + '.snap';
        diffs.push({ ...(await vm.snapshot(name, { diff: true })), output: vm.output });
      }
      await vm.snapshot(${JSON.stringify(file('blk-full.snap'))});
      console.log(JSON.stringify({ base, baseAnswered, answered: await answered(), diffs }));
      process.kill(process.pid, 'SIGKILL');`);
    expect(saver.signal, saver.stderr).toBe('SIGKILL');
    const run = JSON.parse(saver.stdout) as { base: WriteResult; baseAnswered: number; answered: number; diffs: (WriteResult & { output: string })[] };
    expect(run.baseAnswered).toBe(0);
    expect(run.answered).toBeGreaterThan(0);
    const last = run.diffs.at(-1)!;
    // Still reading or checking when the diff was taken: the restored guest checks the sectors itself.
    expect(last.output).not.toContain('blk: verified');
    expect(run.diffs.length).toBeGreaterThanOrEqual(2);
    expect((await memoryOf(last.path)).chain).toHaveLength(run.diffs.length + 1);
    expect(await differingPages(last.path, file('blk-full.snap'))).toEqual([]);
    for (const d of run.diffs) expect(d.fileSize * 10).toBeLessThan(run.base.fileSize);
    // The diff that caught the reads holds what the disk gave (the device wrote it, not the guest).
    expect(last.memoryBytes).toBeGreaterThan(64 * 1024);

    const restorer = script(`
      const vm = await Vm.restore(${JSON.stringify(last.path)});
      await vm.wait();
      process.stdout.write(vm.output);`);
    expect(restorer.status, restorer.stderr).toBe(0);
    expect(restorer.stdout).toContain('blk: verified 1024 sectors');
  });

  it('tsvmm snapshot --diff: refused without an earlier snapshot, and restores after one', () => {
    const name = `diff-cli-${process.pid}`;
    const started = tsvmm(['run', '--name', name, '--detach', '--mem', '64M', '--kernel', TEST_ELF, '--cmdline', 'mode=counter pause=3000 max=400']);
    expect(started.code, started.stderr).toBe(0);
    try {
      const early = tsvmm(['snapshot', name, file('cli-early.snap'), '--diff']);
      expect(early.code).toBe(1);
      expect(early.stderr.trim().split('\n')).toHaveLength(1);
      expect(early.stderr).toMatch(/^tsvmm: error: cannot write a diff snapshot to .*cli-early\.snap: this VM has no earlier snapshot/);
      expect(tsvmm(['snapshot', name, file('cli-base.snap')]).code).toBe(0);
      const diff = tsvmm(['snapshot', name, file('cli-diff.snap'), '--diff']);
      expect(diff.code, diff.stderr).toBe(0);
      expect(diff.stderr).toMatch(/saved to .*cli-diff\.snap \(a diff\)/);
    } finally {
      tsvmm(['stop', name]);
    }
    expect(statSync(file('cli-diff.snap')).size * 100).toBeLessThan(statSync(file('cli-base.snap')).size);
    const restored = tsvmm(['restore', '-q', file('cli-diff.snap')]);
    expect(restored.code, restored.stderr).toBe(0);
    // The snapshot may have cut a line anywhere: the restored output then starts with the rest of
    // the line before its first whole one.
    const [rest = '', firstWhole = ''] = restored.stdout.split('\n');
    expect(firstWhole).toMatch(/^counter: \d+$/);
    expect(`counter: ${Number(firstWhole.slice('counter: '.length)) - 1}`.endsWith(rest)).toBe(true);
    expect(restored.stdout.endsWith('counter: 400\n')).toBe(true);
  });
});
