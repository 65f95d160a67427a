// The warm create server: the Node half of tsvmm-runc's `create`, kept loaded between creates,
// one per runtime root, so that a create costs the C front end's start and the work itself
// rather than a Node start (more than runc's whole create). The front end (native/
// container-init.c, runc_warm_create) connects to <root>/warm:create.sock and sends its argv, cwd,
// environment and, by SCM_RIGHTS, its fds 0-2 and the socket of the helper it forked; the
// create runs here with those (src/runtime/io.ts) and the front end exits with the status
// answered. The helper stays the front end's child, as on the cold path: the server never
// spawns one (a create that needs one, for hooks or --preserve-fds, is declined and runs cold).
//
// Only this uid's clients are served (SO_PEERCRED), from the namespaces the server sees the host
// in; the root and the socket are this user's only. The server leaves after TSVMM_RUNC_WARM_IDLE
// seconds (default 30) without a create, when its root or socket is removed or replaced, and
// when a front end of another build comes (which starts a server of its own build next).
//
//   node dist/bundle/runc.cjs --warm-server ROOT BUILD     (started by the front end; ROOT absolute)

import { chmodSync, closeSync, lstatSync, openSync, readFileSync, readlinkSync, renameSync, statSync, writeFileSync, type Stats } from 'node:fs';
import { removeFile } from '../meta/remove-file.js';
import net from 'node:net';
import path from 'node:path';
import { addon } from '../kvm/addon.js';
import { main } from './cli.js';
import { ColdNeeded } from './errors.js';
import { releaseHelper, type ForkedHelper } from './helper.js';
import { writeAllSync, type RuncIo } from './io.js';
import { ownedByUs } from './state.js';
import { envFromList } from '../meta/env-list.js';
import { parseMountinfo } from '../meta/mountinfo.js';

// The exchange, as native/container-init.c defines it (runc_warm_create).
const WARM_MAGIC = 'tsvmm-runc-warm/1';
const WARM_COLD = -1;
const WARM_START = -2;
const WARM_ACCEPTED = -3;
/** fds per request: the caller's 0, 1, 2 and the forked helper's socket. */
const REQUEST_FDS = 4;
const REQUEST_LIMIT = 1 << 20;
/** How long a request may take to arrive (the front end sends it at once; it waits 3 s for the answer). */
const RECEIVE_MS = 3000;
const F_WRLCK = 1;
/** struct sockaddr_un's sun_path, with its NUL. */
const SUN_PATH_SIZE = 108;
/** A client in other namespaces than ours would see other paths, pids and cgroups: it runs cold. */
const NAMESPACES = ['mnt', 'pid', 'cgroup', 'user'] as const;

/** In the root beside the containers' directories, under names no container id can take (src/runtime/state.ts, checkId). */
export const SOCKET_NAME = 'warm:create.sock';
const LOCK_NAME = 'warm:create.lock';

interface WarmRequest {
  build: string;
  cwd: string;
  helperPid: number;
  argv: string[];
  env: Record<string, string>;
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One recvmsg's worth, waiting (briefly) for it: the bytes (empty at end-of-file) and any fds that came. */
async function receiveSome(fd: number, buffer: Buffer, fds: number[], deadline: number): Promise<Buffer | undefined> {
  const got = new Int32Array(REQUEST_FDS);
  for (;;) {
    const n = addon().recvFds(fd, buffer, got);
    for (const f of got) if (f >= 0) fds.push(f);
    if (n >= 0) return buffer.subarray(0, n);
    if (n !== -11 /* EAGAIN */ && n !== -4 /* EINTR */) return undefined;
    if (Date.now() > deadline) return undefined;
    await pause(1);
  }
}

/** The request, or undefined if it is not one (the fds that came are in `fds` either way, for the caller to close). */
async function receiveRequest(fd: number, fds: number[]): Promise<WarmRequest | undefined> {
  const deadline = Date.now() + RECEIVE_MS;
  const chunks: Buffer[] = [];
  let size = 0;
  let length: number | undefined;
  while (length === undefined || size < 4 + length) {
    const chunk = await receiveSome(fd, Buffer.alloc(length === undefined ? 65536 : Math.min(65536, 4 + length - size)), fds, deadline);
    if (!chunk?.length) return undefined;
    chunks.push(chunk);
    size += chunk.length;
    if (length === undefined && size >= 4) {
      length = Buffer.concat(chunks).readUInt32LE(0);
      if (length > REQUEST_LIMIT) return undefined;
    }
  }
  if (fds.length !== REQUEST_FDS || size !== 4 + length) return undefined;
  const fields = Buffer.concat(chunks).subarray(4).toString('utf8').split('\0');
  if (fields.pop() !== '') return undefined; // every string ends with its NUL
  const [magic, build, cwd, helperPid, argc] = fields.splice(0, 5);
  const nArgs = Number(argc);
  if (magic !== WARM_MAGIC || !build || !cwd?.startsWith('/') || !/^\d+$/.test(helperPid ?? '') || !Number.isSafeInteger(nArgs)) return undefined;
  const argv = fields.splice(0, nArgs);
  const [envc, ...env] = fields;
  if (argv.length !== nArgs || Number(envc) !== env.length) return undefined;
  return {
    build, cwd, helperPid: Number(helperPid), argv,
    env: envFromList(env),
  };
}

function answer(fd: number, value: number): boolean {
  const bytes = Buffer.alloc(4);
  bytes.writeInt32LE(value);
  return writeAllSync(fd, bytes);
}

function sameNamespaces(pid: number): boolean {
  try {
    return NAMESPACES.every((ns) => readlinkSync(`/proc/${pid}/ns/${ns}`) === readlinkSync(`/proc/self/ns/${ns}`));
  } catch {
    return false;
  }
}

const sameFile = (a: Stats, b: Stats) => a.dev === b.dev && a.ino === b.ino;

function idleSeconds(text: string | undefined): number {
  const value = Number(text ?? '30');
  return Number.isFinite(value) && value > 0 ? value : 30;
}

/**
 * Moves this process to the top cgroup of every hierarchy it sees. It was started in the cgroup
 * of the engine's process that ran the first cold create (a shim's, a pod's, podman's conmon's),
 * and a process left there would keep that cgroup from being removed until the server's idle
 * exit. The containers it creates do not follow it: their cgroups start from each caller's
 * (RuntimeOptions.caller). Best effort: where a move is refused, the server stays where it was.
 */
function leaveStarterCgroups(): void {
  let mountinfo: string;
  try {
    mountinfo = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return;
  }
  const tops = new Set(parseMountinfo(mountinfo).filter((m) => m.fstype === 'cgroup' || m.fstype === 'cgroup2').map((m) => m.mountPoint));
  for (const top of tops) {
    try {
      writeFileSync(path.join(top, 'cgroup.procs'), `${process.pid}\n`);
    } catch { /* refused: stays */ }
  }
}

export async function serve([root, build]: string[]): Promise<void> {
  if (!root || !build || !path.isAbsolute(root)) {
    process.exitCode = 2;
    return;
  }
  // Nothing here may end the server for the requests of others: a request's own failure is answered in it.
  process.on('uncaughtException', () => { /* kept going: the request it came from has its answer or end-of-file */ });
  process.on('unhandledRejection', () => { /* as above */ });
  const idleMs = idleSeconds(process.env.TSVMM_RUNC_WARM_IDLE) * 1000;
  leaveStarterCgroups();
  const rootStat = statSync(root);
  if (!rootStat.isDirectory() || !ownedByUs(rootStat)) return;
  // One server per root: the lock is held for the server's life (an open file description's lock goes with it).
  const lock = openSync(path.join(root, LOCK_NAME), 'a', 0o600);
  if (addon().ofdLock(lock, false, F_WRLCK, 0, 0) < 0) {
    closeSync(lock);
    return;
  }
  const socketPath = path.join(root, SOCKET_NAME);
  // Listening under a name of its own, then renamed over the socket file: a stale one is replaced,
  // and no client ever finds a socket file that nobody listens on yet. (The front end asks for a
  // server only where this longer name fits in sun_path.)
  const temporary = path.join(root, `.${SOCKET_NAME}.${process.pid}`);
  // Node would bind a name past sun_path cut short, silently: a socket nobody finds, and a
  // server that never leaves (the front end checks this too, native/container-init.c).
  if (Buffer.byteLength(temporary) >= SUN_PATH_SIZE) {
    closeSync(lock);
    process.exitCode = 2;
    return;
  }
  removeFile(temporary);
  let active = 0;
  let leaving = false;
  let lastRequest = Date.now();
  const server = net.createServer({ pauseOnConnect: true }, (socket) => void handle(socket));
  let ours: Stats;
  try {
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(temporary, resolve));
    chmodSync(temporary, 0o600);
    renameSync(temporary, socketPath);
    ours = lstatSync(socketPath);
  } catch {
    // Not set up (the root removed meanwhile, say): a server nobody can reach and without its
    // idle watch would stay for ever, holding the root's lock. Creates run cold.
    server.close();
    removeFile(temporary);
    closeSync(lock);
    process.exitCode = 2;
    return;
  }

  const leave = () => {
    if (leaving) return;
    leaving = true;
    clearInterval(watch);
    server.close();
    try {
      if (sameFile(lstatSync(socketPath), ours)) removeFile(socketPath);
    } catch { /* gone already */ }
    closeSync(lock); // the next server may start from here
    if (active === 0) process.exit(0);
  };
  const watch = setInterval(() => {
    let still = false;
    try {
      still = sameFile(lstatSync(socketPath), ours) && sameFile(statSync(root), rootStat);
    } catch { /* removed */ }
    if (!still || (active === 0 && Date.now() - lastRequest >= idleMs)) leave();
  }, Math.min(1000, idleMs));

  async function handle(socket: net.Socket): Promise<void> {
    socket.on('error', () => { /* the front end went away: nothing to tell it */ });
    active++;
    const fds: number[] = [];
    let helper: ForkedHelper | undefined;
    try {
      const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
      const cred = new Int32Array(3);
      if (leaving || fd === undefined || fd < 0 || addon().peerCredentials(fd, cred) < 0 || cred[1] !== process.geteuid!()) return;
      const request = await receiveRequest(fd, fds);
      if (!request) return;
      if (request.build !== build) {
        // Another install's front end: this server's code is not what it runs. It starts one of its own build.
        leave();
        answer(fd, WARM_START);
        return;
      }
      const pid = cred[0]!;
      if (!sameNamespaces(pid)) {
        answer(fd, WARM_COLD);
        return;
      }
      // Carried out only once the front end says it still waits (it gives up after a while and runs cold).
      if (!answer(fd, WARM_ACCEPTED)) return;
      const go = await receiveSome(fd, Buffer.alloc(1), fds, Date.now() + RECEIVE_MS);
      if (go?.toString() !== 'G') return;
      const [, stdout, stderr, helperFd] = fds as [number, number, number, number];
      helper = { fd: helperFd, pid: request.helperPid, parent: pid, closed: false };
      const io: RuncIo = {
        stdout: (text) => { writeAllSync(stdout, text); }, stderr: (text) => { writeAllSync(stderr, text); },
        cwd: request.cwd, env: request.env, pid, helper, warm: true,
      };
      let code: number;
      try {
        code = await main(request.argv, io);
      } catch (error) {
        if (!(error instanceof ColdNeeded)) throw error;
        code = WARM_COLD;
      }
      answer(fd, code);
    } catch {
      // main answers its own failures; this is a failure of ours: the front end reads end-of-file and says so.
    } finally {
      // The helper's socket is closed by whoever took it (once its answers are read); the rest here.
      if (helper) releaseHelper(helper);
      for (const [i, f] of fds.entries()) {
        if (i === REQUEST_FDS - 1 && helper) continue;
        try {
          closeSync(f);
        } catch { /* closed */ }
      }
      socket.destroy();
      active--;
      lastRequest = Date.now();
      if (leaving && active === 0) process.exit(0);
    }
  }
}
