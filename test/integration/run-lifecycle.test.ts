// How a VM's life ends, or does not: a guest reset with and without --reboot, SIGHUP; and what
// it may boot from: a 32-bit PVH ELF as QEMU boots it, a block device as a disk.

import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { GUESTS, kvmMissingReason, TEST_ELF } from '../helpers/kvm.js';
import { tsvmm } from '../helpers/cli.js';
import { listInstances, readOutcome, runtimeDir } from '../../src/api/runtime-dir.js';

const TEST32_ELF = path.join(GUESTS, 'test32.elf');
const RESET_LINE = /acpi: reset reg=/g;

/** Runs tsvmm with these arguments until its output satisfies `enough`, then sends it SIGTERM. */
async function runUntil(args: string[], enough: (out: string) => boolean): Promise<{ code: number | null; out: string; err: string }> {
  const p = spawn(process.execPath, ['bin/tsvmm.js', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  p.stderr.on('data', (d: Buffer) => { err += d.toString(); });
  const code = await new Promise<number | null>((resolve) => {
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      // Once: a second SIGTERM, before the first is handled, would end the process unhandled.
      if (enough(out) && !p.killed) p.kill('SIGTERM');
    });
    p.on('exit', (c) => resolve(c));
  });
  return { code, out, err };
}

describe.skipIf(kvmMissingReason)('the end of a VM', () => {
  it('a guest reset ends the VM by default; with --reboot it boots again, until stopped', async () => {
    const once = tsvmm(['run', '--kernel', TEST_ELF, '--cmdline', 'mode=acpi-reset', '--mem', '32M']);
    expect(once.code, once.stderr).toBe(0);
    expect(once.stdout.match(RESET_LINE)).toHaveLength(1);
    expect(once.stderr).toContain('guest reset (ACPI reset register)');

    const { code, err } = await runUntil(['run', '--reboot', '--kernel', TEST_ELF, '--cmdline', 'mode=acpi-reset', '--mem', '32M'],
      (out) => (out.match(RESET_LINE) ?? []).length >= 3);
    expect(code, err).toBe(0);
    expect(err).toContain('guest reset (ACPI reset register); booting again (--reboot)');
    expect(err).toMatch(/stopped after/);
  });

  it('restore --reboot: a restored guest that resets boots its kernel again', async () => {
    const name = `reboot-src-${process.pid}`;
    // A counter to 200 that then resets (i8042), slow enough (about 3 s) to be saved part-way.
    const started = tsvmm(['run', '--detach', '--name', name, '--kernel', TEST_ELF, '--cmdline', 'mode=counter max=200 pause=3000', '--mem', '32M']);
    expect(started.code, started.stderr).toBe(0);
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'tsvmm-reboot-')), 'counter.snap');
    const saved = tsvmm(['snapshot', name, file]);
    tsvmm(['stop', name]);
    expect(saved.code, saved.stderr).toBe(0);

    // The restored run counts on to 200 and resets; a fresh boot counts from 1 to 200 again.
    const { code, out, err } = await runUntil(['restore', '--reboot', file], (text) => (text.match(/counter: 200\n/g) ?? []).length >= 2);
    expect(code, err).toBe(0);
    expect(err).toContain('guest shut down (reset through the i8042 controller); booting again (--reboot)');
    const afterReset = out.slice(out.indexOf('counter: 200\n') + 'counter: 200\n'.length);
    expect(afterReset.startsWith('counter: 1\ncounter: 2\n'), afterReset.slice(0, 40)).toBe(true);
  });

  it('SIGHUP stops a VM cleanly: no socket or record left behind', async () => {
    const name = `hup-${process.pid}`;
    const started = tsvmm(['run', '--detach', '--name', name, '--kernel', TEST_ELF, '--cmdline', 'mode=halt', '--mem', '32M']);
    expect(started.code, started.stderr).toBe(0);
    const record = listInstances().find((r) => r.name === name)!;
    process.kill(record.pid, 'SIGHUP');
    await expect.poll(() => { try { process.kill(record.pid, 0); return true; } catch { return false; } }, { timeout: 10_000 }).toBe(false);
    expect(existsSync(path.join(runtimeDir(), `${name}.sock`))).toBe(false);
    expect(existsSync(path.join(runtimeDir(), `${name}.json`))).toBe(false);
    expect(readOutcome(name)?.outcome).toBe('stopped');
  });

  it('boots a 32-bit ELF with a PVH note (test.elf in an ELF32 container), as QEMU does', () => {
    const r = tsvmm(['run', '--kernel', TEST32_ELF, '--cmdline', 'mode=info', '--mem', '64M']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('booting test32.elf (PVH ELF');
    expect(r.stdout).toContain('info: magic=0x336ec578 version=0x1 cmdline="mode=info"');
    const qemu = spawnSync('qemu-system-x86_64', ['-M', 'microvm', '-display', 'none', '-nodefaults', '-serial', 'stdio', '-no-reboot',
      '-kernel', TEST32_ELF, '-append', 'mode=info', '-m', '64M'], { encoding: 'utf8', timeout: 60_000 });
    if (qemu.error) return; // no QEMU here: tsvmm's side is checked above
    expect(qemu.stdout).toContain('info: magic=0x336ec578 version=0x1 cmdline="mode=info"');
  });

  it('a block device as --disk: its size comes from the device (BLKGETSIZE64)', (ctx) => {
    const image = path.join(mkdtempSync(path.join(tmpdir(), 'tsvmm-blockdev-')), 'backing.img');
    writeFileSync(image, '');
    truncateSync(image, 4 << 20);
    const loop = spawnSync('losetup', ['--find', '--show', image], { encoding: 'utf8' });
    if (loop.status !== 0) {
      ctx.skip(`no loop device to test with here (losetup: ${(loop.stderr || String(loop.error)).trim()})`);
      return;
    }
    const device = loop.stdout.trim();
    try {
      const r = tsvmm(['run', '--kernel', path.join(GUESTS, 'virtio.elf'), '--cmdline', 'mode=blk op=write seed=1 start=0 sectors=8', '--mem', '64M', '--disk', device]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain('blk: capacity=8192');
      expect(r.stdout).toContain('blk: wrote 8 sectors');
    } finally {
      spawnSync('losetup', ['--detach', device]);
    }
  });

  it('run --json reports a start-up error as one JSON line', () => {
    const r = tsvmm(['run', '--json', '--mem', '8M']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stderr.trim())).toEqual({ error: { code: 'BAD_CONFIG', message: '--mem 8M: at least 16 MiB is needed' } });
  });
});
