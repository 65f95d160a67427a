// tsvmm-runc driven by a real containerd (Debian's 1.6, private: its own root, state and socket)
// through the runc shim: `ctr run --runtime io.containerd.runc.v2 --runc-binary bin/tsvmm-runc`
// with the busybox image this test builds and imports. Then Kubernetes' path: the CRI plugin's
// pod sandbox and app container specs (test/fixtures/oci-engine-specs) run through tsvmm-runc
// in the order the CRI plugin runs them, the app joining the sandbox's namespaces by path.

import { execFileSync, spawnSync } from 'node:child_process';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOTFS } from '../helpers/container-rootfs.js';
import { engineMissingReason, IMAGE, RUNC, startContainerd, type Containerd } from '../helpers/engines.js';

const missing = engineMissingReason(['containerd', 'ctr', 'script']);
const suffix = `${process.pid}-${Math.random().toString(36).slice(2, 6)}`;
const run = ['--runtime', 'io.containerd.runc.v2', '--runc-binary', RUNC];

describe.skipIf(missing)('tsvmm-runc under containerd', () => {
  let containerd: Containerd;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'tsvmm-containerd-'));
    containerd = await startContainerd(dir);
  }, 120_000);

  afterAll(async () => {
    await containerd?.stop();
  }, 60_000);

  it('ctr run: the output and the exit code pass through', () => {
    const r = containerd.ctr(['run', '--rm', ...run, IMAGE, `out-${suffix}`, 'sh', '-c', 'echo hello-from-tsvmm-runc; hostname; exit 3']);
    expect(r.stdout).toContain('hello-from-tsvmm-runc');
    expect(r.code).toBe(3);
    expect(containerd.ctr(['containers', 'ls', '-q']).stdout).not.toContain(`out-${suffix}`);
  }, 60_000);

  it('ctr run -t: the process has a pty of its own, sent through the console socket', () => {
    const command = ['ctr', '-a', containerd.address, '-n', 'tsvmm', 'run', '-t', '--rm', ...run, IMAGE, `tty-${suffix}`, 'sh', '-c', 'tty; exit 5'].join(' ');
    // script gives ctr the terminal it insists on.
    const r = spawnSync('script', ['-qec', command, '/dev/null'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stdout).toMatch(/\/dev\/pts\/\d+/);
    expect(r.status).toBe(5);
  }, 60_000);

  it('a detached task: exec, pause, resume, kill and delete', () => {
    const id = `detached-${suffix}`;
    expect(containerd.ctr(['run', '-d', ...run, IMAGE, id, 'sleep', '300']).code).toBe(0);
    const status = () => containerd.ctr(['tasks', 'ls']).stdout.split('\n').find((l) => l.startsWith(id))?.trim().split(/\s+/)[2];
    expect(status()).toBe('RUNNING');
    const exec = containerd.ctr(['tasks', 'exec', '--exec-id', 'e1', id, 'sh', '-c', 'echo exec-ok; ps | grep -c sleep; exit 4']);
    expect(exec.stdout).toContain('exec-ok');
    expect(exec.code).toBe(4);
    expect(containerd.ctr(['tasks', 'pause', id]).code).toBe(0);
    expect(status()).toBe('PAUSED');
    expect(containerd.ctr(['tasks', 'resume', id]).code).toBe(0);
    expect(status()).toBe('RUNNING');
    expect(containerd.ctr(['tasks', 'kill', '-s', 'SIGKILL', id]).code).toBe(0);
    for (let i = 0; i < 100 && status() !== 'STOPPED'; i++) execFileSync('sleep', ['0.05']);
    expect(status()).toBe('STOPPED');
    expect(containerd.ctr(['tasks', 'delete', id]).code).toBe(0);
    expect(containerd.ctr(['containers', 'delete', id]).code).toBe(0);
    // Nothing of it is left under tsvmm-runc's root.
    expect(execFileSync(RUNC, ['--root', '/run/containerd/runc/tsvmm', 'list', '-q'], { encoding: 'utf8' })).not.toContain(id);
  }, 90_000);
});

/** A bundle for a CRI-made config.json: the busybox rootfs, bind sources made under `dir`. */
function criBundle(dir: string, fixture: string, change: (config: Record<string, any>) => void): string { // eslint-disable-line @typescript-eslint/no-explicit-any
  const config = JSON.parse(readFileSync(path.resolve('test/fixtures/oci-engine-specs', fixture), 'utf8'));
  const bundle = path.join(dir, fixture.replace('.json', ''));
  mkdirSync(bundle, { recursive: true });
  config.root.path = ROOTFS;
  for (const m of config.mounts) {
    if (!(m.options ?? []).includes('rbind')) continue;
    m.source = path.join(dir, 'host', m.source);
    if (m.destination === '/dev/shm') mkdirSync(m.source, { recursive: true });
    else {
      mkdirSync(path.dirname(m.source), { recursive: true });
      writeFileSync(m.source, m.destination === '/etc/hostname' ? 'pod-host\n' : '');
    }
  }
  // The root is shared between the two: read-only for both.
  config.root.readonly = true;
  change(config);
  writeFileSync(path.join(bundle, 'config.json'), JSON.stringify(config));
  return bundle;
}

describe.skipIf(engineMissingReason([]))('Kubernetes\' path: a CRI pod sandbox and its app container', () => {
  it('runs the sandbox, then the app in its pid, ipc, uts and network namespaces, as the CRI plugin orders them', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'tsvmm-cri-'));
    const root = path.join(dir, 'runc-root');
    // Output into files: a created container keeps the stdio it was given (pipes would stay open).
    const runc = (args: string[]) => {
      const out = path.join(dir, 'stdout');
      const err = path.join(dir, 'stderr');
      const fds = [openSync(out, 'w'), openSync(err, 'w')];
      const r = spawnSync(RUNC, ['--root', root, '--log', path.join(dir, 'log.json'), '--log-format', 'json', ...args], { stdio: ['ignore', ...fds], timeout: 60_000 });
      fds.forEach(closeSync);
      return { status: r.status, stdout: readFileSync(out, 'utf8'), stderr: readFileSync(err, 'utf8') };
    };
    const sandboxId = `sandbox-${suffix}`;
    const appId = `app-${suffix}`;
    try {
      // The pause image's /pause: here a sleeping busybox.
      const sandbox = criBundle(dir, 'kubernetes-cri-pod-sandbox.json', (c) => {
        c.process.args = ['sleep', '600'];
        c.linux.cgroupsPath = `/tsvmm/${sandboxId}`;
      });
      expect(runc(['create', '--bundle', sandbox, '--pid-file', path.join(dir, 'sandbox.pid'), sandboxId]).status).toBe(0);
      expect(runc(['start', sandboxId]).status).toBe(0);
      const sandboxPid = Number(readFileSync(path.join(dir, 'sandbox.pid'), 'utf8'));
      const app = criBundle(dir, 'kubernetes-cri-container.json', (c) => {
        for (const ns of c.linux.namespaces) if (ns.path) ns.path = ns.path.replace('/proc/17351/', `/proc/${sandboxPid}/`);
        c.linux.cgroupsPath = `/tsvmm/${appId}`;
      });
      // The app's output goes to our pipe; its init is the helper's child, so read it through `run`.
      const r = runc(['run', '--bundle', app, appId]);
      expect(r.stderr).toBe('');
      expect(r.stdout).toContain('hello-from-cri');
      // pid 1 of the namespace it joined is the sandbox's process.
      expect(r.stdout).toContain('sleep 600');
      expect(r.status).toBe(0);
      // Same network namespace as the sandbox, which has none of its own: the host's.
      expect(runc(['state', sandboxId]).stdout).toContain('"status": "running"');
      expect(runc(['delete', sandboxId]).stderr.trim()).toBe(`cannot delete container ${sandboxId} that is not stopped: running`);
      expect(runc(['delete', '--force', sandboxId]).status).toBe(0);
      expect(runc(['list', '-q']).stdout.trim()).toBe('');
    } finally {
      runc(['delete', '--force', appId]);
      runc(['delete', '--force', sandboxId]);
      rmSync(dir, { recursive: true, force: true });
    }
  }, 90_000);
});
