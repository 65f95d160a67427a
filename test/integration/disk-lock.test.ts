// One disk image, several VMs: the real CLI refuses a second writer in one line, whether it is a
// second `run`, a restore while the original runs, or a second clone of one snapshot.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { kvmMissingReason, TEST_ELF } from '../helpers/kvm.js';

const dir = mkdtempSync(path.join(tmpdir(), 'tsvmm-disklock-'));
const image = path.join(dir, 'same.img');
writeFileSync(image, '');
truncateSync(image, 1 << 20);
const tag = `${process.pid}`;

function tsvmm(args: string[]) {
  const r = spawnSync(process.execPath, ['bin/tsvmm.js', ...args], { encoding: 'utf8', timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

const guest = ['--kernel', TEST_ELF, '--cmdline', 'mode=halt', '--mem', '32M'];

function expectRefused(r: ReturnType<typeof tsvmm>, message: RegExp) {
  expect(r.code, r.stderr).toBe(1);
  const lines = r.stderr.trim().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(message);
}

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
    expectRefused(tsvmm(['run', ...guest, '--disk', image]), /disk .*same\.img: another VM is using it \(the image is locked\)/);
    expectRefused(tsvmm(['run', ...guest, '--disk', `${image},ro`]), /disk .*same\.img: another VM is writing it/);
    await stop(`lock-a-${tag}`);
    background(`lock-r1-${tag}`, ['run', ...guest, '--disk', `${image},ro`]);
    background(`lock-r2-${tag}`, ['run', ...guest, '--disk', `${image},ro`]);
    expectRefused(tsvmm(['run', ...guest, '--disk', image]), /another VM is using it/);
    await stop(`lock-r1-${tag}`);
    await stop(`lock-r2-${tag}`);
  });

  it('a restore while the original runs, and a second clone of one snapshot, are refused', async () => {
    const original = `lock-o-${tag}`;
    background(original, ['run', ...guest, '--disk', image]);
    const snap = path.join(dir, 'with-disk.snap');
    const saved = tsvmm(['snapshot', original, snap]);
    expect(saved.code, saved.stderr).toBe(0);
    expectRefused(tsvmm(['restore', snap]), /another VM is using it/);
    await stop(original);
    const clone = `lock-c-${tag}`;
    background(clone, ['restore', snap]);
    expectRefused(tsvmm(['restore', snap]), /another VM is using it/);
    await stop(clone);
  });
});
