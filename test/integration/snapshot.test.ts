// Snapshots on /dev/kvm: a VM saved, its process killed, and the VM continued in a fresh
// process, exactly where it was.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, truncateSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { GUESTS, kvmMissingReason, TEST_ELF } from '../helpers/kvm.js';

const dir = mkdtempSync(path.join(tmpdir(), 'tsvmm-snap-'));
const LIBRARY = path.resolve('dist/bundle/index.js');

/** Runs an ES module script in a fresh Node process; a script may end itself with SIGKILL. */
function script(source: string, timeout = 60_000) {
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', `import { Vm } from ${JSON.stringify(LIBRARY)};\n${source}`], { encoding: 'utf8', timeout });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

function tsvmm(args: string[]) {
  const r = spawnSync(process.execPath, ['bin/tsvmm.js', ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** "counter: 1\ncounter: 2\n...": the text a counter guest prints for its first n numbers. */
const sequence = (n: number) => Array.from({ length: n }, (_, i) => `counter: ${i + 1}\n`).join('');

describe.skipIf(kvmMissingReason)('snapshots', () => {
  it('a VM killed after its snapshot continues in a fresh process with no number missing or repeated', () => {
    const snap = path.join(dir, 'counter.snap');
    const before = path.join(dir, 'before.txt');
    const saver = script(`
      const vm = Vm.boot({ kernel: ${JSON.stringify(TEST_ELF)}, cmdline: 'mode=counter pause=3000', memory: '64M' });
      await vm.waitForOutput('counter: 40\\n');
      await vm.pause();
      await new Promise((r) => setTimeout(r, 50)); // let the console ring drain: all that was printed
      (await import('node:fs')).writeFileSync(${JSON.stringify(before)}, vm.output);
      await vm.snapshot(${JSON.stringify(snap)});
      process.kill(process.pid, 'SIGKILL');`);
    expect(saver.signal, saver.stderr).toBe('SIGKILL');

    const restorer = script(`
      const vm = await Vm.restore(${JSON.stringify(snap)});
      await vm.waitForOutput('counter: 100\\n');
      await vm.pause();
      process.stdout.write(vm.output);
      await vm.stop();`);
    expect(restorer.status, restorer.stderr).toBe(0);

    const joined = readFileSync(before, 'utf8') + restorer.stdout;
    const lines = joined.split('\n').length - 1;
    expect(lines).toBeGreaterThan(70);
    // Exactly the counter's own output, as if the VM had never stopped (the cut may fall mid-line).
    expect(joined.slice(0, sequence(lines).length)).toBe(sequence(lines));
  });

  it('with several vCPUs: the sequence of every CPU continues with no number missing or repeated', () => {
    const snap = path.join(dir, 'smp-counter.snap');
    const before = path.join(dir, 'smp-before.txt');
    const SMP = path.join(GUESTS, 'smp.elf');
    const saver = script(`
      const vm = Vm.boot({ kernel: ${JSON.stringify(SMP)}, cpus: 3, memory: '64M', cmdline: 'counter=1 pause=3000' });
      await vm.waitForOutput(/smp: cpu=1 n=20\\n/);
      await vm.pause();
      await new Promise((r) => setTimeout(r, 50));
      (await import('node:fs')).writeFileSync(${JSON.stringify(before)}, vm.output);
      await vm.snapshot(${JSON.stringify(snap)});
      process.kill(process.pid, 'SIGKILL');`);
    expect(saver.signal, saver.stderr).toBe('SIGKILL');
    const restorer = script(`
      const vm = await Vm.restore(${JSON.stringify(snap)});
      await vm.waitForOutput(/smp: cpu=2 n=60\\n/);
      await vm.pause();
      process.stdout.write(vm.output);
      await vm.stop();`);
    expect(restorer.status, restorer.stderr).toBe(0);
    const joined = readFileSync(before, 'utf8') + restorer.stdout;
    const counts = new Map<number, number[]>();
    for (const m of joined.matchAll(/^smp: cpu=(\d+) n=(\d+)$/gm)) {
      const cpu = Number(m[1]);
      counts.set(cpu, [...(counts.get(cpu) ?? []), Number(m[2])]);
    }
    expect([...counts.keys()].sort()).toEqual([0, 1, 2]);
    for (const [cpu, ns] of counts) {
      expect(ns.length, `cpu ${cpu}`).toBeGreaterThan(10);
      expect(ns, `cpu ${cpu}`).toEqual(ns.map((_, i) => i + 1));
    }
    // Every line is whole: the cut between the two files did not lose or double a character.
    expect(joined.split('\n').filter((l) => l.startsWith('smp: cpu=')).every((l) => /^smp: cpu=\d+ n=\d+$/.test(l))).toBe(true);
  });

  it('a snapshot taken in the middle of a disk stream: the restored VM completes every request', () => {
    const disk = path.join(dir, 'stream.img');
    writeFileSync(disk, '');
    truncateSync(disk, 80 << 20);
    const snap = path.join(dir, 'stream.snap');
    const VIRTIO = path.join(GUESTS, 'virtio.elf');
    const cmdline = 'mode=blk op=stream dir=write size=67108864 req=4096 depth=64';
    const saver = script(`
      const vm = Vm.boot({ kernel: ${JSON.stringify(VIRTIO)}, cmdline: ${JSON.stringify(cmdline)}, memory: '128M', disks: [{ path: ${JSON.stringify(disk)} }] });
      await vm.waitForOutput('blk: stream start');
      await vm.snapshot(${JSON.stringify(snap)});
      console.log(vm.output.includes('stream done') ? 'finished before the snapshot' : 'busy');
      process.kill(process.pid, 'SIGKILL');`);
    expect(saver.signal, saver.stderr).toBe('SIGKILL');
    expect(saver.stdout.trim()).toBe('busy');
    const restorer = script(`
      const vm = await Vm.restore(${JSON.stringify(snap)});
      console.log(JSON.stringify(await vm.wait()));
      process.stdout.write(vm.output);`);
    expect(restorer.status, restorer.stderr).toBe(0);
    expect(restorer.stdout).toContain('blk: stream done 67108864');
    expect(restorer.stdout).not.toMatch(/timeout|status=/);
  });

  it('one snapshot restores into several independent clones at once', () => {
    const snap = path.join(dir, 'clones.snap');
    const r = script(`
      const vm = Vm.boot({ kernel: ${JSON.stringify(TEST_ELF)}, cmdline: 'mode=counter pause=3000', memory: '64M' });
      await vm.waitForOutput('counter: 10\\n');
      await vm.pause();
      await vm.snapshot(${JSON.stringify(snap)});
      await vm.stop();
      const clones = await Promise.all([Vm.restore(${JSON.stringify(snap)}), Vm.restore(${JSON.stringify(snap)})]);
      await Promise.all(clones.map((c) => c.waitForOutput('counter: 20\\n')));
      for (const c of clones) { await c.pause(); console.log(JSON.stringify(c.output.split('\\n').slice(0, 5))); await c.stop(); }`);
    expect(r.status, r.stderr).toBe(0);
    // Both clones continue from the same point with the same sequence, each on its own.
    const [a, b] = r.stdout.trim().split('\n').map((l) => JSON.parse(l) as string[]);
    expect(a).toEqual(b);
    expect(a).toHaveLength(5);
  });

  it('a snapshot taken while a virtio disk is busy: the restored VM finishes the writes, which a new VM verifies', () => {
    const disk = path.join(dir, 'busy.img');
    writeFileSync(disk, '');
    truncateSync(disk, 4 << 20);
    const snap = path.join(dir, 'busy.snap');
    const VIRTIO = path.join(GUESTS, 'virtio.elf');
    const saver = script(`
      const vm = Vm.boot({ kernel: ${JSON.stringify(VIRTIO)}, cmdline: 'mode=blk op=write seed=9 start=0 sectors=1024', memory: '64M', disks: [{ path: ${JSON.stringify(disk)} }] });
      await vm.waitForOutput('blk: capacity='); // the writes start right after this line
      await vm.snapshot(${JSON.stringify(snap)});
      console.log(vm.output.includes('blk: wrote') ? 'already done' : 'busy');
      process.kill(process.pid, 'SIGKILL');`);
    // The guest may, on a slow day, finish its writes before the snapshot lands; then there is
    // nothing busy to restore, but the verification below still holds.
    if (!saver.stderr.includes('cannot snapshot a VM that is exited')) {
      expect(saver.signal, saver.stderr).toBe('SIGKILL');
      const restorer = script(`
        const vm = await Vm.restore(${JSON.stringify(snap)});
        await vm.wait();
        process.stdout.write(vm.output);`);
      expect(restorer.status, restorer.stderr).toBe(0);
      if (!saver.stdout.includes('already done')) expect(restorer.stdout).toContain('blk: wrote 1024 sectors');
    }
    const verify = tsvmm(['run', '-q', '--kernel', VIRTIO, '--mem', '64M', '--disk', disk, '--cmdline', 'mode=blk op=verify seed=9 start=0 sectors=1024']);
    expect(verify.stdout).toContain('blk: verified 1024 sectors');
  });

  it('restores a VM with several vCPUs: APs, timers and interrupts go on', () => {
    const snap = path.join(dir, 'smp.snap');
    const SMP = path.join(GUESTS, 'smp.elf');
    const saver = script(`
      const vm = Vm.boot({ kernel: ${JSON.stringify(SMP)}, cpus: 4, memory: '64M' });
      await vm.waitForOutput('smp: waiting for input');
      await vm.snapshot(${JSON.stringify(snap)});
      process.kill(process.pid, 'SIGKILL');`);
    expect(saver.signal, saver.stderr).toBe('SIGKILL');
    const restorer = script(`
      const vm = await Vm.restore(${JSON.stringify(snap)});
      await new Promise((r) => setTimeout(r, 200));
      vm.write('ping\\r');
      console.log(JSON.stringify(await vm.wait()));
      process.stdout.write(vm.output);`);
    expect(restorer.status, restorer.stderr).toBe(0);
    expect(restorer.stdout).toContain('{"kind":"shutdown","reason":"i8042-reset"}');
    expect(restorer.stdout).toContain('smp: rx "ping"');
    expect(restorer.stdout).toContain('smp: done');
  });

  it('refuses files that are not whole, valid snapshots, in one line', () => {
    const good = path.join(dir, 'counter.snap');
    const truncated = path.join(dir, 'truncated.snap');
    copyFileSync(good, truncated);
    truncateSync(truncated, 100_000);
    const notSnapshot = path.join(dir, 'notes.txt');
    writeFileSync(notSnapshot, 'hello');
    for (const [file, message] of [
      [truncated, /truncated\.snap: .*(truncated|shorter)/i],
      [notSnapshot, /notes\.txt: is not a tsvmm snapshot/i],
      [path.join(dir, 'missing.snap'), /missing\.snap/],
    ] as const) {
      const r = tsvmm(['restore', file]);
      expect(r.code).toBe(1);
      const lines = r.stderr.trim().split('\n');
      expect(lines, r.stderr).toHaveLength(1);
      expect(lines[0]).toMatch(/^tsvmm: error: /);
      expect(lines[0]).toMatch(message);
    }
  });
});
