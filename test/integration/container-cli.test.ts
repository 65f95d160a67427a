// `tsvmm container run` and `tsvmm update` as a user types them, and the lifecycle commands
// VMs and containers share (ps, pause, resume, console, stop), through the real CLI, the
// control socket and the cgroup files.

import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openConsole } from '../../src/api/control-client.js';
import { runtimeDirKey } from '../../src/api/runtime-dir.js';
import { hostInterfaceName } from '../../src/container/network.js';
import { BUNDLE, containerMissingReason, readCgroupFile, ROOTFS, v1CgroupOf } from '../helpers/container-rootfs.js';

function tsvmm(args: string[], input = '', env: NodeJS.ProcessEnv = {}) {
  const r = spawnSync(process.execPath, ['bin/tsvmm.js', ...args], { encoding: 'utf8', input, timeout: 60_000, env: { ...process.env, ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Stops `name` at once (SIGKILL) and waits until it is gone, so that no later test file sees it. */
async function stopNow(name: string): Promise<void> {
  tsvmm(['stop', name, '--timeout', '0']);
  const listed = () => (JSON.parse(tsvmm(['ps', '--json']).stdout) as { name: string }[]).some((r) => r.name === name);
  for (let i = 0; i < 100 && listed(); i++) await new Promise((r) => setTimeout(r, 100));
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
  afterAll(async () => { for (const n of names) await stopNow(n); });

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
    // A bundle's limits are checked as the flags are: a 1-byte memory limit would only OOM-kill the init.
    const tinyMemory = brokenBundle(busyboxConfig((c) => { c.linux.resources = { memory: { limit: 1 } }; }));
    expectOneLineError(tsvmm(['container', 'run', '--bundle', tinyMemory, '--', 'true']),
      `${path.join(tinyMemory, 'config.json')}: linux.resources.memory.limit 1 bytes: at least 4 MiB is needed to start anything`);
    expectOneLineError(tsvmm(['container', 'run', '--rootfs', ROOTFS, '--mem', '1', '--', 'true']), '--mem 1: at least 4 MiB is needed to start anything');
    expectOneLineError(tsvmm(['container', 'run', '--rootfs', ROOTFS, '--cpus', 'abc', '--', 'true']), /^tsvmm: error: --cpus "?abc"?: not a number/);
  });

  it('gives a bundle that asks for a terminal (process.terminal) a pty, as runc does; --no-tty gives pipes', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tsvmm-tty-bundle-'));
    writeFileSync(path.join(dir, 'config.json'), busyboxConfig((c) => {
      Object.assign(c.process as object, { terminal: true, consoleSize: { height: 30, width: 100 } });
      c.root = { path: ROOTFS, readonly: true };
    }));
    // Not from a terminal (stdin is a pipe here): the pty is the bundle's size, its output has the pty's CRLFs.
    const pty = tsvmm(['container', 'run', '--bundle', dir, '--', 'sh', '-c', 'tty; stty size']);
    expect(pty.code, pty.stderr).toBe(0);
    expect(pty.stdout).toBe('/dev/pts/0\r\n30 100\r\n');
    const pipes = tsvmm(['container', 'run', '--bundle', dir, '--no-tty', '--', 'sh', '-c', 'tty || true']);
    expect(pipes).toMatchObject({ code: 0, stdout: 'not a tty\n' });
    // In the background too: the pty is the one `tsvmm console` attaches to.
    const name = `tty-bundle-${process.pid}`;
    const started = tsvmm(['container', 'run', '--bundle', dir, '--name', name, '--detach', '--', 'sh', '-c', 'tty; sleep 30']);
    expect(started.code, started.stderr).toBe(0);
    const console = await openConsole(name);
    console.socket.destroy();
    await stopNow(name);
    expect(console.terminal).toBe(true);
  });

  it('passes 127 for a command that is not in the container, in the foreground and with --detach', () => {
    const r = tsvmm(['container', 'run', '--rootfs', ROOTFS, '--', 'no-such-command']);
    expect(r.code).toBe(127);
    expect(r.stderr.trim()).toMatch(/^tsvmm: error: exec no-such-command: not found in the container's PATH/);
    // In the background the exec fails after the name is claimed: the start still reports it.
    const name = `notfound-${process.pid}`;
    const detached = tsvmm(['container', 'run', '--rootfs', ROOTFS, '--name', name, '--detach', '--', 'no-such-command']);
    expect(detached.code, detached.stderr).toBe(127);
    expect(detached.stdout).toBe('');
    expect(detached.stderr).toMatch(/^tsvmm: error: exec no-such-command: not found in the container's PATH[^\n]*\n$/);
    expect(tsvmm(['ps']).stdout).not.toContain(name);
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

    const ps = JSON.parse(tsvmm(['ps', '--json']).stdout) as { name: string; kind: string; state: string; cpus: number; memory: number; memoryUsed: { bytes: number; how: string }; pid: number; supervisorPid: number }[];
    const row = ps.find((r) => r.name === 'ctr-bg')!;
    expect(row).toMatchObject({ kind: 'container', state: 'running', cpus: 0.5, memory: 64 << 20, memoryUsed: { how: 'cgroup' }, limits: { memory: 64 << 20, cpus: 0.5, pids: 40 } });
    expect(row.memoryUsed.bytes).toBeGreaterThan(0);
    expect(row.memoryUsed.bytes).toBeLessThanOrEqual(64 << 20);
    // MEMORY is its cgroup's charge, LIMIT its --mem.
    expect(tsvmm(['ps']).stdout).toMatch(new RegExp(`^ctr-bg\\s+container\\s+running\\s+0\\.5\\s+\\d+(\\.\\d)? [KM]iB\\s+64 MiB\\s+\\S+\\s+\\S+\\s+${row.pid}\\s+-$`, 'm'));
    // PID is the container's init, pid 1 inside; the Node process supervising it is beside it.
    expect(readFileSync(`/proc/${row.pid}/status`, 'utf8')).toMatch(new RegExp(`^NSpid:\\s+${row.pid}\\s+1$`, 'm'));
    expect(row.supervisorPid).not.toBe(row.pid);

    // Its cgroups (v1 on this host): tsvmm/NAME-KEY, the key naming the runtime directory, so
    // that a container of the same name from another runtime directory cannot collide.
    const freezer = v1CgroupOf(row.pid, 'freezer');
    const memory = v1CgroupOf(row.pid, 'memory');
    const cpu = v1CgroupOf(row.pid, 'cpu');
    const pids = v1CgroupOf(row.pid, 'pids');
    expect(freezer).toMatch(/\/tsvmm\/ctr-bg-[0-9a-f]{8}$/);
    expect(freezer.startsWith(v1CgroupOf(row.supervisorPid, 'freezer'))).toBe(true);

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
    expect(tsvmm(['ps']).stdout).toMatch(/^ctr-bg\s+container\s+running\s+1\.5\s+\d+(\.\d)? [KM]iB\s+128 MiB\s/m);
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

/** tsvmm, asynchronously: several at once. */
function tsvmmAsync(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const p = spawn(process.execPath, ['bin/tsvmm.js', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    p.stdout.on('data', (d: Buffer) => { stdout += d.toString(); });
    p.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    p.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const ipMissing = spawnSync('ip', ['-V']).status === 0 ? undefined : 'no iproute2 (ip)';

describe.skipIf(containerMissingReason)('names and leftovers', () => {
  const runtimeDir = process.env.TSVMM_RUNTIME_DIR!;
  const mine = (name: string) => readdirSync(runtimeDir).filter((f) => f.startsWith(`${name}.`));

  it('three concurrent --detach runs with one name: exactly one runs, the others fail on their own stderr', async () => {
    const name = `race-${process.pid}`;
    try {
      const runs = await Promise.all([1, 2, 3].map(() => tsvmmAsync(['container', 'run', '--rootfs', ROOTFS, '--name', name, '--detach', '--', 'sleep', '60'])));
      const won = runs.filter((r) => r.code === 0);
      const lost = runs.filter((r) => r.code !== 0);
      expect(won, JSON.stringify(runs)).toHaveLength(1);
      expect(won[0]!.stdout).toBe(`${name}\n`);
      expect(lost).toHaveLength(2);
      for (const r of lost) {
        expect(r.code).toBe(1);
        expect(r.stderr).toBe(`tsvmm: error: an instance named "${name}" is already running\n`);
      }
      const rows = (JSON.parse(tsvmm(['ps', '--json']).stdout) as { name: string; memoryUsed: { how: string }; limits: { memory: number | null } }[]).filter((r) => r.name === name);
      expect(rows).toHaveLength(1);
      // Without --mem: no memory limit (LIMIT none), and MEMORY is still its cgroup's charge, not the host's memory.
      expect(rows[0]).toMatchObject({ memoryUsed: { how: 'cgroup' }, limits: { memory: null } });
      expect(tsvmm(['ps']).stdout).toMatch(new RegExp(`^${name}\\s+container\\s+running\\s+\\S+\\s+\\d+(\\.\\d)? [KM]iB\\s+none\\s`, 'm'));
      // No start log is left behind: only the winner's socket and record.
      expect(mine(name).sort()).toEqual([`${name}.json`, `${name}.sock`]);
    } finally {
      await stopNow(name);
    }
  });

  it.skipIf(ipMissing)('run --detach whose network set-up fails after the claim: one line, exit 1, nothing left behind', () => {
    const name = `netfail-${process.pid}`;
    const id = `${name}-${runtimeDirKey(runtimeDir)}`;
    // An `ip` that makes the veth pair (the real one does) and then cannot configure the
    // container's namespace: a failure after the name is claimed, the cgroups made, the layer
    // mounted and the init started, and after the host end of the pair exists.
    const bin = mkdtempSync(path.join(tmpdir(), 'tsvmm-fake-ip-'));
    const realIp = spawnSync('sh', ['-c', 'command -v ip'], { encoding: 'utf8' }).stdout.trim();
    writeFileSync(path.join(bin, 'ip'), `#!/bin/sh\nif [ "$1" = "-n" ]; then echo "RTNETLINK answers: Operation not permitted (test)" >&2; exit 2; fi\nexec ${realIp} "$@"\n`);
    chmodSync(path.join(bin, 'ip'), 0o755);
    const stateDir = mkdtempSync(path.join(tmpdir(), 'tsvmm-state-'));
    const layer = mkdtempSync(path.join(tmpdir(), 'tsvmm-layer-'));
    const r = tsvmm(['container', 'run', '--rootfs', ROOTFS, '--layer', layer, '--net', 'veth', '--mem', '64M', '--name', name, '--detach', '--', 'sleep', '60'], '',
      { PATH: `${bin}:${process.env.PATH}`, TSVMM_STATE_DIR: stateDir });
    expectOneLineError(r, new RegExp(`^tsvmm: error: ip -n tsvmm-${id} .*: RTNETLINK answers: Operation not permitted \\(test\\)$`));
    expect(r.stdout).toBe('');
    // Not running, and none of its record, socket or start log; how it ended stays for watchers.
    expect(tsvmm(['ps']).stdout).not.toContain(name);
    expect(mine(name)).toEqual([`${name}.outcome`]);
    expect(existsSync(path.join(runtimeDir, 'containers', id))).toBe(false);
    for (const controller of readdirSync('/sys/fs/cgroup')) expect(existsSync(path.join('/sys/fs/cgroup', controller, 'tsvmm', id)), controller).toBe(false);
    expect(existsSync(`/sys/class/net/${hostInterfaceName(name, id)}`)).toBe(false);
    expect(existsSync(`/run/netns/tsvmm-${id}`)).toBe(false);
    const leases = existsSync('/run/tsvmm-net') ? readdirSync('/run/tsvmm-net') : [];
    expect(leases.filter((f) => { try { return readFileSync(path.join('/run/tsvmm-net', f), 'utf8').includes(id); } catch { return false; } })).toEqual([]);
    expect(readdirSync(path.join(stateDir, 'containers'))).toEqual([]);
    expect(readdirSync(layer)).toEqual([]);
  });

  it.skipIf(ipMissing)('kill -9 of the supervisor: the next command removes its cgroups, its writable layer and its files; ps showed its address', async () => {
    const name = `killed-${process.pid}`;
    const layer = mkdtempSync(path.join(tmpdir(), 'tsvmm-layer-'));
    const started = tsvmm(['container', 'run', '--rootfs', ROOTFS, '--layer', layer, '--net', 'veth', '--mem', '64M', '--name', name, '--detach', '--', 'sh', '-c', 'echo x > /written; sleep 60']);
    expect(started.code, started.stderr).toBe(0);
    const row = (JSON.parse(tsvmm(['ps', '--json']).stdout) as { name: string; pid: number; supervisorPid: number; address?: string }[]).find((r) => r.name === name)!;
    expect(row.address).toMatch(/^10\.88\.\d+\.\d+$/);
    expect(tsvmm(['ps']).stdout).toMatch(new RegExp(`^${name}\\s+container\\s+running.*\\s${row.pid}\\s+${row.address!.replace(/\./g, '\\.')}$`, 'm'));
    const cgroups = ['memory', 'pids', 'freezer', 'cpu'].map((c) => v1CgroupOf(row.pid, c));
    const record = JSON.parse(readFileSync(path.join(runtimeDir, `${name}.json`), 'utf8')) as { leftovers: { dirs: string[] } };
    const [layerDir] = record.leftovers.dirs;
    expect(existsSync(path.join(layerDir!, 'upper/written'))).toBe(true);
    for (const dir of cgroups) expect(existsSync(dir)).toBe(true);

    process.kill(row.supervisorPid, 'SIGKILL');
    // The init dies with its supervisor (PR_SET_PDEATHSIG).
    await expect.poll(() => existsSync(`/proc/${row.pid}`), { timeout: 10_000 }).toBe(false);
    expect(tsvmm(['ps']).code).toBe(0);
    for (const dir of cgroups) expect(existsSync(dir), dir).toBe(false);
    expect(existsSync(layerDir!)).toBe(false);
    expect(mine(name)).toEqual([]);
    // And the name is free again.
    expect(tsvmm(['container', 'run', '--rootfs', ROOTFS, '--name', name, '--', 'true']).code).toBe(0);
  });
});
