// `tsvmm container run` and `tsvmm update` as a user types them, and the lifecycle commands
// VMs and containers share (ps, pause, resume, console, stop), through the real CLI, the
// control socket and the cgroup files.

import { spawn, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { BUNDLE, containerMissingReason, readCgroupFile, ROOTFS, v1CgroupOf } from '../helpers/container-rootfs.js';

function tsvmm(args: string[], input = '') {
  const r = spawnSync(process.execPath, ['bin/tsvmm.js', ...args], { encoding: 'utf8', input, timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A user error: exit code 1, exactly one line on stderr, no stack trace. */
function expectOneLineError(r: ReturnType<typeof tsvmm>, message: string | RegExp) {
  expect(r.code, r.stderr).toBe(1);
  const lines = r.stderr.trim().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^tsvmm: error: /);
  if (typeof message === 'string') expect(lines[0]).toBe(`tsvmm: error: ${message}`);
  else expect(lines[0]).toMatch(message);
}

/** A copy of the busybox bundle with config.json replaced (or removed, for null). */
function brokenBundle(config: string | null, rootfs = true): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'tsvmm-broken-'));
  if (rootfs) mkdirSync(path.join(dir, 'rootfs'));
  if (config !== null) writeFileSync(path.join(dir, 'config.json'), config);
  return dir;
}

function busyboxConfig(change: (c: Record<string, unknown> & { linux: Record<string, unknown> }) => void): string {
  const config = JSON.parse(readFileSync(path.join(BUNDLE, 'config.json'), 'utf8'));
  change(config);
  return JSON.stringify(config);
}

describe('tsvmm container --help', () => {
  it('documents container run and update', () => {
    const run = tsvmm(['container', 'run', '--help']);
    expect(run.code).toBe(0);
    for (const option of ['--bundle', '--rootfs', '--layer', '--mem', '--cpus', '--pids', '--hostname', '--net', '--name', '--detach']) expect(run.stdout).toContain(option);
    const update = tsvmm(['update', '--help']);
    expect(update.code).toBe(0);
    for (const option of ['--mem', '--cpus', '--pids']) expect(update.stdout).toContain(option);
  });
});

describe.skipIf(containerMissingReason)('tsvmm container run', () => {
  const names: string[] = [];
  afterAll(() => { for (const n of names) tsvmm(['stop', n]); });

  it('passes output, input and the exit code through', () => {
    const r = tsvmm(['container', 'run', '--rootfs', ROOTFS, '--hostname', 'box', '--', 'sh', '-c', 'read x; echo "$x from $(hostname)"; echo oops >&2; exit 7'], 'hello\n');
    expect(r.stdout).toBe('hello from box\n');
    expect(r.stderr).toBe('oops\n');
    expect(r.code).toBe(7);
    // Arguments after -- arrive word for word.
    expect(tsvmm(['container', 'run', '--rootfs', ROOTFS, '--', 'echo', '010', '1e3', '--rootfs']).stdout).toBe('010 1e3 --rootfs\n');
  });

  it('runs the busybox OCI bundle, as runc would, with its command or another', () => {
    const r = tsvmm(['container', 'run', '--bundle', BUNDLE, '--', 'sh', '-c', 'hostname; touch /x || echo "read-only root"; grep CapEff /proc/self/status']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^busybox\n/);
    expect(r.stdout).toContain('read-only root');
    expect(r.stdout).toMatch(/CapEff:\s+0000000020000420/); // the bundle's three capabilities
    // The bundle's own command is sh, reading its stdin.
    expect(tsvmm(['container', 'run', '--bundle', BUNDLE], 'echo "from stdin"; exit 3\n')).toMatchObject({ code: 3, stdout: 'from stdin\n' });
  });

  it('reports the OOM killer as the exit reason, with 137', () => {
    const r = tsvmm(['container', 'run', '--rootfs', ROOTFS, '--mem', '32M', '--name', 'oom-cli', '--', 'dd', 'if=/dev/zero', 'of=/dev/null', 'bs=64M', 'count=1']);
    expect(r.code).toBe(137);
    expect(r.stderr.trim()).toBe('tsvmm: oom-cli killed by the OOM killer: out of memory (limit 32 MiB)');
  });

  it('gives one clear line and exit 1 for broken bundles and a missing --rootfs', () => {
    expectOneLineError(tsvmm(['container', 'run', '--rootfs', '/no/such/dir', '--', 'true']), '--rootfs /no/such/dir: no such directory');
    expectOneLineError(tsvmm(['container', 'run', '--', 'true']), 'say which root filesystem to use: --rootfs DIR, or --bundle DIR for an OCI bundle');
    expectOneLineError(tsvmm(['container', 'run', '--rootfs', ROOTFS]), 'say what to run: tsvmm container run --rootfs DIR -- COMMAND [ARGS...]');
    const noConfig = brokenBundle(null);
    expectOneLineError(tsvmm(['container', 'run', '--bundle', noConfig]), `bundle ${noConfig} has no config.json (\`runc spec\` writes one)`);
    const badJson = brokenBundle('{"ociVersion": "1.0.2",\n "process": ');
    expectOneLineError(tsvmm(['container', 'run', '--bundle', badJson]), new RegExp(`^tsvmm: error: ${path.join(badJson, 'config.json')} is not valid JSON: `));
    const noRootfs = brokenBundle(readFileSync(path.join(BUNDLE, 'config.json'), 'utf8'), false);
    expectOneLineError(tsvmm(['container', 'run', '--bundle', noRootfs]), `bundle ${noRootfs}: root.path "rootfs": no such directory (${path.join(noRootfs, 'rootfs')})`);
    const seccomp = brokenBundle(busyboxConfig((c) => { c.linux.seccomp = { defaultAction: 'SCMP_ACT_NOTIFY' }; }));
    expectOneLineError(tsvmm(['container', 'run', '--bundle', seccomp]), new RegExp(`${path.join(seccomp, 'config.json')}: linux\\.seccomp\\.defaultAction "SCMP_ACT_NOTIFY" is not supported by tsvmm`));
    const userns = brokenBundle(busyboxConfig((c) => { (c.linux.namespaces as unknown[]).push({ type: 'user' }); }));
    expectOneLineError(tsvmm(['container', 'run', '--bundle', userns]), /linux\.uidMappings and linux\.gidMappings are both needed with a user namespace$/);
    expectOneLineError(tsvmm(['container', 'run', '--rootfs', ROOTFS, '--mem', 'lots', '--', 'true']), '--mem "lots": not a size (try 256M or 1G)');
  });

  it('passes 127 for a command that is not in the container', () => {
    const r = tsvmm(['container', 'run', '--rootfs', ROOTFS, '--', 'no-such-command']);
    expect(r.code).toBe(127);
    expect(r.stderr.trim()).toMatch(/^tsvmm: error: exec no-such-command: not found in the container's PATH/);
  });

  it('stacks --layer directories over the root', () => {
    const layer = mkdtempSync(path.join(tmpdir(), 'tsvmm-layer-'));
    cpSync(path.join(ROOTFS, 'etc'), path.join(layer, 'etc'), { recursive: true });
    writeFileSync(path.join(layer, 'etc/hostname'), 'layered\n');
    const r = tsvmm(['container', 'run', '--rootfs', ROOTFS, '--layer', layer, '--', 'sh', '-c', 'cat /etc/hostname; echo x > /etc/hostname && echo writable']);
    expect(r.stdout).toBe('layered\nwritable\n');
    expect(readFileSync(path.join(layer, 'etc/hostname'), 'utf8')).toBe('layered\n');
  });

  it('run --detach, ps, pause, resume, update, console and stop, like a VM', async () => {
    names.push('ctr-bg');
    const started = tsvmm(['container', 'run', '--rootfs', ROOTFS, '--name', 'ctr-bg', '--detach', '--mem', '64M', '--cpus', '0.5', '--pids', '40', '--stop-timeout', '1',
      '--', 'sh', '-c', 'echo "up as $(hostname)"; while read line; do echo "got: $line"; done']);
    expect(started.code, started.stderr).toBe(0);
    expect(started.stdout.trim()).toBe('ctr-bg');

    const ps = JSON.parse(tsvmm(['ps', '--json']).stdout) as { name: string; kind: string; state: string; cpus: number; memory: number; pid: number }[];
    const row = ps.find((r) => r.name === 'ctr-bg')!;
    expect(row).toMatchObject({ kind: 'container', state: 'running', cpus: 0.5, memory: 64 << 20 });
    expect(tsvmm(['ps']).stdout).toMatch(/^ctr-bg\s+container\s+running\s+0\.5\s+64 MiB/m);

    // The supervisor's cgroups hold the container's (v1 on this host).
    const freezer = path.join(v1CgroupOf(row.pid, 'freezer'), 'tsvmm/ctr-bg');
    const memory = path.join(v1CgroupOf(row.pid, 'memory'), 'tsvmm/ctr-bg');
    const cpu = path.join(v1CgroupOf(row.pid, 'cpu'), 'tsvmm/ctr-bg');
    const pids = path.join(v1CgroupOf(row.pid, 'pids'), 'tsvmm/ctr-bg');

    expect(tsvmm(['pause', 'ctr-bg']).stdout.trim()).toBe('ctr-bg: paused');
    expect(readCgroupFile(freezer, 'freezer.state')).toBe('FROZEN');
    expect(JSON.parse(tsvmm(['ps', '--json']).stdout)[0]).toMatchObject({ name: 'ctr-bg', state: 'paused' });
    expect(tsvmm(['resume', 'ctr-bg']).stdout.trim()).toBe('ctr-bg: running');
    expect(readCgroupFile(freezer, 'freezer.state')).toBe('THAWED');

    const update = tsvmm(['update', 'ctr-bg', '--mem', '128M', '--cpus', '1.5', '--pids', '64']);
    expect(update.stdout.trim(), update.stderr).toBe('ctr-bg: memory 128 MiB, cpus 1.5, pids 64');
    expect(readCgroupFile(memory, 'memory.limit_in_bytes')).toBe(String(128 << 20));
    expect(readCgroupFile(cpu, 'cpu.cfs_quota_us')).toBe('150000');
    expect(readCgroupFile(cpu, 'cpu.cfs_period_us')).toBe('100000');
    expect(readCgroupFile(pids, 'pids.max')).toBe('64');
    expect(tsvmm(['ps']).stdout).toMatch(/^ctr-bg\s+container\s+running\s+1\.5\s+128 MiB/m);
    expectOneLineError(tsvmm(['update', 'ctr-bg', '--cpus', '0']), '--cpus 0: must be a positive number, such as 0.5 or 2');
    expectOneLineError(tsvmm(['update', 'ctr-bg']), 'say what to change: --mem SIZE, --cpus N and/or --pids N');
    expect(readCgroupFile(cpu, 'cpu.cfs_quota_us')).toBe('150000');

    // The console replays what it printed and types into its stdin.
    const seen = await new Promise<string>((resolve, reject) => {
      const p = spawn(process.execPath, ['bin/tsvmm.js', 'console', 'ctr-bg'], { stdio: ['pipe', 'pipe', 'pipe'] });
      let out = '';
      const timer = setTimeout(() => { p.kill(); reject(new Error(`console showed:\n${out}`)); }, 20_000);
      p.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes('got: typed in')) {
          clearTimeout(timer);
          p.kill();
          resolve(out);
        }
      });
      setTimeout(() => p.stdin.write('typed in\n'), 200);
    });
    expect(seen).toContain('up as ctr-bg');

    // sh, as pid 1, ignores SIGTERM: stop waits --stop-timeout, then SIGKILLs.
    expect(tsvmm(['stop', 'ctr-bg']).stdout.trim()).toBe('ctr-bg: stopping');
    await expect.poll(() => tsvmm(['ps', '--json']).stdout, { timeout: 10_000 }).not.toContain('ctr-bg');
    names.pop();
  });

  it('refuses update for a name that is not running, and a name that is taken', () => {
    expectOneLineError(tsvmm(['update', 'no-such-ctr', '--mem', '64M']), 'no VM or container named "no-such-ctr" is running (see `tsvmm ps`)');
    names.push('ctr-taken');
    expect(tsvmm(['container', 'run', '--rootfs', ROOTFS, '--name', 'ctr-taken', '--detach', '--', 'sleep', '30']).code).toBe(0);
    expectOneLineError(tsvmm(['container', 'run', '--rootfs', ROOTFS, '--name', 'ctr-taken', '--', 'true']), 'an instance named "ctr-taken" is already running');
    expect(tsvmm(['stop', 'ctr-taken']).code).toBe(0);
  });
});
