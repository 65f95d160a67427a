// Talking to native/container-init.c, for tsvmm-runc and for tsvmm's own containers alike: the
// plan goes in on fd 3 as a frame (src/container/plan-layout.ts), the helper's answers come back
// as JSON lines on the same socket.

import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import type { Duplex } from 'node:stream';
import { LineReader } from '../api/protocol.js';
import { CONTAINER_INIT } from '../container/helper-path.js';
import { ExecPlanLayout, GoLayout, helperFrame, InitPlanLayout, ResizeLayout, type ExecPlan, type InitPlan } from '../container/plan-layout.js';
import { RuntimeError } from './errors.js';

export interface HelperMessage {
  pid?: number;
  ready?: boolean;
  running?: boolean;
  error?: { step: string; message: string; errno: number };
  exit?: { code?: number; signal?: number };
}

export interface Helper {
  process: ChildProcess;
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
}

export function startHelper(plan: { init: InitPlan } | { exec: ExecPlan }, onMessage: (message: HelperMessage) => void, options: HelperStdio = {}): Helper {
  checkHelperBuilt();
  const stdio = options.stdio ?? [options.stdin === undefined ? 'inherit' : 'pipe', 'inherit', 'inherit'];
  const child = spawn(CONTAINER_INIT, [], { stdio: [...stdio, 'pipe'] as StdioOptions });
  if (options.stdin !== undefined) {
    child.stdin?.on('error', () => { /* a hook need not read its state */ });
    child.stdin?.end(options.stdin);
  }
  const channel = child.stdio[3] as Duplex;
  const reader = new LineReader();
  channel.on('data', (chunk: Buffer) => reader.push(chunk, (line) => {
    let message: HelperMessage;
    try {
      message = JSON.parse(line) as HelperMessage;
    } catch {
      return; // not ours to act on
    }
    onMessage(message);
  }));
  channel.on('error', () => { /* the helper went away; 'close' tells */ });
  const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
    // A helper that could not be spawned sends 'error' and perhaps no 'close'.
    child.on('error', (error) => resolve({ code: null, signal: null, error }));
    child.on('close', (code, signal) => resolve({ code, signal }));
  });
  channel.write('init' in plan ? helperFrame(InitPlanLayout, plan.init) : helperFrame(ExecPlanLayout, plan.exec));
  return {
    process: child,
    go: (state = '') => channel.write(helperFrame(GoLayout, { state })),
    resize: (rows, cols) => channel.write(helperFrame(ResizeLayout, { rows, cols })),
    closed,
  };
}
