// One disk image, several VMs: the real CLI refuses a second writer in one line, whether it is a
// second `run`, a restore while the original runs, or a second clone of one snapshot.

import { mkdtempSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { kvmMissingReason, TEST_ELF } from '../helpers/kvm.js';
import { expectOneLineError, tsvmm } from '../helpers/cli.js';

const dir = mkdtempSync(path.join(tmpdir(), 'tsvmm-disklock-'));
const image = path.join(dir, 'same.img');
writeFileSync(image, '');
truncateSync(image, 1 << 20);
const tag = `${process.pid}`;


const guest = ['--kernel', TEST_ELF, '--cmdline', 'mode=halt', '--mem', '32M'];


describe.skipIf(kvmMissingReason)('one disk image, several VMs', () => {
  const names: string[] = [];
  const background = (name: string, args: string[]) => {
    names.push(name);
    const r = tsvmm([...args, '--detach', '--name', name]);
    expect(r.code, r.stderr).toBe(0);
  };
  /** Stops a VM and waits until its process (and with it the image's lock) is gone. */
  const stop = async (name: string) => {
    tsvmm(['stop', name]);
    await expect.poll(() => tsvmm(['ps', '--json']).stdout, { timeout: 10_000 }).not.toContain(`"${name}"`);
    names.splice(names.indexOf(name), 1);
  };
  afterAll(() => { for (const n of names) tsvmm(['stop', n]); });

  it('two `run --disk same.img`: the second is refused; readers share', async () => {
    background(`lock-a-${tag}`, ['run', ...guest, '--disk', image]);
    expectOneLineError(tsvmm(['run', ...guest, '--disk', image]), /disk .*same\.img: another VM is using it \(the image is locked\)/);
    expectOneLineError(tsvmm(['run', ...guest, '--disk', `${image},ro`]), /disk .*same\.img: another VM is writing it/);
    await stop(`lock-a-${tag}`);
    background(`lock-r1-${tag}`, ['run', ...guest, '--disk', `${image},ro`]);
    background(`lock-r2-${tag}`, ['run', ...guest, '--disk', `${image},ro`]);
    expectOneLineError(tsvmm(['run', ...guest, '--disk', image]), /another VM is using it/);
    await stop(`lock-r1-${tag}`);
    await stop(`lock-r2-${tag}`);
  });

  it('a restore while the original runs, and a second clone of one snapshot, are refused', async () => {
    const original = `lock-o-${tag}`;
    background(original, ['run', ...guest, '--disk', image]);
    const snap = path.join(dir, 'with-disk.snap');
    const saved = tsvmm(['snapshot', original, snap]);
    expect(saved.code, saved.stderr).toBe(0);
    expectOneLineError(tsvmm(['restore', snap]), /another VM is using it/);
    await stop(original);
    const clone = `lock-c-${tag}`;
    background(clone, ['restore', snap]);
    expectOneLineError(tsvmm(['restore', snap]), /another VM is using it/);
    await stop(clone);
  });
});
