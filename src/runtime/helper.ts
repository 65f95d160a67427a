// Talking to native/container-init.c, for tsvmm-runc and for tsvmm's own containers alike: the
// plan goes in on fd 3 as a frame (src/container/plan-layout.ts), the helper's answers come back
// as JSON lines on the same socket.

import type { ChildProcess, StdioOptions } from 'node:child_process';
import { accessSync, closeSync, constants, readSync, writeSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import { LineReader } from '../api/protocol.js';
import { CONTAINER_INIT } from '../container/helper-path.js';
import { ExecPlanLayout, GoLayout, helperFrame, InitPlanLayout, ResizeLayout, type ExecPlan, type InitPlan } from '../container/plan-layout.js';
import { childProcess, onSpawn } from './child-process.js';
import { RuntimeError } from './errors.js';

export interface HelperMessage {
  pid?: number;
  ready?: boolean;
  running?: boolean;
  error?: { step: string; message: string; errno: number };
  exit?: { code?: number; signal?: number };
}

export interface Helper {
  /** The helper spawned; absent for the one bin/tsvmm-runc's front end forked (see startHelper). */
  process?: ChildProcess;
  pid: number | undefined;
  kill(signal: NodeJS.Signals): void;
  /** The host is done with the waiting init (a plan with waitForHost): it may go on; `state` goes to its createContainer hooks. */
  go(state?: string): void;
  /** A new size for the workload's pty. */
  resize(rows: number, cols: number): void;
  /** Resolves with the helper's exit code (or the signal that ended it) once it and its channel have closed. */
  closed: Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>;
}

export function checkHelperBuilt(): void {
  try {
    accessSync(CONTAINER_INIT, constants.X_OK);
  } catch {
    throw new RuntimeError(`the container helper ${CONTAINER_INIT} is not built; run \`npm install\` (or \`npx node-gyp rebuild\`)`);
  }
}

export interface HelperStdio {
  /** The helper's fds 0-2 (which become the container's, or feed its pty); default: ours. */
  stdio?: ('pipe' | 'inherit' | 'ignore')[];
  /** Text for the process's stdin (a hook's state) instead of ours. */
  stdin?: string;
  /** Our fds 3.. that the process gets as its 3.. (--preserve-fds); the helper has them from 4 on, after its channel. */
  preserveFds?: number;
}

/**
 * The helper bin/tsvmm-runc's C front end forked for `create` while Node started (native/
 * container-init.c, runc_prefork), waiting for its plan on a socket: TSVMM_RUNC_HELPER=FD:PID.
 * The variable goes at once, so that nothing this process runs sees it.
 */
const announced = /^(\d+):(\d+)$/.exec(process.env.TSVMM_RUNC_HELPER ?? '');
delete process.env.TSVMM_RUNC_HELPER;
let forked = announced ? { fd: Number(announced[1]), pid: Number(announced[2]) } : undefined;

/** Lets the forked helper go unused (it reads end-of-file and ends): before anything is spawned, which would inherit its socket. */
function releaseForked(): void {
  if (!forked) return;
  try {
    closeSync(forked.fd);
  } catch { /* already closed */ }
  forked = undefined;
}
if (forked) onSpawn(releaseForked);

function dispatch(line: string, onMessage: (message: HelperMessage) => void): void {
  let message: HelperMessage;
  try {
    message = JSON.parse(line) as HelperMessage;
  } catch {
    return; // not ours to act on
  }
  onMessage(message);
}

/**
 * The forked helper carries out a plan that waits for nothing from us (no hooks, no relay): the
 * plan is written and the answers read synchronously, on the socket itself, until the helper
 * closes it (a created init waits on exec.fifo by then). No stream, no child_process: with
 * their modules this saves create a quarter of what it costs beyond Node's own start.
 */
function runForked(fd: number, pid: number, frame: Buffer, onMessage: (message: HelperMessage) => void): Helper {
  const closed: Helper['closed'] = Promise.resolve({ code: null, signal: null });
  try {
    try {
      for (let done = 0; done < frame.length;) done += writeSync(fd, frame, done);
    } catch {
      // The plan could not be written: the helper has gone, and what it says (nothing) is the failure.
    }
    const reader = new LineReader();
    const buffer = Buffer.alloc(4096);
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, buffer);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'EAGAIN' || (error as NodeJS.ErrnoException).code === 'EINTR') continue;
        break; // the helper went away; its answers so far say how it went
      }
      if (n === 0) break;
      // What onMessage throws (the state not saved, ...) is the caller's, as on a spawned helper's channel.
      reader.push(buffer.subarray(0, n), (line) => dispatch(line, onMessage));
    }
  } finally {
    closeSync(fd);
  }
  // Not our child to wait for (the front end forked it before it became Node), so its exit
  // status is unknown here; its answers have said how it went.
  const gone = () => { /* the channel is closed: nothing waits for this */ };
  return {
    pid,
    kill: (signal) => {
      try {
        process.kill(pid, signal);
      } catch { /* already gone */ }
    },
    go: gone,
    resize: gone,
    closed,
  };
}

export function startHelper(plan: { init: InitPlan } | { exec: ExecPlan }, onMessage: (message: HelperMessage) => void, options: HelperStdio = {}): Helper {
  // (Not with --preserve-fds: the fds go to a helper spawned here, after its channel.)
  if (forked && 'init' in plan && !plan.init.waitForHost && options.stdio === undefined && options.stdin === undefined && !options.preserveFds) {
    const { fd, pid } = forked;
    forked = undefined;
    return runForked(fd, pid, helperFrame(InitPlanLayout, plan.init), onMessage);
  }
  checkHelperBuilt();
  const stdio = options.stdio ?? [options.stdin === undefined ? 'inherit' : 'pipe', 'inherit', 'inherit'];
  const passed = Array.from({ length: options.preserveFds ?? 0 }, (_, i) => 3 + i);
  const child = childProcess().spawn(CONTAINER_INIT, [], { stdio: [...stdio, 'pipe', ...passed] as StdioOptions });
  if (options.stdin !== undefined) {
    child.stdin?.on('error', () => { /* a hook need not read its state */ });
    child.stdin?.end(options.stdin);
  }
  const channel = child.stdio[3] as Duplex;
  const reader = new LineReader();
  channel.on('data', (chunk: Buffer) => reader.push(chunk, (line) => dispatch(line, onMessage)));
  channel.on('error', () => { /* the helper went away; 'close' tells */ });
  const closed: Helper['closed'] = new Promise((resolve) => {
    // A helper that could not be spawned sends 'error' and perhaps no 'close'.
    child.on('error', (error) => resolve({ code: null, signal: null, error }));
    child.on('close', (code, signal) => resolve({ code, signal }));
  });
  channel.write('init' in plan ? helperFrame(InitPlanLayout, plan.init) : helperFrame(ExecPlanLayout, plan.exec));
  return {
    process: child,
    pid: child.pid,
    kill: (signal) => child.kill(signal),
    go: (state = '') => channel.write(helperFrame(GoLayout, { state })),
    resize: (rows, cols) => channel.write(helperFrame(ResizeLayout, { rows, cols })),
    closed,
  };
}
