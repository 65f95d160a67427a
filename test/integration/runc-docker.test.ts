// tsvmm-runc as a Docker runtime (dockerd --add-runtime tsvmm=bin/tsvmm-runc, a private daemon
// with Debian's docker.io): run, exec, stop, -it, and two containers on a user-defined bridge
// network reaching each other, which Docker wires through its prestart hook.

import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { engineMissingReason, startDockerd, type Dockerd } from '../helpers/engines.js';

const missing = engineMissingReason(['dockerd', 'script']);
const suffix = `${process.pid}${Math.random().toString(36).slice(2, 6)}`;
const IMAGE = 'tsvmm-busybox:latest';

describe.skipIf(missing)('tsvmm-runc under Docker', () => {
  let dockerd: Dockerd;

  beforeAll(async () => {
    dockerd = await startDockerd(mkdtempSync(path.join(tmpdir(), 'tsvmm-dockerd-')));
  }, 180_000);

  afterAll(async () => {
    await dockerd?.stop();
  }, 120_000);

  it('docker run --runtime tsvmm: output and exit code', () => {
    const r = dockerd.docker(['run', '--rm', '--runtime', 'tsvmm', '--network', 'none', IMAGE, 'sh', '-c', 'echo hello-from-docker; exit 6']);
    expect(r.stdout).toBe('hello-from-docker\n');
    expect(r.code).toBe(6);
  }, 60_000);

  it('exec into a running container, then stop it (SIGTERM to its init)', () => {
    const name = `exec-${suffix}`;
    expect(dockerd.docker(['run', '-d', '--name', name, '--runtime', 'tsvmm', '--network', 'none', IMAGE, 'sh', '-c', 'trap "exit 42" TERM; while :; do sleep 0.1; done']).code).toBe(0);
    const exec = dockerd.docker(['exec', name, 'sh', '-c', 'echo exec-ok; exit 3']);
    expect(exec.stdout).toBe('exec-ok\n');
    expect(exec.code).toBe(3);
    expect(dockerd.docker(['stop', '-t', '10', name]).code).toBe(0);
    expect(dockerd.docker(['inspect', '-f', '{{.State.ExitCode}}', name]).stdout.trim()).toBe('42');
    expect(dockerd.docker(['rm', name]).code).toBe(0);
  }, 60_000);

  it('docker run -it: a terminal of its own', () => {
    const r = spawnSync('script', ['-qec', `${dockerd.command} run --rm -it --runtime tsvmm --network none ${IMAGE} sh -c 'tty; exit 2'`, '/dev/null'], { encoding: 'utf8', timeout: 60_000 });
    expect(r.stdout).toMatch(/\/dev\/pts\/\d+/);
    expect(r.status).toBe(2);
  }, 60_000);

  it('two containers on a user-defined bridge reach each other by name', () => {
    const network = `tsvmm-${suffix}`;
    const octet = 100 + (process.pid % 100);
    expect(dockerd.docker(['network', 'create', '--subnet', `10.213.${octet}.0/24`, network]).code).toBe(0);
    const server = `server-${suffix}`;
    expect(dockerd.docker(['run', '-d', '--name', server, '--runtime', 'tsvmm', '--network', network, IMAGE, 'sh', '-c', 'echo pong > /tmp/index.html; httpd -f -p 8080 -h /tmp']).code).toBe(0);
    const r = dockerd.docker(['run', '--rm', '--runtime', 'tsvmm', '--network', network, IMAGE, 'sh', '-c', `ip -4 addr show eth0 | grep -c inet; for i in 1 2 3 4 5 6 7 8 9 10; do wget -qO- http://${server}:8080/index.html && exit 0; sleep 0.3; done; exit 1`]);
    expect(r.stdout).toBe('1\npong\n');
    expect(r.code).toBe(0);
    dockerd.docker(['rm', '-f', server]);
    expect(dockerd.docker(['network', 'rm', network]).code).toBe(0);
  }, 90_000);
});
