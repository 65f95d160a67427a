// Talking to native/container-init.c, for tsvmm-runc and for tsvmm's own containers alike: the
// plan goes in on fd 3 as a frame (src/container/plan-layout.ts), the helper's answers come back
// as JSON lines on the same socket.

import type { ChildProcess, StdioOptions } from 'node:child_process';
import { accessSync, closeSync, constants, read, writeSync } from 'node:fs';
import type { Duplex } from 'node:stream';
import { LineReader } from '../api/protocol.js';
import { CONTAINER_INIT } from '../container/helper-path.js';
import { ExecPlanLayout, GoLayout, helperFrame, InitPlanLayout, ResizeLayout, type ExecPlan, type InitPlan } from '../container/plan-layout.js';
import { childProcess, onSpawn } from './child-process.js';
import { ColdNeeded, RuntimeError } from './errors.js';

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
  /** Resolves with the helper's exit code (or the signal that ended it) once it and its channel have closed; `thrown`: what onMessage threw. */
  closed: Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error; thrown?: unknown }>;
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
 * The helper bin/tsvmm-runc's C front end forked for `create` (native/container-init.c,
 * runc_prefork), waiting for its plan on a socket; `parent` is the front end, which the plan
 * names as the helper's supervisor. Used once: `closed` once taken or let go.
 */
export interface ForkedHelper {
  fd: number;
  pid: number;
  parent: number;
  closed: boolean;
}

/**
 * The cold process's: the front end announces it as TSVMM_RUNC_HELPER=FD:PID. The variable goes
 * at once, so that nothing this process runs sees it, and the socket goes before anything is
 * spawned, which would inherit it (Node cannot mark it close-on-exec).
 */
export function announcedHelper(): ForkedHelper | undefined {
  const announced = /^(\d+):(\d+)$/.exec(process.env.TSVMM_RUNC_HELPER ?? '');
  delete process.env.TSVMM_RUNC_HELPER;
  if (!announced) return undefined;
  const helper: ForkedHelper = { fd: Number(announced[1]), pid: Number(announced[2]), parent: process.pid, closed: false };
  onSpawn(() => releaseHelper(helper));
  return helper;
}

/** Lets a forked helper go unused: it reads end-of-file (once the front end's copy is closed too) and ends. */
export function releaseHelper(helper: ForkedHelper): void {
  if (helper.closed) return;
  helper.closed = true;
  try {
    closeSync(helper.fd);
  } catch { /* already closed */ }
}

function dispatch(line: string, onMessage: (message: HelperMessage) => void): void {
  let message: HelperMessage;
  try {
    message = JSON.parse(line) as HelperMessage;
  } catch {
    return; // not ours to act on
  }
  onMessage(message);
}

/** Whether the forked helper can carry out a plan: one that waits for nothing from us (no hooks, no relay) and passes no fds. */
export function forkedHelperFits(plan: { waitForHost: boolean }, options: HelperStdio): boolean {
  return !plan.waitForHost && options.stdio === undefined && options.stdin === undefined && !options.preserveFds;
}

/**
 * The forked helper carries out a plan that fits (forkedHelperFits): the plan is written and the
 * answers read on the socket itself, until the helper closes it (a created init waits on
 * exec.fifo by then). No stream, no child_process: with their modules this saves create a
 * quarter of what it costs beyond Node's own start. The reads go through the thread pool, so
 * that the warm server goes on with other requests meanwhile.
 */
function runForked(helper: ForkedHelper, frame: Buffer, onMessage: (message: HelperMessage) => void): Helper {
  const { fd, pid } = helper;
  helper.closed = true;
  const kill = (signal: NodeJS.Signals) => {
    try {
      process.kill(pid, signal);
    } catch { /* already gone */ }
  };
  // Not our child to wait for (the front end forked it), so its exit status is unknown here; its
  // answers have said how it went.
  const closed: Helper['closed'] = new Promise((resolve) => {
    const done = (thrown?: unknown) => {
      try {
        closeSync(fd);
      } catch { /* already closed */ }
      resolve({ code: null, signal: null, thrown });
    };
    try {
      for (let at = 0; at < frame.length;) at += writeSync(fd, frame, at);
    } catch {
      // The plan could not be written: the helper has gone, and what it says (nothing) is the failure.
    }
    const reader = new LineReader();
    const buffer = Buffer.alloc(4096);
    const next = () => read(fd, buffer, 0, buffer.length, null, (error, n) => {
      if (error && (error.code === 'EAGAIN' || error.code === 'EINTR')) return next();
      if (error || n === 0) return done(); // the helper went away; its answers so far say how it went
      try {
        reader.push(buffer.subarray(0, n), (line) => dispatch(line, onMessage));
      } catch (thrown) {
        // What onMessage throws (the state not saved, ...) is the caller's: the helper is of no more use.
        kill('SIGKILL');
        return done(thrown);
      }
      next();
    });
    next();
  });
  const gone = () => { /* the channel is closed: nothing waits for this */ };
  return { pid, kill, go: gone, resize: gone, closed };
}

export interface HelperSource {
  /** A helper forked by bin/tsvmm-runc's front end, taken if the plan fits it. */
  forked?: ForkedHelper;
  /** false: no helper may be spawned here (the warm server's would be its child, not the caller's); ColdNeeded instead. */
  spawn?: boolean;
}

export function startHelper(plan: { init: InitPlan } | { exec: ExecPlan }, onMessage: (message: HelperMessage) => void, options: HelperStdio & HelperSource = {}): Helper {
  // (Not with --preserve-fds: the fds go to a helper spawned here, after its channel.)
  if (options.forked && !options.forked.closed && 'init' in plan && forkedHelperFits(plan.init, options)) {
    return runForked(options.forked, helperFrame(InitPlanLayout, plan.init), onMessage);
  }
  if (options.spawn === false) throw new ColdNeeded('this container needs a helper spawned by the runtime');
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
