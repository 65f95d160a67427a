// What the dashboard's keys do to instances: new ones are separate processes, started with the
// same commands a person would type (`tsvmm run --detach`, `tsvmm container run --detach`,
// `tsvmm restore --detach`), so they outlive the dashboard; the rest goes through the control API.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { request } from '../api/control-client.js';
import type { InstanceStatus } from '../api/protocol.js';

const BIN = fileURLToPath(new URL('../../bin/tsvmm.js', import.meta.url));
const ROOT = path.dirname(path.dirname(BIN));

/** The busybox root filesystem of scripts/build-busybox-rootfs.sh, if it was built. */
export function defaultRootfs(): string {
  const rootfs = path.join(ROOT, '.cache/busybox-bundle/rootfs');
  return existsSync(rootfs) ? rootfs : '';
}

export interface BootOptions {
  kernel?: string;
  initrd?: string;
  memory?: string;
  cpus?: string;
}

/** `tsvmm ARGS` in the background; resolves with the name it printed or rejects with its error line. */
export function tsvmm(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(stdout.trim().split('\n').pop() ?? '');
      else reject(new Error(stderr.split('\n').find((l) => l.startsWith('tsvmm: error:'))?.slice('tsvmm: error: '.length) ?? (stderr.trim() || `tsvmm ${args[0]} failed (exit ${code})`)));
    });
  });
}

export function bootArgs(options: BootOptions): string[] {
  const args = ['run', '--detach', '--quiet'];
  if (options.kernel?.trim()) args.push('--kernel', path.resolve(options.kernel.trim()));
  if (options.initrd?.trim()) args.push('--initrd', path.resolve(options.initrd.trim()));
  if (options.memory?.trim()) args.push('--mem', options.memory.trim());
  if (options.cpus?.trim()) args.push('--cpus', options.cpus.trim());
  return args;
}

export function containerArgs(rootfs: string, command: string): string[] {
  const words = command.trim().split(/\s+/).filter(Boolean);
  // --tty: a pty for its console, so that typing there behaves as on a terminal.
  return ['container', 'run', '--rootfs', path.resolve(rootfs.trim()), '--detach', '--tty', '--', ...(words.length ? words : ['sh'])];
}

export const boot = (options: BootOptions): Promise<string> => tsvmm(bootArgs(options));
export const startContainer = (rootfs: string, command: string): Promise<string> => tsvmm(containerArgs(rootfs, command));
export const restore = (file: string): Promise<string> => tsvmm(['restore', path.resolve(file.trim()), '--detach', '--quiet']);

export function pauseOrResume(name: string, state: string): Promise<InstanceStatus> {
  return request<InstanceStatus>(name, state === 'paused' ? 'resume' : 'pause', { timeoutMs: 30_000 });
}

export async function stop(name: string): Promise<void> {
  await request(name, 'stop', { timeoutMs: 30_000 });
}

export async function snapshot(name: string, file: string, onProgress: (done: number, total: number) => void): Promise<string> {
  const target = path.resolve(file.trim());
  await request(name, 'snapshot', { path: target, onProgress });
  return target;
}
