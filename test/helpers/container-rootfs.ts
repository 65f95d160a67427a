// Container tests run real containers: they need root, the helper built by `npm install`
// (build/Release/container-init) and the busybox bundle of scripts/build-busybox-rootfs.sh.
// Where one is missing they skip and say why.

import { execFileSync } from 'node:child_process';
import { accessSync, constants, cpSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export const BUNDLE = path.resolve('.cache/busybox-bundle');
export const ROOTFS = path.join(BUNDLE, 'rootfs');
const HELPER = path.resolve('build/Release/container-init');

export const containerMissingReason: string | undefined = (() => {
  if (process.getuid?.() !== 0) return 'not root: container tests skipped';
  try {
    accessSync(HELPER, constants.X_OK);
  } catch {
    return `${HELPER} is not built (npm install): container tests skipped`;
  }
  try {
    execFileSync('sh', ['scripts/build-busybox-rootfs.sh'], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (error) {
    return `no busybox bundle (${String((error as { stderr?: Buffer }).stderr ?? error).trim()}): container tests skipped`;
  }
  return undefined;
})();

if (containerMissingReason) console.warn(containerMissingReason);

/** Our own cgroup directory in a v1 hierarchy, as /proc/PID/cgroup names it. */
export function v1CgroupOf(pid: number, controller: string): string {
  const line = readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n').find((l) => l.split(':')[1]?.split(',').includes(controller));
  if (!line) throw new Error(`process ${pid} has no ${controller} cgroup`);
  return path.join('/sys/fs/cgroup', controller, line.split(':')[2]!);
}

export function readCgroupFile(dir: string, file: string): string {
  return readFileSync(path.join(dir, file), 'utf8').trim();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type RuncConfig = Record<string, any>;

/** A bundle of its own under `dir`: the busybox bundle's config.json, read-only root, changed by `change`. */
export function runcBundle(dir: string, change: (c: RuncConfig) => void = () => {}): string {
  const b = path.join(dir, `bundle-${process.pid}-${Math.random().toString(36).slice(2, 7)}`);
  cpSync(path.join(BUNDLE, 'config.json'), path.join(b, 'config.json'));
  const config = JSON.parse(readFileSync(path.join(b, 'config.json'), 'utf8')) as RuncConfig;
  config.root.path = path.join(BUNDLE, 'rootfs');
  config.root.readonly = true;
  change(config);
  writeFileSync(path.join(b, 'config.json'), JSON.stringify(config));
  return b;
}
