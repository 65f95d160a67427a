// Drives the real `tsvmm` command as a user would, checking output and exit codes.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { kvmMissingReason, TEST_ELF } from '../helpers/kvm.js';
import { expectOneLineError, tsvmm } from '../helpers/cli.js';
import { COMMANDS } from '../../src/cli/commands.js';

describe('tsvmm --help', () => {
  it('lists every command, and says which version this is', () => {
    const r = tsvmm(['--help']);
    expect(r.code).toBe(0);
    for (const c of COMMANDS) expect(r.stdout).toContain(`tsvmm ${c.command}`);
    expect(tsvmm(['-h']).stdout).toBe(r.stdout);
    expect(tsvmm(['--version']).stdout).toMatch(/^\d+\.\d+\.\d+\S*\n$/);
    expect(tsvmm(['run', '--version']).stdout).toBe(tsvmm(['--version']).stdout);
  });

  it('asks for a command, and suggests the nearest name for a misspelt one', () => {
    const none = tsvmm([]);
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/^tsvmm: error: Say which command to run/);
    const typo = tsvmm(['rn']);
    expect(typo.code).toBe(1);
    expect(typo.stderr).toMatch(/^tsvmm: error: Did you mean run\?/);
  });

  it('explains the run command and its options', () => {
    const r = tsvmm(['run', '--help']);
    expect(r.code).toBe(0);
    for (const option of ['--kernel', '--initrd', '--cmdline', '--mem', '--cpus', 'Ctrl-A X']) expect(r.stdout).toContain(option);
  });

  it('runs as a program, from a link elsewhere too, and starts Node without NODE_EXTRA_CA_CERTS', () => {
    // Node warns on stderr when that file cannot be read: no warning, so it was never read.
    const dir = mkdtempSync(path.join(tmpdir(), 'tsvmm-bin-'));
    const link = path.join(dir, 'tsvmm');
    symlinkSync(path.resolve('bin/tsvmm.js'), link);
    const env = { ...process.env, NODE_EXTRA_CA_CERTS: path.join(dir, 'no-such-bundle.pem') };
    const r = spawnSync(link, ['--version'], { cwd: dir, encoding: 'utf8', env });
    expect(r.status).toBe(0);
    expect(r.stdout).toBe(tsvmm(['--version']).stdout);
    expect(r.stderr).toBe('');
    const bare = spawnSync(process.execPath, ['-e', '0'], { encoding: 'utf8', env });
    expect(bare.stderr).toMatch(/Ignoring extra certs/); // what tsvmm's start would have said
  });

  it('rejects an unknown command or option in one line', () => {
    expect(tsvmm(['fly']).code).toBe(1);
    const r = tsvmm(['run', '--turbo']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Unknown argument: turbo/);
  });

  it('reads numeric flags strictly, in one line naming the flag', () => {
    expectOneLineError(tsvmm(['run', '--cpus', 'abc']), /--cpus abc: not a whole number/);
    expectOneLineError(tsvmm(['run', '--cpus', '']), /--cpus needs a value/);
    expectOneLineError(tsvmm(['run', '--cpus', '0x2']), /--cpus 0x2: not a whole number/);
    expectOneLineError(tsvmm(['container', 'run', '--cpus', 'abc', '--', 'true']), /--cpus abc: not a number/);
  });
});

describe.skipIf(kvmMissingReason)('tsvmm run', () => {
  it('boots the default guest, which answers typed input and shuts down with exit code 0', () => {
    const script = `const { spawn } = require('node:child_process');
const p = spawn(process.execPath, ['bin/tsvmm.js', 'run', '--mem', '64M'], { stdio: ['pipe', 'pipe', 'inherit'] });
let out = '';
p.stdout.on('data', (d) => { out += d; if (out.includes('type something') && !p.sent) { p.sent = 1; p.stdin.write('exit\\r'); } });
p.on('exit', (code) => { process.stdout.write(out); process.exit(code); });`;
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 60_000 });
    expect(r.status).toBe(0);
    expect(r.stdout).toContain('Hello from a tiny x86-64 kernel');
    expect(r.stdout).toContain('goodbye');
    expect(r.stderr).toMatch(/guest shut down/);
  });

  it('passes the exit of a test guest through, with --json for scripts', () => {
    const r = tsvmm(['run', '--kernel', TEST_ELF, '--cmdline', 'mode=exits count=10', '--mem', '32M', '--json']);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('exits: done 10');
    const summary = JSON.parse(r.stderr.trim().split('\n').pop()!);
    expect(summary.outcome).toEqual({ kind: 'shutdown', reason: 'i8042-reset' });
    expect(summary.stats.io).toBeGreaterThan(10);
  });

  it('TSVMM_STARTUP_TRACE=1: each start phase once, the process\'s own first, on one clock (vCPU threads add only their first run)', () => {
    const r = tsvmm(['run', '--kernel', TEST_ELF, '--cmdline', 'mode=exits count=10', '--cpus', '2', '--mem', '32M', '-q'], { env: { TSVMM_STARTUP_TRACE: '1' } });
    expect(r.code, r.stderr).toBe(0);
    const marks = [...r.stderr.matchAll(/^tsvmm-startup (\S+) ([\d.]+)$/gm)].map(([, phase, ms]) => ({ phase: phase!, ms: Number(ms) }));
    const phases = marks.map((m) => m.phase);
    expect(new Set(phases).size, r.stderr).toBe(phases.length);
    expect(phases.slice(0, 11)).toEqual(['node-process', 'node-v8', 'node-environment', 'node-bootstrap', 'bundle', 'create', 'memory', 'kernel', 'kvm-vm', 'vcpus', 'start']);
    // The AP's thread may not get to its first run before the guest has ended.
    expect(phases.slice(11)).toContain('vcpu0-first-run');
    expect(phases.slice(11).every((p) => /^vcpu[01]-first-run$/.test(p)), r.stderr).toBe(true);
    for (let i = 1; i < 11; i++) expect(marks[i]!.ms).toBeGreaterThanOrEqual(marks[i - 1]!.ms);
  });

  it('reports an emulation failure with registers and exit code 1', () => {
    const r = tsvmm(['run', '-q', '--kernel', TEST_ELF, '--cmdline', 'mode=emulation-failure', '--mem', '32M']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/tsvmm: error: vCPU 0: KVM could not emulate a guest instruction/);
    expect(r.stderr).toMatch(/code at rip: f0 48 0f c7/);
    expect(r.stderr.match(/code at rip/g)).toHaveLength(1); // the crash report, not the registers twice
    expect(r.stderr).not.toMatch(/\n\s+at /); // no JavaScript stack
  });

  const dir = mkdtempSync(path.join(tmpdir(), 'tsvmm-cli-'));
  const textFile = path.join(dir, 'notes.txt');
  writeFileSync(textFile, 'not a kernel\n');
  const bigInitrd = path.join(dir, 'big.img');
  writeFileSync(bigInitrd, Buffer.alloc(20 * 1024 * 1024));

  it.each([
    ['a missing kernel', ['--kernel', '/nonexistent/vmlinux'], /kernel \/nonexistent\/vmlinux: no such file/],
    ['a kernel that is a directory', ['--kernel', dir], /is a directory/],
    ['a file that is not a kernel', ['--kernel', textFile], /not a kernel image/],
    ['a memory size that is not a size', ['--mem', 'lots'], /--mem "lots": not a size/],
    ['more memory than the host has', ['--mem', '64T'], /more than this host's/],
    ['too little memory', ['--mem', '1M'], /at least 16 MiB/],
    ['zero vCPUs', ['--cpus', '0'], /--cpus 0/],
    ['more vCPUs than supported', ['--cpus', '4000'], /--cpus 4000: at most/],
    ['an initrd larger than guest memory', ['--kernel', TEST_ELF, '--mem', '16M', '--initrd', bigInitrd], /initrd .*big.img: 20 MiB is larger than guest memory/],
    ['an initrd that does not fit above the kernel', ['--kernel', TEST_ELF, '--mem', '20M', '--initrd', bigInitrd], /initrd .*big.img: 20 MiB does not fit/],
    ['a command line that is too long', ['--kernel', TEST_ELF, '--cmdline', 'x'.repeat(70_000)], /command line of 70000 bytes is longer than 65535/],
  ])('refuses %s in one line', (_what, args, message) => {
    expectOneLineError(tsvmm(['run', ...args]), message);
  });

  it('says plainly when /dev/kvm is missing', () => {
    const r = tsvmm(['run', '--kernel', TEST_ELF], { env: { TSVMM_KVM_DEVICE: '/nonexistent/kvm' } });
    expectOneLineError(r, /cannot open \/nonexistent\/kvm: KVM is not available on this machine/);
  });
});

// bzImage kernels (added at the end, where this file grows).
import { buildBzImage } from '../helpers/bzimage-builder.js';

describe.skipIf(kvmMissingReason)('tsvmm run with a bzImage', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'tsvmm-cli-bz-'));
  const old = path.join(dir, 'old-bzImage');
  writeFileSync(old, buildBzImage({ version: 0x0204 }));
  const small = path.join(dir, 'bzImage');
  writeFileSync(small, buildBzImage({ cmdlineSize: 255 }));

  it.each([
    ['a bzImage whose boot protocol is too old', ['--kernel', old], /^tsvmm: error: kernel .*old-bzImage: boot protocol 2.04 is too old \(tsvmm needs 2.06 or later\)$/],
    ['a command line longer than the kernel\'s cmdline_size', ['--kernel', small, '--cmdline', 'x'.repeat(300)], /command line of 300 bytes is longer than the kernel's cmdline_size of 255 bytes$/],
  ])('refuses %s in one line', (_what, args, message) => {
    expectOneLineError(tsvmm(['run', ...args]), message);
  });
});
