// `--net veth`: a veth pair whose host end (named after the container and its runtime directory)
// is a port of the bridge tsvmm0 and whose other end is eth0 in the container's network
// namespace, with an address of its own in 10.88.0.0/16 (the bridge is 10.88.0.1, and the
// container's default route).
// Containers on the bridge reach each other and the host. Everything is done with iproute2's
// `ip`, two runs per container, while the container's init waits to be released.
//
// Addresses are leased through files in /run/tsvmm-net (one per address, made with O_EXCL, so
// concurrent tsvmm processes never hand out the same one); a lease whose owner died is taken back.

import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { removeFile } from '../meta/remove-file.js';
import path from 'node:path';
import { pidAlive } from '../meta/pid-alive.js';
import { ContainerError } from './errors.js';
import { fnv1a64Hex } from '../meta/fnv.js';

export const BRIDGE = 'tsvmm0';
export const GATEWAY = '10.88.0.1';
export const PREFIX_LENGTH = 16;
const LEASES = '/run/tsvmm-net';

export interface NetworkAttachment {
  /** The container's address on the bridge. */
  address: string;
  /** The host end of the pair. */
  hostInterface: string;
  /** Gives the address back (the veth pair goes with the namespace). */
  release(): void;
}

function ip(args: string[], batch?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile('ip', batch === undefined ? args : [...args, '-batch', '-'], { timeout: 10_000 }, (error, stdout, stderr) => {
      if (!error) {
        resolve(stdout);
        return;
      }
      const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
      reject(new ContainerError('NETWORK', missing ? 'the network needs iproute2 (`ip`), which is not installed'
        : `ip ${args.join(' ')}${batch ? ` (${batch.trim().split('\n').join('; ')})` : ''}: ${stderr.trim().split('\n').pop() || error.message}`));
    });
    if (batch !== undefined) {
      // An `ip` that fails before reading its batch closes the pipe: its exit status and stderr
      // (above) say what went wrong, not the EPIPE of our write, which would end this process.
      child.stdin?.on('error', () => {});
      child.stdin?.end(batch);
    }
  });
}

/** Linux's IFNAMSIZ less the terminating NUL. */
const IFNAME_MAX = 15;

/**
 * The host end's name, `tv-` + the start of the container's name + a hash of its host-wide `id`
 * (NAME-KEY, KEY naming the runtime directory), in IFNAMSIZ: containers of one name in two
 * runtime directories (two users, two test runs) get two interfaces, as they get two cgroups.
 */
export function hostInterfaceName(name: string, id: string): string {
  const prefix = `tv-${name.slice(0, 6)}-`;
  return prefix + fnv1a64Hex(id).slice(0, IFNAME_MAX - prefix.length);
}

async function ensureBridge(): Promise<void> {
  if (existsSync(`/sys/class/net/${BRIDGE}`)) return;
  // -force: another tsvmm may be creating it at the same moment; what counts is that it exists.
  await ip(['-force'], [
    `link add ${BRIDGE} type bridge`,
    `addr add ${GATEWAY}/${PREFIX_LENGTH} dev ${BRIDGE}`,
    `link set ${BRIDGE} up`,
  ].join('\n')).catch((error: unknown) => {
    if (!existsSync(`/sys/class/net/${BRIDGE}`)) throw error;
  });
}

/** Takes the lowest free address of 10.88.0.2-10.88.255.254 for `name`. */
function leaseAddress(name: string): { address: string; release(): void } {
  mkdirSync(LEASES, { recursive: true, mode: 0o700 });
  const taken = new Set(readdirSync(LEASES));
  for (let host = 2; host < 65535; host++) {
    const address = `10.88.${host >> 8}.${host & 0xff}`;
    const file = path.join(LEASES, address);
    if (taken.has(address)) {
      try {
        const owner = JSON.parse(readFileSync(file, 'utf8')) as { pid: number };
        if (pidAlive(owner.pid)) continue;
        removeFile(file);
      } catch {
        continue; // being written right now
      }
    }
    try {
      writeFileSync(file, JSON.stringify({ name, pid: process.pid }), { flag: 'wx', mode: 0o600 });
    } catch {
      continue; // someone else took it first
    }
    return { address, release: () => removeFile(file) };
  }
  throw new ContainerError('NETWORK', `no free address left on ${BRIDGE} (10.88.0.0/16)`);
}

/**
 * Wires the network namespace of process `pid` (the container's init, not yet started) to the
 * bridge. `id` is the container's host-wide name (NAME-KEY), which the host's labels carry.
 */
export async function attachVeth(name: string, id: string, pid: number): Promise<NetworkAttachment> {
  await ensureBridge();
  const hostInterface = hostInterfaceName(name, id);
  const lease = leaseAddress(id);
  const netns = `tsvmm-${id}`;
  try {
    if (existsSync(`/run/netns/${netns}`)) await ip(['netns', 'delete', netns]).catch(() => {});
    await ip([], [
      // The peer is born inside the container's namespace, so its name cannot clash with ours.
      `link add ${hostInterface} type veth peer name eth0 netns ${pid}`,
      `link set ${hostInterface} master ${BRIDGE}`,
      `link set ${hostInterface} up`,
      `netns attach ${netns} ${pid}`,
    ].join('\n'));
    await ip(['-n', netns], [
      'link set lo up',
      `addr add ${lease.address}/${PREFIX_LENGTH} dev eth0`,
      'link set eth0 up',
      `route add default via ${GATEWAY}`,
      // The name was only needed to reach the namespace; the namespace lives on with the init.
      `netns delete ${netns}`,
    ].join('\n'));
  } catch (error) {
    lease.release();
    await ip(['link', 'delete', hostInterface]).catch(() => {});
    await ip(['netns', 'delete', netns]).catch(() => {});
    throw error;
  }
  return { address: lease.address, hostInterface, release: lease.release };
}
