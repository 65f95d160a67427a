// Real container engines for tsvmm-runc's tests: a private containerd (its own root, state and
// socket under a temporary directory, no CRI plugin), and a busybox image built here from the
// test bundle's rootfs, as an OCI image layout that is also a `docker save` archive, so that
// `ctr images import`, `docker load` and `podman load` all take it. No registry is involved.

import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, openSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { containerMissingReason, ROOTFS } from './container-rootfs.js';

export const RUNC = path.resolve('bin/tsvmm-runc');
export const IMAGE = 'docker.io/library/tsvmm-busybox:latest';

/** Why engine tests cannot run here, or undefined. */
export function engineMissingReason(binaries: string[]): string | undefined {
  if (containerMissingReason) return containerMissingReason;
  if (!existsSync(path.resolve('dist/bundle/runc.cjs'))) return 'dist/bundle/runc.cjs is not built (npm run build): engine tests skipped';
  for (const binary of binaries) {
    try {
      execFileSync('sh', ['-c', `command -v ${binary}`], { stdio: 'ignore' });
    } catch {
      return `${binary} is not installed (scripts/ensure-test-deps.sh installs it from Debian): engine tests skipped`;
    }
  }
  return undefined;
}

function blob(dir: string, data: Buffer | string): { digest: string; size: number } {
  const buffer = Buffer.isBuffer(data) ? data : Buffer.from(data);
  const hex = createHash('sha256').update(buffer).digest('hex');
  writeFileSync(path.join(dir, 'blobs/sha256', hex), buffer);
  return { digest: `sha256:${hex}`, size: buffer.length };
}

/** dir/image.tar: busybox as an OCI layout plus docker's manifest.json. */
export function busyboxImage(dir: string): string {
  const layout = path.join(dir, 'image-layout');
  rmSync(layout, { recursive: true, force: true });
  mkdirSync(path.join(layout, 'blobs/sha256'), { recursive: true });
  const layer = blob(layout, execFileSync('tar', ['-C', ROOTFS, '--numeric-owner', '-cf', '-', '.'], { maxBuffer: 64 << 20 }));
  const config = blob(layout, JSON.stringify({
    architecture: 'amd64', os: 'linux',
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['sh'], WorkingDir: '/' },
    rootfs: { type: 'layers', diff_ids: [layer.digest] },
  }));
  const manifest = blob(layout, JSON.stringify({
    schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }],
  }));
  writeFileSync(path.join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(path.join(layout, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest, annotations: { 'io.containerd.image.name': IMAGE, 'org.opencontainers.image.ref.name': 'latest' } }],
  }));
  const file = (d: string) => `blobs/sha256/${d.slice('sha256:'.length)}`;
  writeFileSync(path.join(layout, 'manifest.json'), JSON.stringify([{ Config: file(config.digest), RepoTags: ['tsvmm-busybox:latest'], Layers: [file(layer.digest)] }]));
  const tar = path.join(dir, 'image.tar');
  execFileSync('tar', ['-C', layout, '-cf', `${tar}.tmp`, '.']);
  renameSync(`${tar}.tmp`, tar);
  rmSync(layout, { recursive: true, force: true });
  return tar;
}

async function waitFor(what: string, ok: () => boolean, process: ChildProcess, log: string, ms = 30_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!ok()) {
    if (process.exitCode !== null || Date.now() > deadline) {
      throw new Error(`${what} did not come up: ${existsSync(log) ? readFileSync(log, 'utf8').slice(-2000) : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

export interface Containerd {
  address: string;
  ctr(args: string[], options?: { input?: string; timeout?: number }): { code: number | null; stdout: string; stderr: string };
  stop(): Promise<void>;
}

/** A containerd of our own in `dir`, the busybox image imported into namespace "tsvmm". */
export async function startContainerd(dir: string, options: { cri?: string } = {}): Promise<Containerd> {
  mkdirSync(dir, { recursive: true });
  const address = path.join(dir, 'containerd.sock');
  const config = path.join(dir, 'config.toml');
  writeFileSync(config, [
    'version = 2',
    `root = "${dir}/root"`,
    `state = "${dir}/state"`,
    options.cri ? '' : 'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
    '[grpc]', `  address = "${address}"`,
    '[ttrpc]', `  address = "${address}.ttrpc"`,
    options.cri ?? '',
  ].join('\n'));
  const log = path.join(dir, 'containerd.log');
  const child = spawn('containerd', ['--config', config, '--log-level', 'warn'], { stdio: ['ignore', openSync(log, 'w'), openSync(log, 'a')] });
  await waitFor('containerd', () => existsSync(address), child, log);
  const ctr: Containerd['ctr'] = (args, o = {}) => {
    try {
      const stdout = execFileSync('ctr', ['-a', address, '-n', 'tsvmm', ...args], { input: o.input ?? '', encoding: 'utf8', timeout: o.timeout ?? 60_000, stdio: ['pipe', 'pipe', 'pipe'] });
      return { code: 0, stdout, stderr: '' };
    } catch (error) {
      const e = error as { status: number | null; stdout: string; stderr: string };
      return { code: e.status, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    }
  };
  const imported = ctr(['images', 'import', busyboxImage(dir)]);
  if (imported.code !== 0) throw new Error(`ctr images import: ${imported.stderr}`);
  return {
    address,
    ctr,
    stop: async () => {
      // Tasks first, so that no shim outlives its containerd.
      for (const id of ctr(['tasks', 'ls', '-q']).stdout.split('\n').filter(Boolean)) ctr(['tasks', 'kill', '-s', 'SIGKILL', id]);
      await new Promise((resolve) => setTimeout(resolve, 200));
      for (const id of ctr(['tasks', 'ls', '-q']).stdout.split('\n').filter(Boolean)) ctr(['tasks', 'delete', '-f', id]);
      for (const id of ctr(['containers', 'ls', '-q']).stdout.split('\n').filter(Boolean)) ctr(['containers', 'delete', id]);
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
      // ctr and the shim keep fifos, sockets and the runtime state under /run/containerd: empty by now.
      execFileSync('sh', ['-c', `umount -R ${dir}/root 2>/dev/null; umount -R ${dir}/state 2>/dev/null; rmdir /run/containerd/runc/tsvmm /run/containerd/runc /run/containerd/fifo /run/containerd/s /run/containerd 2>/dev/null; true`]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/**
 * The parent cgroup an engine puts its containers in (Docker's /docker, podman's /libpod_parent),
 * removed with whatever empty cgroups are left below it: the runtime removes each container's own,
 * as runc does, and no engine of a test may leave the host's hierarchies fuller.
 */
export function removeEmptyCgroups(parent: string): void {
  execFileSync('sh', ['-c', `for d in $(find /sys/fs/cgroup/*/${parent} -depth -type d 2>/dev/null); do rmdir "$d" 2>/dev/null; done; true`]);
}

export interface Dockerd {
  /** The client command line, for a shell. */
  command: string;
  docker(args: string[], options?: { timeout?: number }): { code: number | null; stdout: string; stderr: string };
  stop(): Promise<void>;
}

/**
 * A dockerd of our own in `dir` (data root, exec root, socket), with tsvmm-runc registered as the
 * runtime "tsvmm", no default bridge and no iptables rules (the host's firewall is not ours to
 * change), and the busybox image loaded.
 */
export async function startDockerd(dir: string): Promise<Dockerd> {
  mkdirSync(dir, { recursive: true });
  const socket = path.join(dir, 'docker.sock');
  const log = path.join(dir, 'dockerd.log');
  const child = spawn('dockerd', [
    '--data-root', path.join(dir, 'data'), '--exec-root', path.join(dir, 'exec'), '-H', `unix://${socket}`,
    '--pidfile', path.join(dir, 'docker.pid'), '--add-runtime', `tsvmm=${RUNC}`,
    '--iptables=false', '--ip-masq=false', '--bridge=none',
  ], { stdio: ['ignore', openSync(log, 'w'), openSync(log, 'a')] });
  // Debian's client matches its daemon; a newer client on the machine would also do.
  const client = existsSync('/usr/bin/docker') ? '/usr/bin/docker' : 'docker';
  const docker: Dockerd['docker'] = (args, o = {}) => {
    const r = spawnSync(client, ['-H', `unix://${socket}`, ...args], { encoding: 'utf8', timeout: o.timeout ?? 60_000 });
    return { code: r.status, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
  };
  await waitFor('dockerd', () => existsSync(socket) && docker(['version']).code === 0, child, log, 60_000);
  const loaded = docker(['load', '-i', busyboxImage(dir)]);
  if (loaded.code !== 0) throw new Error(`docker load: ${loaded.stderr}`);
  return {
    command: `${client} -H unix://${socket}`,
    docker,
    stop: async () => {
      const ids = docker(['ps', '-aq']).stdout.split('\n').filter(Boolean);
      if (ids.length) docker(['rm', '-f', ...ids]);
      for (const network of docker(['network', 'ls', '--filter', 'type=custom', '-q']).stdout.split('\n').filter(Boolean)) docker(['network', 'rm', network]);
      child.kill('SIGTERM');
      await new Promise((resolve) => child.once('exit', resolve));
      execFileSync('sh', ['-c', `umount -R ${dir}/data 2>/dev/null; umount -R ${dir}/exec 2>/dev/null; true`]);
      removeEmptyCgroups('docker');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
