// Running VMs in the background and reaching them by name: run --detach, ps, pause, resume,
// console, stop — through the real CLI and the control socket.

import { spawn, spawnSync } from 'node:child_process';
import { statSync } from 'node:fs';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { kvmMissingReason, TEST_ELF } from '../helpers/kvm.js';
import { request, status } from '../../src/api/control-client.js';
import { runtimeDir } from '../../src/api/runtime-dir.js';

function tsvmm(args: string[], input = '') {
  const r = spawnSync(process.execPath, ['bin/tsvmm.js', ...args], { encoding: 'utf8', input, timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Types into `tsvmm console NAME` and collects what it prints until `until` appears. */
function consoleSession(name: string, typed: string, until: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, ['bin/tsvmm.js', 'console', name], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    const timer = setTimeout(() => { p.kill(); reject(new Error(`console never showed ${until}:\n${out}`)); }, 20_000);
    p.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes(until)) {
        clearTimeout(timer);
        p.stdin.end();
        p.kill();
        resolve(out);
      }
    });
    setTimeout(() => p.stdin.write(typed), 300);
  });
}

describe.skipIf(kvmMissingReason)('VMs in the background', () => {
  const names: string[] = [];
  afterAll(() => { for (const n of names) tsvmm(['stop', n]); });

  it('run --detach, ps, pause, resume, console, stop', async () => {
    names.push('bg-demo');
    const started = tsvmm(['run', '--name', 'bg-demo', '--detach', '--mem', '64M']);
    expect(started.code, started.stderr).toBe(0);
    expect(started.stdout.trim()).toBe('bg-demo');

    // The control socket is owner-only, in an owner-only directory.
    expect(statSync(runtimeDir()).mode & 0o777).toBe(0o700);
    expect(statSync(path.join(runtimeDir(), 'bg-demo.sock')).mode & 0o777).toBe(0o600);

    const ps = JSON.parse(tsvmm(['ps', '--json']).stdout) as { name: string; kind: string; state: string; cpus: number; memory: number; memoryUsed: { bytes: number; how: string } }[];
    const row = ps.find((r) => r.name === 'bg-demo')!;
    expect(row).toMatchObject({ kind: 'vm', state: 'running', cpus: 1, memory: 64 << 20, memoryUsed: { how: 'PSS' } });
    expect(row.memoryUsed.bytes).toBeGreaterThan(0);
    // MEMORY is what it uses on the host (its process's PSS), LIMIT its RAM.
    expect(tsvmm(['ps']).stdout).toMatch(/^bg-demo\s+vm\s+running\s+1\s+\d+(\.\d)? [KMG]iB\s+64 MiB\s/m);

    expect(tsvmm(['pause', 'bg-demo']).stdout.trim()).toBe('bg-demo: paused');
    expect((await status('bg-demo')).state).toBe('paused');
    expect(tsvmm(['resume', 'bg-demo']).stdout.trim()).toBe('bg-demo: running');

    // The console shows what the guest printed before we attached, and takes typed input.
    const seen = await consoleSession('bg-demo', 'from the console\r', 'you typed "from the console"');
    expect(seen).toContain('Hello from a tiny x86-64 kernel');

    expect(tsvmm(['stop', 'bg-demo']).stdout.trim()).toBe('bg-demo: stopping');
    await expect.poll(() => tsvmm(['ps', '--json']).stdout, { timeout: 10_000 }).not.toContain('bg-demo');
    names.pop();
  });

  it('refuses a name that is taken, and commands for names that are not running', async () => {
    names.push('bg-taken');
    expect(tsvmm(['run', '--name', 'bg-taken', '--detach', '--mem', '32M', '--kernel', TEST_ELF, '--cmdline', 'mode=halt']).code).toBe(0);
    const again = tsvmm(['run', '--name', 'bg-taken', '--detach', '--mem', '32M']);
    expect(again.code).toBe(1);
    expect(again.stderr.trim()).toBe('tsvmm: error: an instance named "bg-taken" is already running');
    const foreground = tsvmm(['run', '--name', 'bg-taken', '--mem', '32M', '--kernel', TEST_ELF, '--cmdline', 'mode=info']);
    expect(foreground.code).toBe(1);
    expect(foreground.stderr).toContain('an instance named "bg-taken" is already running');
    await request('bg-taken', 'stop');
    names.pop();

    const missing = tsvmm(['pause', 'no-such-vm']);
    expect(missing.code).toBe(1);
    expect(missing.stderr.trim()).toBe('tsvmm: error: no VM or container named "no-such-vm" is running (see `tsvmm ps`)');
    expect(tsvmm(['console', 'no-such-vm']).code).toBe(1);
    expect(tsvmm(['run', '--name', 'bad name!', '--detach']).stderr).toMatch(/name "bad name!": use 1-63 letters/);
  });

  it('reports the error of a background VM that cannot start, in one line', () => {
    const r = tsvmm(['run', '--name', 'bg-broken', '--detach', '--kernel', '/nonexistent/kernel']);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe('tsvmm: error: kernel /nonexistent/kernel: no such file');
  });

  it('lists nothing, helpfully, when nothing runs', () => {
    const r = tsvmm(['ps']);
    expect(r.code).toBe(0);
    if (!r.stdout.includes('NAME')) expect(r.stdout).toContain('No VMs or containers are running');
  });
});
