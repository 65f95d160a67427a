// tsvmm-runc as podman's runtime (podman --runtime bin/tsvmm-runc, Debian's podman 4.3 through
// conmon), with storage of its own under a temporary directory and the busybox image loaded.

import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { busyboxImage, engineMissingReason, IMAGE, removeEmptyCgroups, RUNC } from '../helpers/engines.js';

const missing = engineMissingReason(['podman', 'conmon']);
// podman asks root's containers for 1048576 open files; a host that keeps CAP_SYS_RESOURCE from
// us (as this project's machines do) lets neither runc nor tsvmm-runc raise the hard limit there.
const LIMITS = ['--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=4096:4096'];

describe.skipIf(missing)('tsvmm-runc under podman', () => {
  let dir: string;
  const podman = (args: string[]) => {
    const r = spawnSync('podman', [
      '--root', path.join(dir, 'storage'), '--runroot', path.join(dir, 'run'), '--tmpdir', path.join(dir, 'tmp'),
      '--runtime', RUNC, '--cgroup-manager', 'cgroupfs', '--events-backend', 'file', '--storage-driver', 'overlay', ...args,
    ], { encoding: 'utf8', timeout: 120_000 });
    return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  };

  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'tsvmm-podman-'));
    const loaded = podman(['load', '-i', busyboxImage(dir)]);
    if (loaded.code !== 0) throw new Error(`podman load: ${loaded.stderr}`);
  }, 120_000);

  afterAll(() => {
    podman(['rm', '-af']);
    // podman's overlay driver bind-mounts storage/overlay onto itself and leaves it mounted; every
    // mount under the directory goes, the deepest first (storage itself is no mount point).
    spawnSync('sh', ['-c', `findmnt -rn -o TARGET | grep '^${dir}/' | sort -r | xargs -r -n1 umount -l; true`]);
    removeEmptyCgroups('libpod_parent');
    rmSync(dir, { recursive: true, force: true });
  }, 120_000);

  it('podman run --runtime tsvmm-runc: output and exit code; exec into a detached one', () => {
    const r = podman(['run', '--pull', 'never', ...LIMITS, '--rm', '--network', 'none', IMAGE, 'sh', '-c', 'echo hello-from-podman; exit 4']);
    expect(r.stdout, r.stderr).toBe('hello-from-podman\n');
    expect(r.code).toBe(4);
    const name = `p-${process.pid}`;
    expect(podman(['run', '--pull', 'never', ...LIMITS, '-d', '--name', name, '--network', 'none', IMAGE, 'sleep', '300']).code).toBe(0);
    const exec = podman(['exec', name, 'sh', '-c', 'echo exec-ok']);
    expect(exec.stdout).toBe('exec-ok\n');
    expect(podman(['rm', '-f', name]).code).toBe(0);
  }, 240_000);
});
