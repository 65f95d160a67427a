// Talking to native/container-init.c from tsvmm-runc: the plan goes in as one JSON line on fd 3,
// the helper's answers come back as JSON lines on the same socket. The helper's stdio is ours
// (which is the engine's: its pipes, or nothing), and passes to the container's init.

import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import type { Duplex } from 'node:stream';
import { LineReader } from '../api/protocol.js';
import { CONTAINER_INIT } from '../container/helper-path.js';
import type { ExecPlan, InitPlan } from '../container/plan.js';
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
  /** Sends one line to the helper ("go"). */
  send(line: string): void;
  /** Resolves with the helper's exit code once it and its channel have closed. */
  closed: Promise<number | null>;
}

/** `stdin`: text for the process's stdin (a hook's state) instead of ours. */
export function startHelper(plan: InitPlan | ExecPlan, onMessage: (message: HelperMessage) => void, stdin?: string): Helper {
  try {
    accessSync(CONTAINER_INIT, constants.X_OK);
  } catch {
    throw new RuntimeError(`the container helper ${CONTAINER_INIT} is not built; run \`npm install\``);
  }
  const child = spawn(CONTAINER_INIT, [], { stdio: [stdin === undefined ? 'inherit' : 'pipe', 'inherit', 'inherit', 'pipe'] });
  if (stdin !== undefined) {
    child.stdin?.on('error', () => { /* a hook need not read its state */ });
    child.stdin?.end(stdin);
  }
  const channel = child.stdio[3] as Duplex;
  const reader = new LineReader();
  channel.on('data', (chunk: Buffer) => reader.push(chunk, (line) => {
    try {
      onMessage(JSON.parse(line) as HelperMessage);
    } catch { /* not ours to act on */ }
  }));
  channel.on('error', () => { /* the helper went away; 'close' tells */ });
  const closed = new Promise<number | null>((resolve) => {
    child.on('error', () => resolve(null));
    child.on('close', (code) => resolve(code));
  });
  channel.write(`${JSON.stringify(plan)}\n`);
  return { process: child, send: (line) => channel.write(`${line}\n`), closed };
}
