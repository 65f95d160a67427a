// What the measurements need, prepared once: the workload program (src/compare/workload.c, built
// static with gcc so it also runs in the busybox rootfs), a data directory the container sees at
// /tmp (the program and the I/O file live there, so native, container and VM use the same file
// on the same file system), an OCI bundle around the busybox rootfs with that bind mount, and
// the test guests. What is missing for a contender (no /dev/kvm, not root, ...) is noted, and its
// figures become "n/a" with that reason.

import { execFileSync, spawnSync } from 'node:child_process';
import { accessSync, constants, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { CONTAINER_INIT } from '../container/container.js';
import { GUESTS_DIR } from '../vmm/config.js';

export const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
/** Where the workload program lives inside the container. */
export const IN_CONTAINER_DIR = '/tmp';

export interface CompareEnv {
  workDir: string;
  dataDir: string;
  /** The workload program on the host. */
  work: string;
  /** The same program as the container sees it. */
  workInContainer: string;
  bundle: string;
  testElf: string;
  virtioElf: string;
  /** bin/tsvmm.js, for VMs in processes of their own. */
  cli: string;
  vmMissing: string | undefined;
  containerMissing: string | undefined;
  log: (line: string) => void;
}

export class CompareSetupError extends Error {}

export function prepare(log: (line: string) => void, workDir = path.join(PACKAGE_ROOT, '.cache/compare')): CompareEnv {
  const dataDir = path.join(workDir, 'data');
  mkdirSync(dataDir, { recursive: true });
  const work = path.join(dataDir, 'compare-work');
  buildWorkload(path.join(PACKAGE_ROOT, 'src/compare/workload.c'), work, log);
  const env: CompareEnv = {
    workDir,
    dataDir,
    work,
    workInContainer: path.posix.join(IN_CONTAINER_DIR, 'compare-work'),
    bundle: path.join(workDir, 'bundle'),
    testElf: path.join(GUESTS_DIR, 'test.elf'),
    virtioElf: path.join(GUESTS_DIR, 'virtio.elf'),
    cli: path.join(PACKAGE_ROOT, 'bin/tsvmm.js'),
    vmMissing: vmMissing(),
    containerMissing: undefined,
    log,
  };
  env.containerMissing = containerMissing(env);
  if (env.vmMissing) log(`VMs: ${env.vmMissing}`);
  if (env.containerMissing) log(`containers: ${env.containerMissing}`);
  return env;
}

function buildWorkload(source: string, binary: string, log: (line: string) => void): void {
  if (existsSync(binary) && statSync(binary).mtimeMs >= statSync(source).mtimeMs) return;
  log(`building ${path.relative(PACKAGE_ROOT, binary)} (gcc -static -O2)`);
  const cc = spawnSync('gcc', ['-static', '-O2', '-Wall', '-o', binary, source], { encoding: 'utf8' });
  if (cc.error || cc.status !== 0) {
    throw new CompareSetupError(`gcc could not build ${source}: ${cc.error?.message ?? cc.stderr.trim()}`);
  }
}

function vmMissing(): string | undefined {
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
  } catch (error) {
    return `/dev/kvm is not usable (${(error as NodeJS.ErrnoException).code})`;
  }
  for (const f of ['guests/build/test.elf', 'guests/build/virtio.elf', 'dist/bundle/cli.cjs']) {
    if (!existsSync(path.join(PACKAGE_ROOT, f))) return `${f} is missing (npm install && npm run build)`;
  }
  return undefined;
}

function containerMissing(env: CompareEnv): string | undefined {
  if (process.getuid?.() !== 0) return 'containers need root (namespaces, cgroups, mounts)';
  try {
    accessSync(CONTAINER_INIT, constants.X_OK);
  } catch {
    return `the helper ${CONTAINER_INIT} is not built (npm install)`;
  }
  let busybox: string;
  try {
    busybox = execFileSync('sh', [path.join(PACKAGE_ROOT, 'scripts/build-busybox-rootfs.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }).trim();
  } catch (error) {
    return `no busybox bundle (${String((error as { stderr?: string }).stderr ?? error).trim()})`;
  }
  writeBundle(env, busybox);
  return undefined;
}

/** The busybox bundle's config.json with its rootfs by absolute path and our data directory at /tmp. */
function writeBundle(env: CompareEnv, busyboxBundle: string): void {
  const config = JSON.parse(readFileSync(path.join(busyboxBundle, 'config.json'), 'utf8')) as {
    root: { path: string; readonly?: boolean };
    mounts: { destination: string; type?: string; source: string; options?: string[] }[];
    hostname?: string;
  };
  config.root.path = path.resolve(busyboxBundle, config.root.path);
  config.mounts.push({ destination: IN_CONTAINER_DIR, type: 'bind', source: env.dataDir, options: ['rbind', 'rw'] });
  config.hostname = 'compare';
  mkdirSync(env.bundle, { recursive: true });
  writeFileSync(path.join(env.bundle, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);
}
